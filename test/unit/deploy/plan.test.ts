import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import tarStream from 'tar-stream';
import { NeedsInputError } from '../../../src/errors.js';
import { createDagBundle } from '../../../src/bundle/tarball.js';
import { deployToAstro, type DeployPorts, type DeployRequest } from '../../../src/deploy/astro/deploy.js';
import { prefetchDeployed, readDeployed } from '../../../src/deploy/astro/plan.js';
import { buildSecretIds, dagBundleDigest, imageInputsDigest, tarContentDigest } from '../../../src/deploy/kernel/digest.js';
import { createContextFilter, listBuildContext, readDockerignore, snapshotBuildContext } from '../../../src/image/context.js';
import { changedFilesSince } from '../../../src/deploy/kernel/git.js';
import {
  comparePart,
  contentTrailer,
  decide,
  describeWithContent,
  readContentTrailer,
  stripContentTrailer,
  type PartComparison,
} from '../../../src/deploy/kernel/plan.js';
import type { AstroControlPlane } from '../../../src/platform/astro/client.js';
import type { Deploy, Deployment } from '../../../src/platform/astro/schemas.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const temps: string[] = [];

afterAll(async () => {
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-plan-unit-'));
  temps.push(dir);
  return dir;
}

describe('the content trailer', () => {
  it('rides at the end of the description and reads back', () => {
    const text = describeWithContent('Add the hello DAG', { image: `sha256:${A}`, dags: B });
    expect(text).toBe(`Add the hello DAG\n\nastro-content: image=${A.slice(0, 32)} dags=${B.slice(0, 32)}`);
    expect(readContentTrailer(text)).toEqual({ image: A.slice(0, 32), dags: B.slice(0, 32) });
    expect(stripContentTrailer(text)).toBe('Add the hello DAG');
    expect(describeWithContent('', { dags: B })).toBe(`astro-content: dags=${B.slice(0, 32)}`);
    expect(describeWithContent('as typed', {})).toBe('as typed');
  });

  it("shortens a long description, never the trailer, to fit Astro's 1000 characters", () => {
    const text = describeWithContent('x'.repeat(2000), { image: A, dags: B });
    expect(text.length).toBeLessThanOrEqual(1000);
    expect(readContentTrailer(text)).toEqual({ image: A.slice(0, 32), dags: B.slice(0, 32) });
  });

  it('reads nothing from descriptions without a well-formed trailer', () => {
    for (const d of [undefined, '', 'Deploy from CI', 'astro-content:', 'astro-content: image=xyz dags=12', `astro-content: tag=${A}`]) {
      expect(readContentTrailer(d)).toBeUndefined();
    }
    expect(() => contentTrailer({ image: 'not-a-digest' })).toThrow(/not a sha256 digest/);
  });
});

describe('comparing one part', () => {
  const deployed = { deployId: 'd-1', recorded: A.slice(0, 32) };
  it('by recorded content digest', () => {
    expect(comparePart({ what: 'image', local: A, deployed, counts: () => true })).toMatchObject({ state: 'unchanged', basis: 'content' });
    expect(comparePart({ what: 'image', local: B, deployed, counts: () => true })).toMatchObject({ state: 'changed', basis: 'content' });
    // A recorded digest too short to vouch for the content does not count as a match.
    expect(comparePart({ what: 'image', local: A, deployed: { deployId: 'd-1', recorded: A.slice(0, 16) }, counts: () => true }).state).toBe('changed');
  });

  it('by the files git says changed since the deployed commit, when no digest was recorded', () => {
    const byGit = { deployId: 'd-2', commit: 'abcdef1234567' };
    const counts = (f: string) => f.startsWith('dags/');
    expect(comparePart({ what: 'DAGs', local: A, deployed: byGit, changedFiles: ['requirements.txt'], counts })).toMatchObject({
      state: 'unchanged',
      basis: 'git',
    });
    expect(comparePart({ what: 'DAGs', local: A, deployed: byGit, changedFiles: ['dags/a.py', 'README.md'], counts })).toMatchObject({
      state: 'changed',
      basis: 'git',
      files: ['dags/a.py'],
    });
  });

  it('unknown when nothing traces it: no deploy, or one with neither digest nor a commit this clone has', () => {
    expect(comparePart({ what: 'image', local: A, deployed: undefined, counts: () => true }).state).toBe('unknown');
    expect(comparePart({ what: 'image', local: A, deployed: { deployId: 'd-3' }, counts: () => true }).state).toBe('unknown');
    expect(comparePart({ what: 'image', local: A, deployed: { deployId: 'd-3', commit: 'abcdef1' }, changedFiles: undefined, counts: () => true }).state).toBe(
      'unknown',
    );
  });
});

describe('the decision', () => {
  const part = (state: PartComparison['state']): PartComparison => ({ state, basis: state === 'unknown' ? 'none' : 'content', why: state });
  const cases: [string, Parameters<typeof decide>[0], string][] = [
    ['nothing changed', { mode: 'full', dagDeploy: true, force: false, image: part('unchanged'), dags: part('unchanged') }, 'noop:IMAGE_AND_DAG'],
    ['nothing changed, --force', { mode: 'full', dagDeploy: true, force: true, image: part('unchanged'), dags: part('unchanged') }, 'deploy:IMAGE_AND_DAG'],
    ['only DAGs changed', { mode: 'full', dagDeploy: true, force: false, image: part('unchanged'), dags: part('changed') }, 'deploy:DAG_ONLY:auto'],
    ['only DAGs changed, --force', { mode: 'full', dagDeploy: true, force: true, image: part('unchanged'), dags: part('changed') }, 'deploy:DAG_ONLY:auto'],
    ['DAG bundle untraced', { mode: 'full', dagDeploy: true, force: false, image: part('unchanged'), dags: part('unknown') }, 'deploy:DAG_ONLY:auto'],
    ['image changed', { mode: 'full', dagDeploy: true, force: false, image: part('changed'), dags: part('unchanged') }, 'deploy:IMAGE_AND_DAG'],
    ['image untraced', { mode: 'full', dagDeploy: true, force: false, image: part('unknown'), dags: part('unchanged') }, 'deploy:IMAGE_AND_DAG'],
    ['DAG deploys off, unchanged', { mode: 'full', dagDeploy: false, force: false, image: part('unchanged') }, 'noop:IMAGE_AND_DAG'],
    ['DAG deploys off, image changed', { mode: 'full', dagDeploy: false, force: false, image: part('changed') }, 'deploy:IMAGE_AND_DAG'],
    ['--dags wins', { mode: 'dags', dagDeploy: true, force: false, image: part('unchanged'), dags: part('unchanged') }, 'deploy:DAG_ONLY'],
    ['--image wins', { mode: 'image', dagDeploy: true, force: false, image: part('unchanged'), dags: part('changed') }, 'deploy:IMAGE_ONLY'],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      const d = decide(input);
      expect(`${d.action}:${d.type}${d.automatic ? ':auto' : ''}`).toBe(expected);
    });
  }
});

