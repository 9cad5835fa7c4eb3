// `astro deploy` end to end against the local platform: real engine, registry, Azurite and Airflow.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

const DAG_ON = 'cldepdagon000000000000000';
const DAG_OFF = 'cldepdagoff00000000000000';
let stack: Stack;
let home: string;
const temps: string[] = [];

function token(id: string): string {
  const t = stack.tokens.apiTokens.find((x) => x.id === id);
  if (!t) throw new Error(`no seed token ${id}`);
  return t.token;
}

async function project(mutate?: (dir: string) => Promise<void>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-e2e-project-'));
  temps.push(dir);
  await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
  await mutate?.(dir);
  return dir;
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    const rel = path.relative(dir, full);
    out[rel] = entry.isFile()
      ? createHash('sha256')
          .update(await fs.readFile(full))
          .digest('hex')
      : entry.isDirectory()
        ? 'dir'
        : 'other';
  }
  return out;
}

function deploy(argv: string[], options: { cwd: string; tokenId?: string; env?: Record<string, string> }) {
  return runCli(['deploy', ...argv], {
    cwd: options.cwd,
    env: {
      ASTRO_HOME: home,
      ASTRO_API_TOKEN: token(options.tokenId ?? 'cltokwsdataplatform000000'),
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(home, 'cache'),
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      ...options.env,
    },
  });
}

async function platformState(): Promise<{ deployments: Record<string, unknown>[]; deploys: Record<string, unknown>[] }> {
  const response = await fetch(`${stack.endpoints.platform.url}/_platform/state`);
  return (await response.json()) as never;
}

async function createDeployCount(deploymentId: string): Promise<number> {
  const response = await fetch(`${stack.endpoints.platform.url}/_platform/requests?method=POST`);
  const body = (await response.json()) as { requests: { path: string }[] };
  return body.requests.filter((r) => r.path.endsWith(`/deployments/${deploymentId}/deploys`)).length;
}

beforeAll(async () => {
  stack = await startStack({ ports: 0, healthDelayMs: 300 });
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-e2e-home-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
});

