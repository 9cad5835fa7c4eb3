// The bad-input table: what users get wrong, and what breaks around them. Each row must end in a clear message and a
// non-zero exit (never a refusal that exits 0), with nothing half-deployed and the project untouched.
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CliRun } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';
import { buildCli, DAG_ON, spawnDeploy, startFaultBed, type FaultBed, type Project } from '../../faults/bed.js';

let bed: FaultBed;
let bin: string;
const SKIP_PARSE = { ASTRONOMER_SKIP_PARSE: 'true' };
const NOBODY = 65534;

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** An ASTRO_HOME whose global config.yaml holds `text`. */
async function homeWith(text: string): Promise<string> {
  const home = await bed.tempDir('home');
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), text);
  return home;
}

interface Row {
  id: string;
  argv?: string[];
  /** Returns extra environment for the run (tokenId null drops ASTRO_API_TOKEN). */
  setup?: (project: Project) => Promise<{ env?: Record<string, string>; tokenId?: string | null; restore?: () => void } | void>;
  message: RegExp | RegExp[];
  code?: number;
}

const rows: Row[] = [
  {
    id: 'malformed global config.yaml',
    setup: async () => ({ env: { ASTRO_HOME: await homeWith('context: localhost\nlocal: [unclosed\n') } }),
    message: [/config\.yaml/, /not valid YAML/],
  },
  {
    id: 'malformed project .astro/config.yaml',
    setup: async (p) => void (await fs.writeFile(path.join(p.dir, '.astro', 'config.yaml'), 'project:\n  name: [oops\n')),
    message: [/\.astro\/config\.yaml/, /not valid YAML/],
  },
  {
    id: 'unknown context (no login for the current domain)',
    setup: async () => ({ tokenId: null, env: { ASTRO_HOME: await homeWith('context: nowhere.example.com\n') } }),
    message: /astro login/,
  },
  {
    id: 'malformed API token',
    setup: async () => ({ tokenId: null, env: { ASTRO_API_TOKEN: 'not-a-token' } }),
    message: /API Token is invalid or malformed/,
  },
  {
    id: 'expired API token',
    setup: async () => ({ tokenId: 'cltokexpired0000000000000' }),
    message: /API Token is expired/,
  },
  {
    id: 'revoked API token (well-formed, refused by the platform)',
    setup: async () => {
      const minted = (await (
        await fetch(`${bed.stack.endpoints.platform.url}/_platform/api-tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ organizationId: 'clorgstellar0000000000000', workspaceId: 'clwksdataplatform00000000', expiresInSeconds: 3600 }),
        })
      ).json()) as { id: string; token: string };
      await fetch(`${bed.stack.endpoints.platform.url}/_platform/api-tokens/${minted.id}/revoke`, { method: 'POST' });
      return { tokenId: null, env: { ASTRO_API_TOKEN: minted.token } };
    },
    message: [/revoked|not valid|invalid/i, /astro login|ASTRO_API_TOKEN/],
  },
  {
    id: 'unknown Deployment id',
    argv: ['cldepdoesnotexist00000000', '--dags'],
    message: /Deployment cldepdoesnotexist00000000 was not found/,
  },
  {
    id: "--workspace-id of another workspace (Astronomer's CLI exits 0 here)",
    argv: [DAG_ON, '--dags', '--workspace-id', 'clwksanalytics00000000000'],
    message: /Invalid workspace id clwksanalytics00000000000/,
  },
  {
    id: 'missing Dockerfile',
    setup: async (p) => void (await fs.rm(path.join(p.dir, 'Dockerfile'))),
    argv: [DAG_ON],
    message: /Dockerfile.* does not exist|There is no Dockerfile/,
  },
  {
    id: '--dags-path that does not exist',
    argv: [DAG_ON, '--dags', '--dags-path', 'no-such-folder'],
    message: /no-such-folder.*does not exist/,
  },
  {
    id: 'symlink loop in dags/',
    setup: async (p) => {
      await fs.symlink('loop_b', path.join(p.dir, 'dags', 'loop_a'));
      await fs.symlink('loop_a', path.join(p.dir, 'dags', 'loop_b'));
    },
    message: /symlink.*loop/,
  },
  {
    id: 'symlink in dags/ that leaves the folder',
    setup: async (p) => void (await fs.symlink('/etc/passwd', path.join(p.dir, 'dags', 'passwd'))),
    message: /points to .* outside the bundle directory/,
  },
  {
    id: 'file name in dags/ that is not UTF-8',
    setup: async (p) =>
      void (await fs.writeFile(Buffer.concat([Buffer.from(path.join(p.dir, 'dags') + '/data-'), Buffer.from([0xff, 0xfe]), Buffer.from('.csv')]), 'x')),
    message: /not valid UTF-8/,
  },
  {
    id: 'huge file in dags/ (300 MB)',
    setup: async (p) => {
      // Sparse: the size is real to every reader, the disk holds nothing.
      const handle = await fs.open(path.join(p.dir, 'dags', 'huge.parquet'), 'w');
      await handle.truncate(300 * 1024 * 1024);
      await handle.close();
    },
    message: /more than .* of files, too much for a DAG bundle/,
  },
  {
    id: 'a FIFO in dags/',
    setup: async (p) => {
      const { execFileSync } = await import('node:child_process');
      execFileSync('mkfifo', [path.join(p.dir, 'dags', 'pipe')]);
    },
    message: /pipe.*not a regular file/,
  },
  {
    id: 'DAG that does not parse',
    setup: async (p) => {
      await fs.writeFile(path.join(p.dir, 'dags', 'broken_dag.py'), 'from airflow.sdk import DAG\nthis is not python\n');
      return { env: { ASTRONOMER_SKIP_PARSE: 'false' } };
    },
    message: [/dags\/broken_dag\.py/, /your local DAGs did not parse/],
  },
  {
    id: 'empty dags/ without a terminal (would delete the DAGs)',
    setup: async (p) => {
      await fs.rm(path.join(p.dir, 'dags'), { recursive: true });
      await fs.mkdir(path.join(p.dir, 'dags'));
    },
    message: /--force/,
    code: 4,
  },
  {
    id: '--image-name of an image the engine does not have',
    argv: [DAG_ON, '--image-name', 'no-such-image:1.0'],
    message: /no-such-image:1\.0/,
  },
  {
    id: 'Docker engine not running',
    argv: [DAG_ON],
    setup: async () => ({ env: { DOCKER_HOST: `unix://${path.join(os.tmpdir(), 'astro-faults-no-docker.sock')}` } }),
    message: /No Docker engine answers at unix:\/\/.*astro-faults-no-docker\.sock/,
  },
  {
    id: 'Astro API down',
    setup: async () => ({ env: { ASTRO_HOME: await homeWith(`context: localhost\nlocal:\n  core: http://127.0.0.1:${await closedPort()}\n`) } }),
    message: [/Could not reach the Astro API/, /refused/],
  },
  {
    id: 'registry down',
    argv: [DAG_ON, '--image'],
    setup: async () => {
      const urls = bed.stack.platform.urls;
      const host = urls.registryHost;
      urls.registryHost = `127.0.0.1:${await closedPort()}`;
      return { restore: () => void (urls.registryHost = host) };
    },
    message: [/failed to push image/, /connection refused/, /was created but not finalized/],
  },
];

beforeAll(async () => {
  [bed, bin] = await Promise.all([startFaultBed('bad-input'), buildCli()]);
});

afterEach(() => bed.closeDangling());

afterAll(async () => {
  if (bed) console.log(`fault suite figures: ${await bed.stop()}`);
});

describe('bad input: a clear message and a non-zero exit, nothing half-deployed', () => {
  for (const row of rows) {
    it(row.id, async () => {
      const project = await bed.project();
      const prepared = (await row.setup?.(project)) ?? {};
      const fault = await bed.begin(row.id, 'bad input', 'refused', { deploymentId: DAG_ON, project });
      let run: CliRun;
      try {
        run = await bed.deploy(row.argv ?? [DAG_ON, '--dags'], {
          cwd: project.dir,
          tokenId: prepared.tokenId,
          env: { ...SKIP_PARSE, ...prepared.env },
        });
      } finally {
        prepared.restore?.();
      }
      const verdict = await fault.refused(run, { message: row.message, ...(row.code !== undefined ? { code: row.code } : {}) });
      expect(verdict.outcome, `${verdict.detail}\n--- stderr ---\n${run.stderr}`).toBe('refused');
      expect(run.code).not.toBe(0);
    });
  }

  it('a file in dags/ the user cannot read (run as an unprivileged user)', async () => {
    const project = await bed.project();
    const secret = path.join(project.dir, 'dags', 'secrets.py');
    await fs.writeFile(secret, 'TOKEN = "x"\n');
    // The unprivileged user may read the project, its home and cache, but not that one file.
    const home = await bed.tempDir('nobody-home');
    await fs.mkdir(path.join(home, '.astro'));
    await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${bed.api.url}\n`);
    for (const dir of [project.dir, home]) {
      await fs.chmod(dir, 0o777);
      for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
        await fs.chmod(path.join(entry.parentPath, entry.name), entry.isDirectory() ? 0o777 : 0o666);
      }
    }
    await fs.chmod(secret, 0o000);
    const fault = await bed.begin('a file in dags/ that cannot be read', 'bad input', 'refused', { deploymentId: DAG_ON, project });
    const child = spawnDeploy(bin, [DAG_ON, '--dags'], {
      cwd: project.dir,
      uid: NOBODY,
      env: {
        ...bed.env(undefined, SKIP_PARSE),
        ASTRO_HOME: home,
        ASTRO_CACHE_DIR: path.join(home, 'cache'),
        DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      },
    });
    const run = await child.done;
    const verdict = await fault.refused(
      { code: run.code ?? -1, stdout: run.stdout, stderr: run.stderr },
      { code: 1, message: [/Cannot read .*secrets\.py/, /permission/i] },
    );
    expect(verdict.outcome, `${verdict.detail}\n--- stderr ---\n${run.stderr}`).toBe('refused');
  });
});
