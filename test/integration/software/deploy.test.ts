// `astro deploy` to Astronomer Software against the local platform's Houston, its real registry (token auth) and
// its DAG server: default registry, custom registry (tag and digest), --remote, DAG-only with a retried 5xx, refusals.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';
import { connectionOrigin } from '../../../src/util/preconnect.js';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

const WS_A = 'ckwkssoftwarea00000000000';
const IMAGE = { id: 'ckdepimage000000000000000', release: 'galactic-image-1111' };
const DAGS = { id: 'ckdepdagdeploy00000000000', release: 'galactic-dags-2222' };
const NFS = { id: 'ckdepvolume0000000000000', release: 'galactic-volume-3333' };
const GIT = { id: 'ckdepgitsync000000000000', release: 'galactic-gitsync-4444' };
const ADA = 'clusrada00000000000000000';

let stack: Stack;
let home: string;
let dockerConfig: string;
let helperBin: string;
let adaToken: string;
const temps: string[] = [];

interface SoftwareDeployedState {
  id: string;
  deployInfo: { current: string; nextCli: string };
  deployed: { image?: string; imageDigest?: string; runtimeVersion?: string; airflowVersion?: string; imageUpdatedBy?: string; currentTag?: string };
}
interface PlatformState {
  registryPushes: { repository: string; tag?: string; digest: string; actor?: string }[];
  software: { deployments: SoftwareDeployedState[]; dagUploads: { releaseName: string; description: string; files: string[]; uploadedBy: string }[] };
}

async function state(): Promise<PlatformState> {
  return (await (await fetch(`${stack.endpoints.platform.url}/_platform/state`)).json()) as PlatformState;
}

async function deployed(id: string): Promise<SoftwareDeployedState> {
  return (await state()).software.deployments.find((d) => d.id === id)!;
}