afterAll(async () => {
  await stack?.stop();
  for (const dir of [home, ...temps]) if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('astro deploy against the local platform', () => {
  it('deploys image and DAGs, waits until healthy, prints one JSON document, and leaves the project untouched', async () => {
    const dir = await project();
    const before = await snapshot(dir);
    const run = await deploy([DAG_ON, '--wait', '--wait-time', '2m', '--json', '--description', 'e2e full'], { cwd: dir });
    expect(run.stderr).not.toContain('Error:');
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({
      deploymentId: DAG_ON,
      type: 'IMAGE_AND_DAG',
      status: 'HEALTHY',
      image: { tag: expect.stringMatching(/\S/), digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), runtimeVersion: '3.1-8' },
      dags: { version: expect.stringMatching(/\S/), dagFiles: 2 },
      timings: expect.objectContaining({ build: expect.any(Number), push: expect.any(Number), upload: expect.any(Number), parse: expect.any(Number) }),
    });
    const state = await platformState();
    const deployment = state.deployments.find((d) => d.id === DAG_ON)!;
    expect(deployment).toMatchObject({ imageTag: doc.image.tag, dagTarballVersion: doc.dags.version, status: 'HEALTHY' });
    expect(await snapshot(dir)).toEqual(before);
    // The token never shows up in what astro printed.
    expect(run.stdout + run.stderr).not.toContain(token('cltokwsdataplatform000000'));
  });

  it('deploys only the DAGs with --dags, without building', async () => {
    const dir = await project();
    const run = await deploy([DAG_ON, '--dags', '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.type).toBe('DAG_ONLY');
    expect(doc.image).toBeUndefined();
    expect(doc.timings.build).toBeUndefined();
    expect(doc.dags.version).toMatch(/\S/);
  });

  it('deploys only the image with --image, and a prebuilt image with --image-name', async () => {
    const dir = await project();
    const image = await deploy([DAG_ON, '--image', '--json'], { cwd: dir });
    expect(image.code, image.stderr).toBe(0);
    expect(JSON.parse(image.stdout)).toMatchObject({ type: 'IMAGE_ONLY', image: { digest: expect.stringMatching(/^sha256:/) } });
    expect(JSON.parse(image.stdout).dags).toBeUndefined();

    const prebuilt = await deploy([DAG_OFF, '--image-name', provisioned().RUNTIME_IMAGE, '--json'], { cwd: dir });
    expect(prebuilt.code, prebuilt.stderr).toBe(0);
    expect(JSON.parse(prebuilt.stdout)).toMatchObject({ type: 'IMAGE_AND_DAG', deploymentId: DAG_OFF, image: { runtimeVersion: '3.1-8' } });
    expect(prebuilt.stderr).toContain('Skipping building image...');
  });

  it('a redeploy with the same inputs takes the image built before; other labels rebuild from the cache; --no-cache builds every step again', async () => {
    // Inputs of its own: an earlier test's build of the example project is remembered too.
    const dir = await project(async (d) => fs.writeFile(path.join(d, 'include', 'rebuild.txt'), `rebuild ${Date.now()}\n`));
    // The Dockerfile's steps taken from the cache: the classic builder's "Using cache", BuildKit's "[2/5] … (cached)"
    // (not its internal steps, such as the context's copy, nor FROM, which BuildKit always finds in the local store).
    const cachedLines = (stderr: string) => stderr.split('\n').filter((line) => /Using cache|^\[[^\]]*\d+\/\d+\] (?!FROM ).*\(cached\)$/.test(line));
    const steps = /Step \d+\/\d+|\[\d+\/\d+\]/;
    const reusedNotice = /This machine built the image for these inputs before \((sha256:[0-9a-f]{64})\): using it, not building again\./;
    const first = await deploy([DAG_ON, '--image', '--force', '--verbose'], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(reusedNotice);

    // Nothing the image is made of changed, nor its labels: no build is sent, the image built first is deployed.
    const again = await deploy([DAG_ON, '--image', '--force', '--verbose'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    const reused = reusedNotice.exec(again.stderr);
    expect(reused, again.stderr).not.toBeNull();
    expect(again.stderr).not.toMatch(steps);
    const remembered = JSON.parse(await fs.readFile(path.join(home, 'cache', 'built-images.json'), 'utf8')) as Record<string, string>;
    expect(Object.values(remembered)).toContain(reused![1]);

    // Another description is another label: built, from the cache.
    const warm = await deploy([DAG_ON, '--image', '--force', '--verbose', '--description', `warm ${Date.now()}`], { cwd: dir });
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).not.toMatch(reusedNotice);
    expect(cachedLines(warm.stderr).length).toBeGreaterThan(0);

    // A remembered image the engine no longer has is built again.
    await fs.writeFile(
      path.join(home, 'cache', 'built-images.json'),
      JSON.stringify(Object.fromEntries(Object.keys(remembered).map((key) => [key, `sha256:${'0'.repeat(64)}`]))),
    );
    const gone = await deploy([DAG_ON, '--image', '--force', '--verbose'], { cwd: dir });
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stderr).not.toMatch(reusedNotice);
    expect(gone.stderr).toMatch(steps);

    const cold = await deploy([DAG_ON, '--image', '--force', '--verbose', '--no-cache'], { cwd: dir });
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stderr).not.toMatch(reusedNotice);
    expect(cachedLines(cold.stderr)).toEqual([]);
    expect(cold.stderr).toMatch(steps);
  });

  it('a Dockerfile of several stages is built every time (the image-inputs digest covers the first stage only)', async () => {
    const dir = await project(async (d) => {
      const dockerfile = await fs.readFile(path.join(d, 'Dockerfile'), 'utf8');
      const from = /^FROM .*$/m.exec(dockerfile)![0];
      await fs.writeFile(path.join(d, 'Dockerfile'), `${from} AS tools\nRUN echo stage > /tmp/stage\n${dockerfile}`);
      await fs.writeFile(path.join(d, 'include', 'stages.txt'), `stages ${Date.now()}\n`);
    });
    for (let i = 0; i < 2; i++) {
      const run = await deploy([DAG_ON, '--image', '--force', '--verbose'], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toContain('This machine built the image for these inputs before');
      expect(run.stderr).toMatch(/Step \d+\/\d+|\[\d+\/\d+\]/);
    }
  });

  it('a redeploy of an image the registry has gives it only the new tag; a remembered manifest the registry lacks gets the push', async () => {
    const dir = await project(async (d) => fs.writeFile(path.join(d, 'include', 'retag.txt'), `retag ${Date.now()}\n`));
    const engine = { ...process.env, DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}` };
    /** The engine's push events (an image push it made) between two times, in seconds. */
    const enginePushes = (since: number, until: number) =>
      execFileSync(
        provisioned().DOCKER_BIN,
        ['events', '--since', since.toFixed(3), '--until', until.toFixed(3), '--filter', 'type=image', '--filter', 'event=push', '--format', '{{.Actor.ID}}'],
        {
          env: engine,
          encoding: 'utf8',
        },
      )
        .split('\n')
        .filter(Boolean);
    const run = async () => {
      const since = Date.now() / 1000;
      const result = await deploy([DAG_ON, '--image', '--force', '--json'], { cwd: dir });
      expect(result.code, result.stderr).toBe(0);
      const doc = JSON.parse(result.stdout) as { image: { repository: string; tag: string; digest: string } };
      // This deploy's pushes only (the tag is its own; an earlier test's push may fall in the same second).
      const pushes = enginePushes(since, Date.now() / 1000 + 1).filter((ref) => ref.endsWith(`:${doc.image.tag}`));
      return { doc, stderr: result.stderr, pushes };
    };

    const first = await run();
    expect(first.pushes).toEqual([`${first.doc.image.repository}:${first.doc.image.tag}`]);
    const again = await run();
    expect(again.stderr).toContain(`The registry already has this image (${first.doc.image.digest})`);
    expect(again.doc.image.tag).not.toBe(first.doc.image.tag);
    expect(again.doc.image.digest).toBe(first.doc.image.digest);
    expect(again.pushes).toEqual([]);
    // The registry itself announced the tag (its push notification), for the manifest the first deploy pushed.
    await expect
      .poll(
        async () =>
          ((await platformState()) as unknown as { registryPushes: { tag: string; digest: string }[] }).registryPushes.find(
            (p) => p.tag === again.doc.image.tag,
          )?.digest,
      )
      .toBe(first.doc.image.digest);
    expect((await platformState()).deployments.find((d) => d.id === DAG_ON)).toMatchObject({ imageTag: again.doc.image.tag });

    // A remembered digest the repository does not have (the registry cleaned up, another machine's file): pushed.
    const file = path.join(home, 'cache', 'pushed-images.json');
    const remembered = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, { digest: string }>;
    for (const entry of Object.values(remembered)) entry.digest = `sha256:${'0'.repeat(64)}`;
    await fs.writeFile(file, JSON.stringify(remembered));
    const lost = await run();
    expect(lost.stderr).not.toContain('The registry already has this image');
    expect(lost.doc.image.digest).toBe(first.doc.image.digest);
    expect(lost.pushes).toEqual([`${lost.doc.image.repository}:${lost.doc.image.tag}`]);
    expect((await run()).pushes).toEqual([]);
  });

  it("--image-name on a Deployment with DAG deploys on ships dags/ beside the image, as Astronomer's CLI does", async () => {
    const dir = await project();
    const run = await deploy([DAG_ON, '--image-name', provisioned().RUNTIME_IMAGE, '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ type: 'IMAGE_AND_DAG', image: { runtimeVersion: '3.1-8' }, dags: { version: expect.any(String) } });
    const record = (await platformState()).deploys.find((d) => d.id === doc.deployId) as { type?: string; dagTarballVersion?: string } | undefined;
    expect(record).toMatchObject({ type: 'IMAGE_AND_DAG', dagTarballVersion: doc.dags.version });
  });

  it("adds the monitoring DAG to a Hybrid Deployment's bundle only, without touching the project", async () => {
    const HYBRID = 'cldephybrid00000000000000';
    const dir = await project();
    const before = await snapshot(dir);
    const hybrid = await deploy([HYBRID, '--dags', '--json'], { cwd: dir, tokenId: 'cltokorgnebula00000000000' });
    expect(hybrid.code, hybrid.stderr).toBe(0);
    expect(hybrid.stderr).toContain('astronomer_monitoring_dag.py');
    const doc = JSON.parse(hybrid.stdout);
    // The user's two DAGs are what "DAG files" counts; the bundle carries a third.
    expect(doc).toMatchObject({ deploymentId: HYBRID, type: 'DAG_ONLY', dags: { dagFiles: 2 } });
    const deploys = (await platformState()).deploys as { id: string; dagBundleFiles?: string[]; status?: string }[];
    const record = deploys.find((d) => d.id === doc.deployId)!;
    expect(record.status).toBe('DEPLOYED');
    expect(record.dagBundleFiles).toContain('dags/astronomer_monitoring_dag.py');
    expect(record.dagBundleFiles).toEqual(expect.arrayContaining(['dags/example_astronauts.py', 'dags/example_etl.py']));
    expect(await snapshot(dir)).toEqual(before);

    const dedicated = await deploy([DAG_ON, '--dags', '--json'], { cwd: dir });
    expect(dedicated.code, dedicated.stderr).toBe(0);
    const other = (await platformState()).deploys.find((d) => d.id === JSON.parse(dedicated.stdout).deployId) as { dagBundleFiles?: string[] };
    expect(other.dagBundleFiles).not.toContain('dags/astronomer_monitoring_dag.py');
    expect(dedicated.stderr).not.toContain('astronomer_monitoring_dag.py');
  });

  it('refuses a project with uncommitted changes unless -f (exit 1, nothing created), and deploys --dags-path from outside a project', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = await project();
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: dir,
        stdio: 'ignore',
        env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' },
      });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'project');
    await fs.appendFile(path.join(dir, 'dags', 'example_etl.py'), '\n# changed\n');
    const creates = await createDeployCount(DAG_ON);
    const dirty = await deploy([DAG_ON, '--dags'], { cwd: dir });
    expect(dirty.code, dirty.stderr).toBe(1);
    expect(dirty.stderr).toContain('Project directory has uncommitted changes, use `astro deploy [deployment-id] -f` to force deploy.');
    expect(await createDeployCount(DAG_ON)).toBe(creates);
    const forced = await deploy([DAG_ON, '--dags', '-f'], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);

    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-e2e-outside-'));
    temps.push(outside);
    const fromPath = await deploy([DAG_ON, '-d', '--dags-path', path.join(dir, 'dags'), '--json'], { cwd: outside });
    expect(fromPath.code, fromPath.stderr).toBe(0);
    expect(JSON.parse(fromPath.stdout)).toMatchObject({ type: 'DAG_ONLY', dags: { dagFiles: expect.any(Number) } });
  });

  it('stops on a DAG that does not parse before anything reaches the platform, and --force deploys anyway', async () => {
    const dir = await project(async (d) => fs.writeFile(path.join(d, 'dags', 'broken_dag.py'), 'from airflow.sdk import DAG\nthis is not python\n'));
    const creates = await createDeployCount(DAG_ON);
    const run = await deploy([DAG_ON, '--dags'], { cwd: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('dags/broken_dag.py');
    expect(run.stderr).toContain('your local DAGs did not parse');
    expect(await createDeployCount(DAG_ON)).toBe(creates);

    const forced = await deploy([DAG_ON, '--dags', '--force'], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(await createDeployCount(DAG_ON)).toBe(creates + 1);
  });

  // The Runtime image's layout: the project root is importable, so DAGs import from include/ and plugins/. The parse
  // gate must pass such a project on the host (a Python with Airflow) and in the image (none on the host).
  it.each([
    { mode: 'host', python: () => provisioned().AIRFLOW_PYTHON },
    { mode: 'image', python: () => '/nonexistent/python' },
  ])('passes the parse gate ($mode mode) for DAGs importing from include/ and plugins/, and stops on a missing include module', async ({ python }) => {
    const layout = path.resolve('fixtures/parse/layout');
    const dir = await project(async (d) => {
      // include/ and plugins/ modules, and the project's .env that include/util.py reads (as the Runtime image applies it).
      for (const part of ['include', 'plugins', '.env']) await fs.cp(path.join(layout, part), path.join(d, part), { recursive: true });
      for (const dag of ['from_include.py', 'from_plugins.py', 'reads_include_file.py']) {
        await fs.copyFile(path.join(layout, 'dags', dag), path.join(d, 'dags', dag));
      }
    });
    const env = { ASTRO_PARSE_PYTHON: python() };
    const creates = await createDeployCount(DAG_ON);
    const run = await deploy([DAG_ON, '--dags', '--json'], { cwd: dir, env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('No errors detected in your DAGs');
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ type: 'DAG_ONLY', dags: { dagFiles: 5 }, timings: { parse: expect.any(Number) } });
    expect(await createDeployCount(DAG_ON)).toBe(creates + 1);

    // The same gate refuses a DAG whose include/ module does not exist: the pass above is the layout's, not a skip.
    await fs.copyFile(path.join(layout, 'dags', 'missing_include.py'), path.join(dir, 'dags', 'missing_include.py'));
    const missing = await deploy([DAG_ON, '--dags'], { cwd: dir, env });
    expect(missing.code, missing.stderr).toBe(1);
    expect(missing.stderr).toContain('dags/missing_include.py');
    expect(missing.stderr).toMatch(/No module named 'include\.not_there'/);
    expect(await createDeployCount(DAG_ON)).toBe(creates + 1);
  });

  it('stops when --pytest finds a failing test', async () => {
    const dir = await project(async (d) => fs.writeFile(path.join(d, 'tests', 'test_fails.py'), 'def test_fails():\n    assert 1 == 2\n'));
    const creates = await createDeployCount(DAG_ON);
    const run = await deploy([DAG_ON, '--dags', '--pytest'], { cwd: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('at least 1 pytest in your tests directory failed');
    expect(await createDeployCount(DAG_ON)).toBe(creates);
  });

  it('removes every DAG with an empty dags/ only under --force, which Astro takes as a healthy deploy', async () => {
    const dir = await project(async (d) => {
      await fs.rm(path.join(d, 'dags'), { recursive: true });
      await fs.mkdir(path.join(d, 'dags'));
    });
    const refused = await deploy([DAG_ON, '--dags'], { cwd: dir });
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toContain('--force');
    const run = await deploy([DAG_ON, '--dags', '--force', '--wait', '--wait-time', '1m'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
  });

  it('reports an UNHEALTHY Deployment with exit 1 and the reason', async () => {
    const dir = await project();
    // The platform rolls the next deploy out to UNHEALTHY, as when the new code crashes the scheduler.
    await fetch(`${stack.endpoints.platform.url}/_platform/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rollout: { failNext: 1, reason: 'scheduler CrashLoopBackOff' } }),
    });
    const run = await deploy([DAG_ON, '--dags', '--wait', '--wait-time', '1m'], { cwd: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/UNHEALTHY after the deploy: .*scheduler CrashLoopBackOff/);
  });

  it('refuses to choose a Deployment without a terminal, naming the flags', async () => {
    const dir = await project();
    const run = await deploy(['--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(4);
    expect(JSON.parse(run.stdout).error).toMatchObject({ kind: 'needs-input', missingFlags: ['<deployment-id>', '--deployment-name'] });
  });

  it('finds a Deployment by name and refuses --dags where DAG deploys are off', async () => {
    const dir = await project();
    const run = await deploy(['--deployment-name', 'dag-deploy-off', '--dags'], { cwd: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('DAG-only deploys are not enabled for this Deployment');
  });

  it('refuses an expired API token and a directory that is not an Astro project', async () => {
    const dir = await project();
    const expired = await deploy([DAG_ON], { cwd: dir, tokenId: 'cltokexpired0000000000000' });
    expect(expired.code, expired.stderr).toBe(1);
    expect(expired.stderr).toContain('API Token is expired');
    const notProject = await deploy([DAG_ON], { cwd: os.tmpdir() });
    expect(notProject.code, notProject.stderr).toBe(1);
    expect(notProject.stderr).toContain('this is not an Astro project directory');
  });

  it('refuses conflicting flags as usage errors', async () => {
    const dir = await project();
    for (const argv of [
      ['--dags', '--image'],
      ['--image-name', 'x', '--dags'],
      ['--wait-time', '5m'],
    ]) {
      const run = await deploy([DAG_ON, ...argv], { cwd: dir });
      expect(run.code, run.stderr).toBe(2);
    }
  });
});