async function tarOf(entries: { name: string; body?: string; mode?: number; mtime?: Date; uid?: number }[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const e of entries) pack.entry({ name: e.name, mode: e.mode ?? 0o644, mtime: e.mtime ?? new Date(0), uid: e.uid ?? 0 }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('content digests', () => {
  it('see names, bytes and the executable bit, not mtimes or owners', async () => {
    const base = await tarContentDigest(
      await tarOf([
        { name: 'a.py', body: 'x = 1\n' },
        { name: 'b.sh', body: 'echo\n', mode: 0o755 },
      ]),
    );
    const touched = await tarContentDigest(
      await tarOf([
        { name: 'a.py', body: 'x = 1\n', mtime: new Date(), uid: 1000 },
        { name: 'b.sh', body: 'echo\n', mode: 0o775 },
      ]),
    );
    expect(touched.digest).toBe(base.digest);
    expect(base).toMatchObject({ files: 2, bytes: 11 });
    for (const changed of [
      [
        { name: 'a.py', body: 'x = 2\n' },
        { name: 'b.sh', body: 'echo\n', mode: 0o755 },
      ],
      [
        { name: 'c.py', body: 'x = 1\n' },
        { name: 'b.sh', body: 'echo\n', mode: 0o755 },
      ],
      [
        { name: 'a.py', body: 'x = 1\n' },
        { name: 'b.sh', body: 'echo\n', mode: 0o644 },
      ],
    ]) {
      expect((await tarContentDigest(await tarOf(changed))).digest).not.toBe(base.digest);
    }
  });

  it('give two copies of a DAGs folder with different mtimes the same bundle digest, and a one-byte change another', async () => {
    const [one, two] = [await tempDir(), await tempDir()];
    for (const dir of [one, two]) {
      await fs.mkdir(path.join(dir, 'sub'));
      await fs.writeFile(path.join(dir, 'a.py'), 'from airflow import DAG\n');
      await fs.writeFile(path.join(dir, 'sub', 'b.py'), 'x = 1\n');
    }
    await fs.utimes(path.join(two, 'a.py'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const digestOf = async (dir: string) => (await dagBundleDigest((await createDagBundle({ sourceDir: dir, prefix: 'dags' })).data)).digest;
    const first = await createDagBundle({ sourceDir: one, prefix: 'dags' });
    const second = await createDagBundle({ sourceDir: two, prefix: 'dags' });
    expect(first.sha256).not.toBe(second.sha256);
    expect(await digestOf(one)).toBe(await digestOf(two));
    await fs.appendFile(path.join(two, 'sub', 'b.py'), ' ');
    expect(await digestOf(two)).not.toBe(await digestOf(one));
  });

  it("read the build context as the build sends it: .dockerignore'd files and (for DAG deploys) dags/ do not count", async () => {
    const dir = await tempDir();
    await fs.mkdir(path.join(dir, 'dags'));
    await fs.mkdir(path.join(dir, 'include'));
    await fs.mkdir(path.join(dir, 'logs'));
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM runtime:3.1-8\n');
    await fs.writeFile(path.join(dir, '.dockerignore'), 'logs/\n*.tmp\n!keep.tmp\n');
    await fs.writeFile(path.join(dir, 'dags', 'a.py'), 'a\n');
    await fs.writeFile(path.join(dir, 'include', 'x.sql'), 'select 1\n');
    await fs.writeFile(path.join(dir, 'keep.tmp'), 'kept\n');
    await fs.writeFile(path.join(dir, 'drop.tmp'), 'dropped\n');
    await fs.writeFile(path.join(dir, 'logs', 'l.log'), 'log\n');
    const digest = async (excludeDags: boolean) => snapshotBuildContext(dir, createContextFilter(await readDockerignore(dir), { excludeDags }));
    const sent = (await listBuildContext(dir, { excludeDags: true })).filter((n) => !n.endsWith('/'));
    const first = await digest(true);
    // The same files the build context sends.
    expect(first.files).toBe(sent.length);
    expect(sent.sort()).toEqual(['.dockerignore', 'Dockerfile', 'include/x.sql', 'keep.tmp']);
    const withDags = await digest(false);
    for (const [file, text] of [
      ['drop.tmp', 'x'],
      ['logs/l.log', 'x'],
      ['dags/a.py', 'b\n'],
    ] as const)
      await fs.appendFile(path.join(dir, file), text);
    expect((await digest(true)).digest).toBe(first.digest);
    expect((await digest(false)).digest).not.toBe(withDags.digest);
    for (const file of ['keep.tmp', 'include/x.sql', 'Dockerfile']) {
      const before = (await digest(true)).digest;
      await fs.appendFile(path.join(dir, file), '#');
      expect((await digest(true)).digest, file).not.toBe(before);
    }
  });

  it('make the image inputs digest depend on the context, build args, secret ids, base image and whether DAGs are left out', () => {
    const input = { context: A, excludeDags: true, buildArgs: { X: '1' }, secretIds: ['pip', 'gh'], baseImage: 'runtime:3.1-8@sha256:1' };
    const digest = imageInputsDigest(input);
    expect(imageInputsDigest({ ...input, secretIds: ['gh', 'pip'] })).toBe(digest);
    for (const other of [{ context: B }, { excludeDags: false }, { buildArgs: { X: '2' } }, { secretIds: ['pip'] }, { baseImage: 'runtime:3.1-8@sha256:2' }]) {
      expect(imageInputsDigest({ ...input, ...other })).not.toBe(digest);
    }
    expect(buildSecretIds(['id=pip,src=/tmp/pip.conf', 'src=x,id=gh', 'plain'])).toEqual(['pip', 'gh', 'plain']);
  });
});

function deploymentOf(overrides: Partial<Deployment> = {}): Deployment {
  return {
    id: 'dep-1',
    name: 'prod',
    namespace: 'cosmic-planet-1234',
    runtimeVersion: '3.1-8',
    organizationId: 'org-1',
    workspaceId: 'ws-1',
    webServerUrl: '',
    isDagDeployEnabled: true,
    isCicdEnforced: false,
    status: 'HEALTHY',
    imageTag: 'tag-1',
    dagTarballVersion: 'v-2',
    ...overrides,
  } as Deployment;
}

const imageDeploy: Deploy = {
  id: 'deploy-1',
  type: 'IMAGE_AND_DAG',
  status: 'DEPLOYED',
  imageRepository: 'r',
  imageTag: 'tag-1',
  dagTarballVersion: 'v-1',
  description: `first\n\n${contentTrailer({ image: A, dags: A })}`,
  createdAt: '2026-01-01T00:00:00Z',
};
const dagDeploy: Deploy = {
  id: 'deploy-2',
  type: 'DAG_ONLY',
  status: 'DEPLOYED',
  imageRepository: 'r',
  imageTag: 'tag-2',
  dagTarballVersion: 'v-2',
  description: contentTrailer({ dags: B }),
  createdAt: '2026-01-02T00:00:00Z',
  git: { commitSha: 'abcdef1234567' },
};

function controlPlaneWith(deploys: Deploy[], deployment: Deployment, calls: string[] = []): AstroControlPlane {
  return {
    getSelfUser: async () => ({ id: 'u' }),
    listOrganizations: async () => [],
    getOrganization: async () => ({ id: 'org-1', name: 'o' }),
    listWorkspaces: async () => [],
    listDeployments: async () => [deployment],
    getDeployment: async () => {
      calls.push('get');
      return deployment;
    },
    getDeploymentOptions: async () => ({ runtimeReleases: [{ version: '3.1-8' }] }),
    listDeploys: async () => {
      calls.push('list-deploys');
      return deploys;
    },
    createDeploy: async (_o, _d, body) => {
      calls.push(`create:${body.type}`);
      calls.push(`description:${body.description}`);
      return { id: 'deploy-3', imageRepository: 'reg/cosmic/airflow', imageTag: 'tag-3', dagsUploadUrl: 'http://blob/sas' } as never;
    },
    finalizeDeploy: async () => {
      calls.push('finalize');
      return { id: 'deploy-3', imageRepository: '', imageTag: 'tag-3', dagTarballVersion: 'v-3' } as never;
    },
  };
}

describe('what the Deployment runs, read from the deploy list', () => {
  it('traces the image to the newest image deploy and the bundle to the newest bundle deploy the Deployment still runs', async () => {
    const deployment = deploymentOf();
    const state = await readDeployed(controlPlaneWith([dagDeploy, imageDeploy], deployment), 'org-1', deployment, new AbortController().signal);
    expect(state.image).toEqual({ deployId: 'deploy-1', at: '2026-01-01T00:00:00Z', recorded: A.slice(0, 32), recordedIn: 'description' });
    expect(state.dags).toEqual({
      deployId: 'deploy-2',
      at: '2026-01-02T00:00:00Z',
      recorded: B.slice(0, 32),
      recordedIn: 'description',
      commit: 'abcdef1234567',
    });
    expect(state.latest?.deployId).toBe('deploy-2');
  });

  it('traces nothing the Deployment no longer runs (a rollback, another tool) nor unfinished deploys', async () => {
    const deployment = deploymentOf({ imageTag: 'tag-from-elsewhere', dagTarballVersion: 'v-elsewhere' });
    const state = await readDeployed(controlPlaneWith([dagDeploy, imageDeploy], deployment), 'org-1', deployment, new AbortController().signal);
    expect(state).toEqual({ latest: undefined });
    const failed = await readDeployed(
      controlPlaneWith([{ ...imageDeploy, status: 'INITIALIZED' }], deploymentOf()),
      'org-1',
      deploymentOf(),
      new AbortController().signal,
    );
    expect(failed.image).toBeUndefined();
  });
});

describe('the running image, read from the registry', () => {
  const signal = new AbortController().signal;
  const untraced = { ...imageDeploy, description: 'edited' };
  it("gives the image's digest, and its inputs label when the description kept none", async () => {
    const asked: string[] = [];
    const registry = {
      inspect: async (repository: string, tag: string) => {
        asked.push(`${repository}:${tag}`);
        return { digest: 'sha256:feed', labels: { 'io.astronomer.deploy.image-inputs': `sha256:${B}` } };
      },
      alwaysInspect: false,
    };
    const traced = await readDeployed(controlPlaneWith([imageDeploy], deploymentOf()), 'org-1', deploymentOf(), signal, undefined, registry);
    // The description had the digest: no registry call unless asked to show it.
    expect(asked).toEqual([]);
    expect(traced.image).toMatchObject({ recorded: A.slice(0, 32), recordedIn: 'description' });
    const fromLabel = await readDeployed(controlPlaneWith([untraced], deploymentOf()), 'org-1', deploymentOf(), signal, undefined, registry);
    expect(asked).toEqual(['r:tag-1']);
    expect(fromLabel.image).toMatchObject({ recorded: B.slice(0, 32), recordedIn: 'image label', imageDigest: 'sha256:feed' });
    const shown = await readDeployed(controlPlaneWith([imageDeploy], deploymentOf()), 'org-1', deploymentOf(), signal, undefined, {
      ...registry,
      alwaysInspect: true,
    });
    expect(shown.image).toMatchObject({ recorded: A.slice(0, 32), recordedIn: 'description', imageDigest: 'sha256:feed' });
  });

  it('treats a registry that fails, or an image without the label, as no answer', async () => {
    const failing = {
      inspect: async () => {
        throw new Error('registry down');
      },
      alwaysInspect: true,
    };
    const a = await readDeployed(controlPlaneWith([untraced], deploymentOf()), 'org-1', deploymentOf(), signal, undefined, failing);
    expect(a.image).toEqual({ deployId: 'deploy-1', at: '2026-01-01T00:00:00Z' });
    const bare = { inspect: async () => ({ digest: 'sha256:feed', labels: { 'io.astronomer.deploy.image-inputs': 'sha256:short' } }), alwaysInspect: false };
    const b = await readDeployed(controlPlaneWith([untraced], deploymentOf()), 'org-1', deploymentOf(), signal, undefined, bare);
    expect(b.image).toEqual({ deployId: 'deploy-1', at: '2026-01-01T00:00:00Z', imageDigest: 'sha256:feed' });
  });
});

describe('the plan reads of a Deployment named up front', () => {
  const signal = new AbortController().signal;
  const untraced = { ...imageDeploy, description: 'edited' };
  it('asks the registry as soon as the deploy list arrives, and readDeployed uses that answer instead of asking again', async () => {
    const asked: string[] = [];
    let answer!: (image: { digest: string; labels: Record<string, string> }) => void;
    const registry = {
      inspect: (repository: string, tag: string) => {
        asked.push(`${repository}:${tag}`);
        return new Promise<{ digest: string; labels: Record<string, string> }>((resolve) => (answer = resolve));
      },
      alwaysInspect: false,
    };
    const calls: string[] = [];
    const controlPlane = controlPlaneWith([untraced], deploymentOf(), calls);
    const prefetched = prefetchDeployed(controlPlane, 'org-1', 'dep-1', signal, registry)!;
    await prefetched.deploys;
    await new Promise((resolve) => setImmediate(resolve));
    // Before the Deployment's answer or the plan: the registry is already being asked.
    expect(asked).toEqual(['r:tag-1']);
    answer({ digest: 'sha256:feed', labels: { 'io.astronomer.deploy.image-inputs': `sha256:${B}` } });
    const state = await readDeployed(controlPlane, 'org-1', deploymentOf(), signal, prefetched, registry);
    expect(asked).toEqual(['r:tag-1']);
    expect(calls).toEqual(['list-deploys']);
    expect(state.image).toMatchObject({ recorded: B.slice(0, 32), recordedIn: 'image label', imageDigest: 'sha256:feed' });
  });

  it('does not ask the registry when the description recorded the digest, nor uses an answer for an image the Deployment no longer runs', async () => {
    const asked: string[] = [];
    const registry = {
      inspect: async (repository: string, tag: string) => {
        asked.push(`${repository}:${tag}`);
        return { digest: 'sha256:feed', labels: {} };
      },
      alwaysInspect: false,
    };
    const traced = prefetchDeployed(controlPlaneWith([imageDeploy], deploymentOf()), 'org-1', 'dep-1', signal, registry)!;
    expect(await traced.inspection).toBeUndefined();
    expect(asked).toEqual([]);
    const rolledBack = deploymentOf({ imageTag: 'tag-0' });
    const moved = prefetchDeployed(controlPlaneWith([untraced], rolledBack), 'org-1', 'dep-1', signal, registry)!;
    const state = await readDeployed(controlPlaneWith([untraced], rolledBack), 'org-1', rolledBack, signal, moved, registry);
    expect(state.image).toBeUndefined();
  });
});

describe('deployToAstro with a plan', () => {
  function setup(local: { image: string; dags: string }, deploys: Deploy[] = [dagDeploy, imageDeploy]) {
    const calls: string[] = [];
    const events: string[] = [];
    const deployment = deploymentOf();
    const ports: DeployPorts = {
      session: { domain: 'localhost', token: 'Bearer t', organizationId: 'org-1', workspaceId: 'ws-1', source: 'context', restBaseUrl: '', isApiToken: true },
      controlPlane: controlPlaneWith(deploys, deployment, calls),
      choose: async (_t, choices) => choices[0]!.value,
      confirm: async () => {
        throw new NeedsInputError('no tty', ['--force']);
      },
      emit: (e) => events.push(e.type === 'phase' ? `${e.phase}:${e.state}` : `${e.type}:${'message' in e ? e.message : ''}`),
      parse: async () => {
        calls.push('parse');
        return { ok: true, failures: [] };
      },
      pytest: async () => ({ passed: true, exitCode: 0 }),
      image: {
        build: async (input) => {
          calls.push('build');
          calls.push(`labels:${JSON.stringify(input.labels)}`);
          return { runtimeVersion: '3.1-8', labels: {} };
        },
        inspectPrebuilt: async () => ({ runtimeVersion: '3.1-8', labels: {} }),
        push: async () => {
          calls.push('push');
          return { digest: 'sha256:abc' };
        },
      },
      bundle: {
        create: async () => {
          calls.push('bundle');
          return { data: Buffer.from('x'), bytes: 1, dagFileCount: 2 };
        },
        upload: async () => {
          calls.push('upload');
          return { versionId: 'v-3' };
        },
      },
      plan: {
        imageInputs: async () => ({ digest: local.image, contextBytes: 10, contextFiles: 3 }),
        dagsDigest: async () => local.dags,
        changedFiles: async () => {
          calls.push('git-diff');
          return undefined;
        },
      },
      checkLocation: async () => 'host',
      runtime: {
        preflight: async () => ({ notices: [], expectedVersion: '3.1-8' }),
        checkImage: async () => ({ notices: [], version: '3.1-8' }),
      },
      git: async () => {
        calls.push('git');
        return { skippedBecause: 'not a repo' };
      },
      saveDeploymentId: async () => {
        calls.push('save');
      },
      signal: new AbortController().signal,
    };
    return { ports, calls, events };
  }
  const req: DeployRequest = {
    projectDir: '/project',
    deploymentId: 'dep-1',
    prompt: false,
    save: false,
    mode: 'full',
    force: false,
    skipParse: false,
    buildSecrets: [],
    gitMetadata: true,
    showWarnings: true,
    autoSelect: false,
    description: 'msg',
  };
  const writes = (calls: string[]) => calls.filter((c) => /^(create|push|upload|finalize|build|parse|save)/.test(c) && !c.startsWith('labels:'));

  describe('while the plan reads the registry (the running image was deployed by another tool)', () => {
    const untraced: Deploy = { ...imageDeploy, description: 'deployed by another CLI' };
    /** A registry whose answer the test gives, recording when it was asked; the build records its signal. */
    function withRegistry(local: { image: string; dags: string }, label: string) {
      const s = setup(local, [dagDeploy, untraced]);
      let answer!: () => void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      const signals: AbortSignal[] = [];
      s.ports.registry = {
        inspect: async () => {
          s.calls.push('registry');
          await answered;
          s.calls.push('registry-answered');
          return { digest: 'sha256:feed', labels: { 'io.astronomer.deploy.image-inputs': `sha256:${label}` } };
        },
      };
      const build = s.ports.image.build;
      s.ports.image.build = async (input) => {
        signals.push(input.signal);
        const built = await build(input);
        // The registry answers only once the build has started: the build did not wait for the plan.
        answer();
        await new Promise((resolve) => setTimeout(resolve, 5));
        return built;
      };
      return { ...s, signals };
    }

    it('builds the image meanwhile and ships that build when the image changed: one build, the labels of a late one', async () => {
      const { ports, calls } = withRegistry({ image: B, dags: B }, A);
      expect(await deployToAstro(req, ports)).toMatchObject({ type: 'IMAGE_AND_DAG' });
      expect(calls.filter((c) => c === 'build')).toHaveLength(1);
      expect(calls.indexOf('build')).toBeLessThan(calls.indexOf('registry-answered'));
      expect(writes(calls)).toEqual(['build', 'parse', 'create:IMAGE_AND_DAG', 'push', 'upload', 'finalize']);
      expect(calls).toContain(
        `labels:${JSON.stringify({ 'io.astronomer.deploy.revision.description': 'msg', 'io.astronomer.deploy.image-inputs': `sha256:${B}` })}`,
      );
    });

    it('drops that build when the registry says the image is what runs: a no-op, or a DAG-only deploy, nothing pushed', async () => {
      const noop = withRegistry({ image: A, dags: B }, A);
      expect(await deployToAstro(req, noop.ports)).toMatchObject({ noop: true });
      expect(writes(noop.calls)).toEqual(['build']);
      expect(noop.signals[0]?.aborted).toBe(true);

      const dagsOnly = withRegistry({ image: A, dags: A }, A);
      expect(await deployToAstro(req, dagsOnly.ports)).toMatchObject({ type: 'DAG_ONLY' });
      expect(writes(dagsOnly.calls)).toEqual(['build', 'parse', 'create:DAG_ONLY', 'upload', 'finalize']);
      expect(dagsOnly.signals[0]?.aborted).toBe(true);
    });

    it('never builds early for --no-cache: its build waits for the plan', async () => {
      const noCache = withRegistry({ image: B, dags: B }, A);
      // Nothing answers the registry but a build: with --no-cache the plan's read is answered here instead.
      const inspect = noCache.ports.registry!.inspect;
      noCache.ports.registry!.inspect = async (...args) => {
        const pending = inspect(...args);
        await noCache.ports.image.build({
          projectDir: '/',
          localRef: 'x',
          excludeDags: true,
          labels: {},
          buildSecrets: [],
          noCache: false,
          signal: new AbortController().signal,
        });
        return pending;
      };
      expect(await deployToAstro({ ...req, noCache: true }, noCache.ports)).toMatchObject({ type: 'IMAGE_AND_DAG' });
      // The test's own build, then the deploy's, after the plan: nothing was built early.
      expect(writes(noCache.calls)).toEqual(['build', 'parse', 'build', 'create:IMAGE_AND_DAG', 'push', 'upload', 'finalize']);
      expect(noCache.calls.indexOf('registry-answered')).toBeLessThan(noCache.calls.lastIndexOf('build'));
    });
  });

  it('is a no-op when both parts match what was recorded: nothing built, created, pushed or uploaded', async () => {
    const { ports, calls } = setup({ image: A, dags: B });
    const result = await deployToAstro({ ...req, save: true }, ports);
    expect(result).toMatchObject({ noop: true, deployId: 'deploy-2', deployedAt: '2026-01-02T00:00:00Z', plan: { decision: { action: 'noop' } } });
    expect(writes(calls)).toEqual(['save']);
    // Git metadata is for the deploy's description: a no-op creates none, so git is not asked.
    expect(calls).not.toContain('git');
  });

  it('deploys DAGs only when only the bundle changed, saying so once, and records the new bundle digest', async () => {
    const { ports, calls, events } = setup({ image: A, dags: A });
    const result = await deployToAstro(req, ports);
    expect(result).toMatchObject({ type: 'DAG_ONLY' });
    expect(writes(calls)).toEqual(['parse', 'create:DAG_ONLY', 'upload', 'finalize']);
    expect(calls.indexOf('git')).toBeLessThan(calls.indexOf('parse'));
    expect(calls.filter((c) => c === 'bundle')).toHaveLength(1);
    expect(calls).toContain(`description:msg\n\n${contentTrailer({ dags: A })}`);
    expect(events.filter((e) => e.includes('Only DAGs changed'))).toHaveLength(1);
  });

  it('deploys everything when the image inputs changed, recording both digests', async () => {
    const { ports, calls } = setup({ image: B, dags: B });
    expect(await deployToAstro(req, ports)).toMatchObject({ type: 'IMAGE_AND_DAG' });
    expect(writes(calls)).toEqual(['parse', 'build', 'create:IMAGE_AND_DAG', 'push', 'upload', 'finalize']);
    expect(calls).toContain(`description:msg\n\n${contentTrailer({ image: B, dags: B })}`);
    // The user's description goes into the image as it was typed; the inputs digest has a label of its own.
    expect(calls).toContain(
      `labels:${JSON.stringify({ 'io.astronomer.deploy.revision.description': 'msg', 'io.astronomer.deploy.image-inputs': `sha256:${B}` })}`,
    );
  });

  it('--force deploys an unchanged project; a deploy list without traces deploys in full and asks git only for recorded commits', async () => {
    const forced = setup({ image: A, dags: B });
    expect(await deployToAstro({ ...req, force: true }, forced.ports)).toMatchObject({ type: 'IMAGE_AND_DAG' });
    const untraced = setup(
      { image: A, dags: B },
      [
        { ...imageDeploy, description: 'by hand' },
        { ...dagDeploy, description: '' },
      ].reverse(),
    );
    expect(await deployToAstro(req, untraced.ports)).toMatchObject({
      type: 'IMAGE_AND_DAG',
      plan: { image: { state: 'unknown' }, dags: { state: 'unknown' } },
    });
    expect(untraced.calls.filter((c) => c === 'git-diff')).toHaveLength(1);
  });

  it('--dry-run returns the plan and makes only reads', async () => {
    for (const local of [
      { image: A, dags: B },
      { image: A, dags: A },
      { image: B, dags: B },
    ]) {
      const { ports, calls } = setup(local);
      const result = await deployToAstro({ ...req, dryRun: true, save: true }, ports);
      expect(result).toMatchObject({ dryRun: true });
      expect(writes(calls)).toEqual([]);
      expect([...calls].sort()).toEqual(['bundle', 'get', 'list-deploys']);
    }
    const { ports } = setup({ image: A, dags: A });
    const result = await deployToAstro({ ...req, dryRun: true }, ports);
    if (!('dryRun' in result)) throw new Error('not a dry run');
    expect(result.plan.steps.map((s) => `${s.phase}:${s.action}`)).toEqual([
      'select:run',
      'parse:run',
      'build:skip',
      'push:skip',
      'upload:run',
      'finalize:run',
    ]);
    expect(result.plan.steps.find((s) => s.phase === 'upload')).toMatchObject({ bytes: 1, digest: `sha256:${A}` });
  });
});

describe('git history since the deployed commit', () => {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, {
      cwd,
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' },
    })
      .toString()
      .trim();

  it('lists committed, changed and untracked files of the project folder, relative to it; undefined for an unknown commit', async () => {
    const repo = await tempDir();
    const project = path.join(repo, 'airflow');
    await fs.mkdir(path.join(project, 'dags'), { recursive: true });
    await fs.writeFile(path.join(project, 'dags', 'a.py'), 'a\n');
    await fs.writeFile(path.join(project, 'requirements.txt'), '');
    await fs.writeFile(path.join(repo, 'elsewhere.txt'), '');
    await fs.writeFile(path.join(repo, '.gitignore'), 'ignored.txt\n');
    git(repo, 'init', '-q');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-qm', 'one');
    const first = git(repo, 'rev-parse', 'HEAD');
    expect(await changedFilesSince(project, first, process.env)).toEqual([]);

    await fs.appendFile(path.join(project, 'dags', 'a.py'), 'b\n');
    git(repo, 'commit', '-qam', 'two');
    await fs.writeFile(path.join(project, 'requirements.txt'), 'x\n');
    await fs.writeFile(path.join(project, 'dags', 'new.py'), '');
    await fs.writeFile(path.join(project, 'ignored.txt'), '');
    await fs.writeFile(path.join(repo, 'elsewhere.txt'), 'changed');
    expect(await changedFilesSince(project, first, process.env)).toEqual(['dags/a.py', 'dags/new.py', 'requirements.txt']);
    expect(await changedFilesSince(project, 'f'.repeat(40), process.env)).toBeUndefined();
    expect(await changedFilesSince(project, '--output=/tmp/x', process.env)).toBeUndefined();
    expect(await changedFilesSince(await tempDir(), first, process.env)).toBeUndefined();
  });
});