async function platformAdmin(method: 'POST' | 'PATCH', route: string, body: unknown): Promise<void> {
  const response = await fetch(`${stack.endpoints.platform.url}/_platform/${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`${route}: ${response.status} ${await response.text()}`);
}

const setAppConfig = (body: { featureFlags?: Record<string, boolean>; byoUpdateRegistryHost?: string; version?: string }) =>
  platformAdmin('PATCH', 'houston/app-config', body);

/** The digest the registry itself serves for `repository:tag`, asked with a pull token of its own. */
async function registryDigest(repository: string, tag: string): Promise<string | null> {
  const { realm, service, url } = stack.endpoints.registry;
  const scope = `repository:${repository}:pull`;
  const tokenAnswer = await fetch(`${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Basic ${Buffer.from(`user:${adaToken}`).toString('base64')}` },
  });
  const { token } = (await tokenAnswer.json()) as { token: string };
  const manifest = await fetch(`${url}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  return manifest.status === 200 ? manifest.headers.get('docker-content-digest') : null;
}

async function project(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-sw-project-'));
  temps.push(dir);
  await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
  return dir;
}

function deploy(argv: string[], options: { cwd: string; env?: Record<string, string> }) {
  return runCli(['deploy', ...argv], {
    cwd: options.cwd,
    env: {
      ASTRO_HOME: home,
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(home, 'cache'),
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      DOCKER_CONFIG: dockerConfig,
      PATH: `${helperBin}:${process.env.PATH}`,
      ...options.env,
    },
  });
}

function houstonMutations(since: number): { query: string; variables: Record<string, string> }[] {
  return stack.requests
    .list({ since, listener: 'houston', pathPrefix: '/v1', method: 'POST' })
    .map((r) => r.body as { query: string; variables: Record<string, string> })
    .filter((b) => /^\s*mutation/.test(b.query));
}

beforeAll(async () => {
  stack = await startStack({ ports: 0, healthDelayMs: 100 });
  adaToken = stack.tokens.houston.userTokens.find((t) => t.userId === ADA)!.token;
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-sw-home-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(
    path.join(home, '.astro', 'config.yaml'),
    [
      'context: localhost',
      'contexts:',
      '  localhost:',
      '    domain: localhost',
      `    token: ${adaToken}`,
      `    workspace: ${WS_A}`,
      'local:',
      '  platform: software',
      `  houston: ${stack.endpoints.houston.graphqlUrl}`,
      '',
    ].join('\n'),
  );
  // The user's Docker login for the custom registry: the local registry takes `user` + a Houston token there.
  dockerConfig = path.join(home, 'docker');
  await fs.mkdir(dockerConfig);
  await fs.writeFile(
    path.join(dockerConfig, 'config.json'),
    JSON.stringify({ auths: { [stack.endpoints.registry.host]: { auth: Buffer.from(`user:${adaToken}`).toString('base64') } } }),
  );
  helperBin = path.join(home, 'bin');
  await fs.mkdir(helperBin);
});

afterEach(async () => {
  // Every test starts from the seed's app config: default registry, DAG-only deploys on.
  await setAppConfig({ featureFlags: { byoUpdateRegistryEnabled: false, dagOnlyDeployment: true }, byoUpdateRegistryHost: '{{registryHost}}/byo/airflow' });
});

afterAll(async () => {
  await stack?.stop();
  for (const dir of [home, ...temps]) if (dir) await fs.rm(dir, { recursive: true, force: true });
  for (const release of [IMAGE.release, DAGS.release, NFS.release, GIT.release]) {
    try {
      execFileSync(provisioned().DOCKER_BIN, ['rmi', `${release}/airflow:latest`], { stdio: 'ignore' });
    } catch {
      // Not built by this run.
    }
  }
});

describe('astro deploy to Astronomer Software', () => {
  it('pushes to the Deployment registry as <registry>/<release>/airflow:<nextCli>; Houston takes it from there', async () => {
    const dir = await project();
    const before = await deployed(IMAGE.id);
    const since = stack.requests.lastSeq;
    const run = await deploy([IMAGE.id, '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    const expectedRef = `${stack.endpoints.registry.host}/${IMAGE.release}/airflow:${before.deployInfo.nextCli}`;
    expect(doc).toMatchObject({
      platform: 'software',
      deploymentId: IMAGE.id,
      releaseName: IMAGE.release,
      dagDeploymentType: 'image',
      platformVersion: '1.0.0',
      image: { registry: 'default', pushedAs: expectedRef, runtimeVersion: '3.1-8', digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
      dags: { delivery: 'image' },
    });
    expect(run.stderr).toContain(`Deploying: ${IMAGE.release}`);
    expect(run.stderr).toContain('No errors detected in your DAGs');

    // The push notification moved the Deployment to the new tag; no image mutation was needed.
    const after = await deployed(IMAGE.id);
    expect(after.deployInfo.current).toBe(before.deployInfo.nextCli);
    expect(after.deployed.image).toBe(expectedRef);
    expect(after.deployed.imageDigest).toBe(doc.image.digest);
    const push = (await state()).registryPushes.find((p) => p.repository === `${IMAGE.release}/airflow` && p.tag === before.deployInfo.nextCli);
    expect(push?.actor).toBe('user:ada@example.com');
    expect(await registryDigest(`${IMAGE.release}/airflow`, before.deployInfo.nextCli)).toBe(doc.image.digest);
    expect(houstonMutations(since)).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain(adaToken);
  });

  it('ships a dag_deploy Deployment as an image without DAGs plus a DAG server upload', async () => {
    const dir = await project();
    const uploads = (await state()).software.dagUploads.length;
    const run = await deploy([DAGS.id, '--json', '--description', 'sw full deploy'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ dagDeploymentType: 'dag_deploy', image: { registry: 'default' }, dags: { delivery: 'dag-server', dagFiles: 2, attempts: 1 } });
    const now = await state();
    expect(now.software.dagUploads).toHaveLength(uploads + 1);
    expect(now.software.dagUploads.at(-1)).toMatchObject({ releaseName: DAGS.release, description: 'sw full deploy', uploadedBy: 'user:ada@example.com' });
    expect(now.software.dagUploads.at(-1)!.files).toEqual(expect.arrayContaining(['dags/example_astronauts.py', 'dags/example_etl.py']));
  });

  it('custom registry: pushes deploy-<UTC time> with the credential helper, then runs updateDeploymentImage with the tag', async () => {
    await setAppConfig({ featureFlags: { byoUpdateRegistryEnabled: true } });
    const byoRepository = `${stack.endpoints.registry.host}/byo/airflow`;
    // The credentials come from a real docker-credential-<name> program named by credsStore.
    const helperConfig = path.join(home, 'docker-helper');
    await fs.mkdir(helperConfig, { recursive: true });
    await fs.writeFile(path.join(helperConfig, 'config.json'), JSON.stringify({ credsStore: 'astrotest', auths: {} }));
    await fs.writeFile(
      path.join(helperBin, 'docker-credential-astrotest'),
      `#!/bin/sh\nread server\necho "$server" >> "${path.join(home, 'helper-asked')}"\nprintf '{"ServerURL":"%s","Username":"user","Secret":"%s"}' "$server" "${adaToken}"\n`,
      { mode: 0o755 },
    );
    const dir = await project();
    const since = stack.requests.lastSeq;
    const run = await deploy([IMAGE.id, '--json'], { cwd: dir, env: { DOCKER_CONFIG: helperConfig } });
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.image.registry).toBe('custom');
    expect(doc.image.pushedAs).toMatch(new RegExp(`^${byoRepository.replace(/[.]/g, '\\.')}:${IMAGE.release}-deploy-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}$`));
    expect(doc.image.updatedTo).toBe(doc.image.pushedAs);
    expect((await fs.readFile(path.join(home, 'helper-asked'), 'utf8')).trim()).toBe(stack.endpoints.registry.host);

    const mutations = houstonMutations(since);
    expect(mutations).toHaveLength(1);
    expect(mutations[0]!.query).toContain('updateDeploymentImage(');
    // Platform 1.0.0 takes the 0.25.0 shape of the mutation (1.0.1 dropped airflowVersion): both labels go along.
    expect(mutations[0]!.variables).toEqual({ releaseName: IMAGE.release, image: doc.image.pushedAs, runtimeVersion: '3.1-8', airflowVersion: '3.1.8' });
    const after = await deployed(IMAGE.id);
    expect(after.deployed).toMatchObject({ image: doc.image.pushedAs, runtimeVersion: '3.1-8', imageUpdatedBy: 'user:ada@example.com' });
    const tag = doc.image.pushedAs.slice(byoRepository.length + 1);
    expect(await registryDigest('byo/airflow', tag)).toBe(doc.image.digest);
  });

  it('custom registry with sha_as_tag: the mutation names the image by the digest the registry stored', async () => {
    await setAppConfig({ featureFlags: { byoUpdateRegistryEnabled: true } });
    await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `${await fs.readFile(path.join(home, '.astro', 'config.yaml'), 'utf8')}sha_as_tag: true\n`);
    try {
      const dir = await project();
      const since = stack.requests.lastSeq;
      const run = await deploy([NFS.id, '--json'], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      const doc = JSON.parse(run.stdout);
      const byoRepository = `${stack.endpoints.registry.host}/byo/airflow`;
      const tag = doc.image.pushedAs.slice(byoRepository.length + 1);
      const digest = await registryDigest('byo/airflow', tag);
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(doc.image.updatedTo).toBe(`${byoRepository}@${digest}`);
      expect(houstonMutations(since).map((m) => m.variables.image)).toEqual([`${byoRepository}@${digest}`]);
      expect((await deployed(NFS.id)).deployed.image).toBe(`${byoRepository}@${digest}`);
      // NFS Deployments get the image; their DAGs arrive through the volume, and astro says so.
      expect(doc.dags.delivery).toBe('nfs');
      expect(run.stderr).toContain('arrive through its NFS volume');
    } finally {
      const text = await fs.readFile(path.join(home, '.astro', 'config.yaml'), 'utf8');
      await fs.writeFile(path.join(home, '.astro', 'config.yaml'), text.replace(/^sha_as_tag:.*\n/m, ''));
    }
  });

  it('--remote runs only the image mutation, with no project, build or push', async () => {
    const pushes = (await state()).registryPushes.length;
    const since = stack.requests.lastSeq;
    const image = 'registry.example.com/team/airflow:prebuilt-7';
    const run = await deploy([GIT.id, '--image-name', image, '--remote', '--runtime-version', '3.1-9', '--json'], { cwd: os.tmpdir() });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).image).toEqual({ registry: 'remote', updatedTo: image, runtimeVersion: '3.1-9' });
    expect(houstonMutations(since).map((m) => m.variables)).toEqual([{ releaseName: GIT.release, image, runtimeVersion: '3.1-9' }]);
    expect((await deployed(GIT.id)).deployed).toMatchObject({ image, runtimeVersion: '3.1-9' });
    expect((await state()).registryPushes).toHaveLength(pushes);

    const missing = await deploy([GIT.id, '--image-name', image, '--remote'], { cwd: os.tmpdir() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("if --image-name and --remote is passed, it's mandatory to pass --runtime-version");
  });

  it('--dags uploads to the DAG server, retrying a 5xx', async () => {
    await platformAdmin('POST', 'faults', { dagServer: { failNext: 1, status: 503 } });
    const dir = await project();
    const pushes = (await state()).registryPushes.length;
    const since = stack.requests.lastSeq;
    const run = await deploy([DAGS.id, '--dags', '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('DAG upload failed (status 503); retrying in 1s');
    const attempts = stack.requests.list({ since, listener: 'houston', pathPrefix: `/${DAGS.release}/dags/upload` });
    expect(attempts.map((a) => a.status)).toEqual([503, 200]);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ dags: { delivery: 'dag-server', attempts: 2 } });
    expect(doc.image).toBeUndefined();
    expect((await state()).software.dagUploads.at(-1)).toMatchObject({ releaseName: DAGS.release, description: 'Deployed via <astro deploy --dags>' });
    expect((await state()).registryPushes).toHaveLength(pushes);
    // Houston's origin is kept for the next deploy's early connection, as Astro's API is.
    const origins = JSON.parse(await fs.readFile(path.join(home, 'cache', 'api-origins.json'), 'utf8')) as Record<string, string>;
    expect(origins[path.resolve(home)]).toBe(connectionOrigin(stack.endpoints.houston.graphqlUrl));
  });

  it('on a terminal, lists the workspace Deployments to choose from', async () => {
    const dir = await project();
    // --json keeps the spinners off: the captured stderr is a terminal without cursor control.
    const run = await runCli(['deploy', '--dags', '--json'], {
      cwd: dir,
      tty: true,
      input: '1\n',
      env: { ASTRO_HOME: home, ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON, ASTRO_CACHE_DIR: path.join(home, 'cache') },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('Select which airflow deployment you want to deploy to');
    expect(run.stderr).toMatch(new RegExp(`1 {2}dag-deploy {2}${DAGS.release} {2}Software Team A {2}${DAGS.id}`));
    expect(run.stderr).toContain(`Deploying: ${DAGS.release}`);
    expect((await state()).software.dagUploads.at(-1)!.releaseName).toBe(DAGS.release);
  });

  describe('refusals (exit ≠ 0, nothing shipped)', () => {
    async function refused(argv: string[], expected: { code?: number; message: string; hint?: string }, env?: Record<string, string>) {
      const dir = await project();
      const before = await state();
      const run = await deploy(argv, { cwd: dir, env });
      expect(run.code, run.stderr).toBe(expected.code ?? 1);
      expect(run.stderr).toContain(expected.message);
      if (expected.hint) expect(run.stderr).toContain(expected.hint);
      const after = await state();
      expect(after.registryPushes).toHaveLength(before.registryPushes.length);
      expect(after.software.dagUploads).toHaveLength(before.software.dagUploads.length);
    }
    const notDagDeploy = "to perform this operation, first set the Deployment type to 'dag_deploy' via the UI or the API or the CLI";

    it('--dags on NFS, git-sync and image Deployments, naming what to change', async () => {
      await refused([NFS.id, '--dags'], { message: notDagDeploy, hint: 'receives DAGs through an NFS volume' });
      await refused([GIT.id, '--dags'], { message: notDagDeploy, hint: 'receives DAGs through git-sync' });
      await refused([IMAGE.id, '--dags'], { message: notDagDeploy, hint: 'receives DAGs inside its image' });
    });

    it('--dags when the cluster has DAG-only deploys off', async () => {
      await setAppConfig({ featureFlags: { dagOnlyDeployment: false } });
      await refused([DAGS.id, '--dags'], {
        message: 'to perform this operation, set both deployments.dagOnlyDeployment and deployments.configureDagDeployment to true in your APC cluster',
      });
    });

    it('--image on an image Deployment', async () => {
      await refused([IMAGE.id, '--image'], { message: '--image only works for Dag-only, Git-sync-based and NFS-based deployments' });
    });

    it('custom registry with --image-name and no --remote: an image without the Runtime label, before any push', async () => {
      await setAppConfig({ featureFlags: { byoUpdateRegistryEnabled: true } });
      const ref = 'astro-test/software-unlabeled:1';
      execFileSync(provisioned().DOCKER_BIN, ['build', '--platform', 'linux/amd64', '-t', ref, '-'], {
        input: 'FROM scratch\nLABEL purpose=astro-test\n',
        env: { ...process.env, DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`, DOCKER_BUILDKIT: '0' },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      try {
        await refused([IMAGE.id, '--image-name', ref], { message: 'the image should have label io.astronomer.docker.runtime.version' });
      } finally {
        execFileSync(provisioned().DOCKER_BIN, ['rmi', ref], { stdio: 'ignore' });
      }
    });

    it('a custom registry without a host', async () => {
      await setAppConfig({ featureFlags: { byoUpdateRegistryEnabled: true }, byoUpdateRegistryHost: '' });
      await refused([IMAGE.id], { message: 'Custom registry host is not set in config.' });
    });

    it('a Deployment id outside the workspace, no Deployment chosen without a terminal, and --wait', async () => {
      await refused(['ckdepteamb00000000000000'], { message: 'please specify a valid deployment ID', hint: 'is not a Deployment of this workspace' });
      await refused([], { code: 4, message: 'Select which airflow deployment you want to deploy to: astro needs a choice' });
      await refused([IMAGE.id, '--wait'], { code: 2, message: '--wait is not available for Astronomer Software Deployments' });
    });

    it('a token Houston does not accept', async () => {
      const text = await fs.readFile(path.join(home, '.astro', 'config.yaml'), 'utf8');
      await fs.writeFile(path.join(home, '.astro', 'config.yaml'), text.replace(adaToken, 'not-a-houston-token'));
      try {
        await refused([IMAGE.id], { message: 'you do not have the appropriate permissions for that' });
      } finally {
        await fs.writeFile(path.join(home, '.astro', 'config.yaml'), text);
      }
    });
  });
});
