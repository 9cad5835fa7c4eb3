/**
 * The image half of a deploy against the real Docker engine and a real registry with token authentication.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_FAILED_MESSAGE, buildProjectImage, ImageBuildError, resolveBuildSecrets, type BuildProgressEvent } from '../../../src/image/build.js';
import { COMMIT_LABEL, DESCRIPTION_LABEL } from '../../../src/image/labels.js';
import { inspectPrebuiltImage } from '../../../src/image/check.js';
import { checkBuiltRuntimeImage } from '../../../src/image/runtime/preflight.js';
import { createDockerEngine } from '../../../src/image/engine.js';
import { pushImage, PUSH_AUTH_FAILED_MESSAGE, type PushProgressEvent } from '../../../src/image/push.js';
import { registryOrigin, requestPushToken } from '../../../src/image/registry.js';
import { notRuntimeImageNameMessage, RUNTIME_VERSION_LABEL } from '../../../src/image/runtime/rules.js';
import { buildShellBaseImage, docker, DOCKER_SOCKET, listImageFiles, removeImages, removeImagesOfRun, uniqueName } from './docker.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from './registry.js';

const engine = createDockerEngine({ socketPath: DOCKER_SOCKET });
const RUNTIME_VERSION = '3.1-8';
const images: string[] = [];
const runId = randomUUID();
let registry: TestRegistry;
let base: string;
let root: string;

function image(prefix: string): string {
  const ref = `${uniqueName(prefix)}:latest`;
  images.push(ref);
  return ref;
}

async function writeProject(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = path.join(root, name);
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  return dir;
}

function astroProject(extra: Record<string, string | Buffer> = {}): Record<string, string | Buffer> {
  return {
    Dockerfile: `FROM ${base}\nCOPY . /usr/local/airflow/\n`,
    '.dockerignore': 'astro\n.git\n.env\nairflow_settings.yaml\nlogs/\n',
    'requirements.txt': '',
    'packages.txt': '',
    'dags/example_dag.py': 'from airflow.sdk import dag\n',
    'dags/utils/helpers.py': 'X = 1\n',
    'include/data.csv': 'a,b\n1,2\n',
    'plugins/plugin.py': '',
    '.env': 'SECRET=1\n',
    ...extra,
  };
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-image-it-'));
  base = `${uniqueName('runtime-base')}:${RUNTIME_VERSION}`;
  images.push(base);
  await buildShellBaseImage(base, { [RUNTIME_VERSION_LABEL]: RUNTIME_VERSION }, runId);
  registry = await startTestRegistry();
});

afterAll(async () => {
  await registry?.stop();
  removeImages(...images.reverse());
  removeImagesOfRun(runId);
  await fs.rm(root, { recursive: true, force: true });
});

describe('build and push', () => {
  it('builds a linux/amd64 image with our labels, pushes it, and the registry holds that manifest', async () => {
    const dir = await writeProject('happy', astroProject());
    const local = image('happy');
    const buildEvents: BuildProgressEvent[] = [];
    const built = await buildProjectImage(engine, {
      projectDir: dir,
      tag: local,
      labels: { [DESCRIPTION_LABEL]: 'Deployed from CI', [COMMIT_LABEL]: '0123456789abcdef0123456789abcdef01234567' },
      onProgress: (e) => buildEvents.push(e),
    });
    expect(built.runtimeVersion).toBe(RUNTIME_VERSION);
    expect(built.labels).toMatchObject({ [DESCRIPTION_LABEL]: 'Deployed from CI', [COMMIT_LABEL]: '0123456789abcdef0123456789abcdef01234567' });
    const stepsOf = (events: BuildProgressEvent[]) => events.flatMap((e) => (e.type === 'build-step' ? [e] : []));
    // BuildKit (this engine has it) writes the labels into the image's config: no step of their own. It names a
    // short image name in full.
    expect(buildEvents[0]).toMatchObject({ type: 'build-start', builder: 'buildkit' });
    expect(stepsOf(buildEvents).map((s) => `${s.index}/${s.total} ${s.instruction}`)).toEqual([`1/2 FROM docker.io/${base}`, '2/2 COPY . /usr/local/airflow/']);
    // The classic builder (DOCKER_BUILDKIT=0) turns each label into a LABEL step of its own after the Dockerfile's.
    const classicEvents: BuildProgressEvent[] = [];
    const classic = await buildProjectImage(engine, {
      projectDir: dir,
      tag: image('happy-classic'),
      builder: 'classic',
      labels: { [DESCRIPTION_LABEL]: 'Deployed from CI', [COMMIT_LABEL]: '0123456789abcdef0123456789abcdef01234567' },
      onProgress: (e) => classicEvents.push(e),
    });
    expect(classic.labels).toMatchObject({ [DESCRIPTION_LABEL]: 'Deployed from CI' });
    expect(stepsOf(classicEvents).map((s) => `${s.index}/${s.total} ${s.instruction}`)).toEqual([
      `1/4 FROM ${base}`,
      '2/4 COPY . /usr/local/airflow/',
      // The engine sorts labels by name.
      `3/4 LABEL ${COMMIT_LABEL}=0123456789abcdef0123456789abcdef01234567`,
      `4/4 LABEL ${DESCRIPTION_LABEL}=Deployed from CI`,
    ]);

    const remote = `${registry.host}/happy-ns/airflow:deploy-${Date.now()}`;
    const pushEvents: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: remote,
      auth: { username: 'cli', password: `Bearer ${registry.token}`, serveraddress: registry.host },
      onProgress: (e) => pushEvents.push(e),
    });

    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const stored = await fetchImageConfig(registry, 'happy-ns/airflow', remote.split(':').pop()!);
    expect(stored.digest).toBe(pushed.digest);
    expect(stored.config.architecture).toBe('amd64');
    expect(stored.config.os).toBe('linux');
    expect(stored.config.config?.Labels).toMatchObject({
      [DESCRIPTION_LABEL]: 'Deployed from CI',
      [COMMIT_LABEL]: '0123456789abcdef0123456789abcdef01234567',
      [RUNTIME_VERSION_LABEL]: RUNTIME_VERSION,
    });
    expect(pushEvents.some((e) => e.type === 'push-layer' && e.status === 'Pushed')).toBe(true);
    expect(pushEvents.at(-1)).toMatchObject({ type: 'push-done', digest: pushed.digest });
    // The remote name is gone locally; the local deploy image stays.
    expect(await engine.inspect(remote)).toBeUndefined();
    expect(await engine.inspect(local)).toBeDefined();
  });

  it('with DAG-only deploys on, the image holds no dags/ and .dockerignore is byte-identical afterwards', async () => {
    const dir = await writeProject('dag-deploy', astroProject());
    const before = await sha256(path.join(dir, '.dockerignore'));
    const local = image('dag-deploy');
    await buildProjectImage(engine, { projectDir: dir, tag: local, excludeDags: true });

    const files = listImageFiles(local, 'usr/local/airflow/');
    expect(files).toContain('include/data.csv');
    expect(files).toContain('plugins/plugin.py');
    expect(files.filter((f) => f.startsWith('dags'))).toEqual([]);
    expect(files).not.toContain('.env');
    expect(await sha256(path.join(dir, '.dockerignore'))).toBe(before);
    expect(await fs.readdir(path.join(dir, 'dags'))).toEqual(expect.arrayContaining(['example_dag.py', 'utils']));
  });

  it('a SIGINT mid-build stops the build and leaves the project, .dockerignore included, untouched', async () => {
    const dir = await writeProject('sigint', astroProject({ Dockerfile: `FROM ${base}\nCOPY . /usr/local/airflow/\nRUN sleep 120\nLABEL never=reached\n` }));
    const before = await sha256(path.join(dir, '.dockerignore'));
    const tree = async () => (await fs.readdir(dir, { recursive: true })).sort();
    const treeBefore = await tree();
    const local = image('sigint');

    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'build-child.ts'), dir, local, DOCKER_SOCKET], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stdout.on('data', (c: Buffer) => {
        buffered += c.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          // The RUN step has started inside the engine: interrupt now.
          if (line.includes('"type":"build-step"') && line.includes('RUN sleep 120')) setTimeout(() => resolve(), 500);
        }
      });
      void exited.then(() => reject(new Error(`build child exited early: ${lines.join('\n')}\n${stderr}`)));
    });
    child.kill('SIGINT');
    const code = await exited;

    expect(code).toBe(130);
    expect(lines.at(-1)).toContain('"kind":"interrupted"');
    expect(await sha256(path.join(dir, '.dockerignore'))).toBe(before);
    expect(await tree()).toEqual(treeBefore);
    expect(await engine.inspect(local)).toBeUndefined();
    // The engine stops the step once the client is gone: no container of that build keeps running.
    let running = '';
    for (let i = 0; i < 40; i++) {
      running = docker(['ps', '-q', '--filter', `ancestor=${base}`]).stdout.trim();
      if (running === '') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(running).toBe('');
  });

  it('a failing step is named, with the message users know', async () => {
    const dir = await writeProject('failing', astroProject({ Dockerfile: `FROM ${base}\nCOPY . /usr/local/airflow/\nRUN echo about to fail && exit 3\n` }));
    const local = image('failing');
    const error = await buildProjectImage(engine, { projectDir: dir, tag: local }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageBuildError);
    const buildError = error as ImageBuildError;
    expect(buildError.message).toBe(BUILD_FAILED_MESSAGE);
    expect(buildError.failedStep).toMatchObject({ index: 3, total: 3, instruction: 'RUN echo about to fail && exit 3' });
    // BuildKit's wording (the classic builder's: "returned a non-zero code: 3").
    expect(buildError.engineMessage).toMatch(/exit code: 3/);
    expect(buildError.logTail).toContain('about to fail');
    expect(buildError.nextStep).toContain('Step 3/3');
  });

  it('build secrets reach RUN --mount=type=secret steps (BuildKit session) and stay out of the image', async () => {
    const dir = await writeProject(
      'secrets',
      astroProject({
        Dockerfile: `FROM ${base}\nCOPY . /usr/local/airflow/\nRUN --mount=type=secret,id=pip_token test "$(cat /run/secrets/pip_token)" = "s3cret-value"\n`,
        'secret.txt': 's3cret-value',
      }),
    );
    const local = image('secrets');
    const secrets = await resolveBuildSecrets(['id=pip_token,src=secret.txt'], { cwd: dir, env: {} });
    const events: BuildProgressEvent[] = [];
    const built = await buildProjectImage(engine, {
      projectDir: dir,
      tag: local,
      secrets,
      labels: { [DESCRIPTION_LABEL]: 'with secrets' },
      onProgress: (e) => events.push(e),
    });
    expect(events[0]).toMatchObject({ type: 'build-start', builder: 'buildkit', platform: 'linux/amd64' });
    expect(built.labels[DESCRIPTION_LABEL]).toBe('with secrets');
    expect(listImageFiles(local).some((f) => f.startsWith('run/secrets/pip_token'))).toBe(false);

    const wrong = await resolveBuildSecrets(['id=pip_token,env=PIP_TOKEN'], { cwd: dir, env: { PIP_TOKEN: 'not-it' } });
    // Secrets are not part of BuildKit's cache key, so the step must run again to see the new value.
    const failure = await buildProjectImage(engine, { projectDir: dir, tag: image('secrets-wrong'), secrets: wrong, noCache: true }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ImageBuildError);
    expect((failure as ImageBuildError).failedStep?.instruction).toContain('RUN --mount=type=secret,id=pip_token');
  });
});

describe('a registry token for the push', () => {
  it('is sent as it is: the engine asks the token realm for nothing, and the registry holds the pushed manifest', async () => {
    const dir = await writeProject('push-token', astroProject());
    const local = image('push-token');
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    const repository = `${registry.host}/token-ns/airflow`;
    const credentials = { username: 'cli', password: `Bearer ${registry.token}` };
    const registrytoken = await requestPushToken({ repository, auth: credentials, challenge: registry.challenge });
    expect(registrytoken).toEqual(expect.any(String));
    const asked = registry.tokenRequests.length;
    expect(registry.tokenRequests.at(-1)).toEqual({ user: 'cli', scope: 'repository:token-ns/airflow:pull,push', granted: true });
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: `${repository}:deploy-1`,
      auth: { ...credentials, serveraddress: registry.host, registrytoken: registrytoken! },
      onProgress: (e) => events.push(e),
    });
    await pushed.untagged;
    expect(registry.tokenRequests.length).toBe(asked);
    expect(events.map((e) => e.type)).not.toContain('push-token-refused');
    const manifest = await registry.get('/v2/token-ns/airflow/manifests/deploy-1', 'application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.headers['docker-content-digest']).toBe(pushed.digest);
  });

  /** A new image pushed to `<registry>/<namespace>/airflow:deploy-1` with a registry token, its first attempt through a relay to `relayTo`. */
  async function pushThroughRelay(namespace: string, relayTo: (repository: string) => string, retry?: { baseDelayMs: number; maxDelayMs: number }) {
    const dir = await writeProject(namespace, astroProject({ 'include/relay.txt': randomUUID() }));
    const local = image(namespace);
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    const repository = `${registry.host}/${namespace}/airflow`;
    const credentials = { username: 'cli', password: `Bearer ${registry.token}` };
    const registrytoken = await requestPushToken({ repository, auth: credentials, challenge: registry.challenge });
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: `${repository}:deploy-1`,
      auth: { ...credentials, serveraddress: registry.host, registrytoken: registrytoken! },
      relayTo: relayTo(repository),
      ...(retry ? { retry } : {}),
      onProgress: (e) => events.push(e),
    });
    await pushed.untagged;
    const manifest = await registry.get(`/v2/${namespace}/airflow/manifests/deploy-1`, 'application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.headers['docker-content-digest']).toBe(pushed.digest);
    // No name of the push's is left on the engine (the relay's included).
    const names = docker(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']).stdout.split('\n');
    expect(names.filter((name) => name.includes(`/${namespace}/airflow:`))).toEqual([]);
    return { pushed, events, remoteRef: `${repository}:deploy-1` };
  }

  it("goes through astro's relay when asked: Docker's engine pushes to 127.0.0.1:<port>, the registry holds the manifest under its own name", async () => {
    // This machine's engine is one the relay is chosen for.
    expect(await engine.sharesLoopback()).toBe(true);
    const { events } = await pushThroughRelay('relay-ns', registryOrigin);
    // Confirmed through the relay (else push-relay-failed and a second push), with every layer sent.
    expect(events.filter((e) => e.type === 'push-relay-failed' || e.type === 'push-retry')).toEqual([]);
    expect(events.filter((e) => e.type === 'push-start')).toHaveLength(1);
    expect(events.some((e) => e.type === 'push-layer' && e.status === 'Pushed')).toBe(true);
  });

  it('pushed directly at once when the relay cannot reach the registry (the engine fails through it)', async () => {
    // Nothing listens at port 9: the relay answers the engine 502. A retry's wait would show as a timeout here: the
    // direct push follows at once, in the same attempt.
    const { pushed, events, remoteRef } = await pushThroughRelay('relay-lost-ns', () => 'http://127.0.0.1:9', { baseDelayMs: 60_000, maxDelayMs: 60_000 });
    // Stopped as the relay failed to reach the registry, not after the engine's own retries of the 502s (about 50 s).
    expect(events.filter((e) => e.type === 'push-relay-failed')).toEqual([
      { type: 'push-relay-failed', remoteRef, reason: expect.stringContaining('the relay could not reach the registry (connect ECONNREFUSED') },
    ]);
    expect(events.filter((e) => e.type === 'push-retry')).toEqual([]);
    expect(pushed.attempts).toBe(1);
  });

  it('one the registry refuses (scoped to another repository) costs one attempt: the push goes on with the credentials', async () => {
    const dir = await writeProject('push-token-refused', astroProject());
    const local = image('push-token-refused');
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    const credentials = { username: 'cli', password: `Bearer ${registry.token}` };
    const elsewhere = await requestPushToken({ repository: `${registry.host}/other-ns/airflow`, auth: credentials, challenge: registry.challenge });
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: `${registry.host}/refused-ns/airflow:deploy-1`,
      auth: { ...credentials, serveraddress: registry.host, registrytoken: elsewhere! },
      onProgress: (e) => events.push(e),
    });
    await pushed.untagged;
    expect(events.filter((e) => e.type === 'push-token-refused')).toHaveLength(1);
    // The second attempt asked the realm itself, with the credentials, for this repository.
    expect(registry.tokenRequests.some((r) => r.scope?.startsWith('repository:refused-ns/airflow:') && r.granted)).toBe(true);
    const manifest = await registry.get('/v2/refused-ns/airflow/manifests/deploy-1', 'application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.headers['docker-content-digest']).toBe(pushed.digest);
  });
});

describe('push failures', () => {
  it('wrong credentials are refused with the 403 guidance and the remote tag is removed', async () => {
    const dir = await writeProject('wrong-creds', astroProject());
    const local = image('wrong-creds');
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    const remote = `${registry.host}/wrong-ns/airflow:deploy-1`;
    const error = await pushImage(engine, {
      localRef: local,
      remoteRef: remote,
      auth: { username: 'cli', password: 'Bearer not-the-token', serveraddress: registry.host },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(PUSH_AUTH_FAILED_MESSAGE);
    expect((error as { nextStep?: string }).nextStep).toContain(`docker logout ${registry.host}`);
    expect((error as { nextStep?: string }).nextStep).toContain('containerd');
    // Tried as given and without the `Bearer ` prefix, then stopped: no blind retries.
    const attempts = registry.tokenRequests.filter((r) => r.scope?.includes('wrong-ns/airflow'));
    expect(attempts.every((r) => !r.granted)).toBe(true);
    expect(await engine.inspect(remote)).toBeUndefined();
    const manifest = await registry.get('/v2/wrong-ns/airflow/manifests/deploy-1');
    expect(manifest.status).toBe(404);
  });

  it('survives a registry restart in the middle of uploading a layer', async () => {
    const dir = await writeProject('restart', astroProject({ 'include/big.bin': randomBytes(96 * 1024 * 1024) }));
    const local = image('restart');
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    const remote = `${registry.host}/restart-ns/airflow:deploy-1`;
    let restart: Promise<void> | undefined;
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: remote,
      auth: { username: 'cli', password: registry.token, serveraddress: registry.host },
      onProgress: (e) => {
        if (!restart && e.type === 'push-layer' && e.status === 'Pushing' && (e.current ?? 0) > 16 * 1024 * 1024) {
          restart = registry.restart({ downMs: 500 });
        }
      },
    });
    expect(restart).toBeDefined();
    await restart;
    const stored = await fetchImageConfig(registry, 'restart-ns/airflow', 'deploy-1');
    expect(stored.digest).toBe(pushed.digest);
  });

  it('retries with backoff when the registry is down and comes back', async () => {
    const dir = await writeProject('down', astroProject());
    const local = image('down');
    await buildProjectImage(engine, { projectDir: dir, tag: local });
    await registry.kill();
    const back = new Promise<void>((resolve, reject) => setTimeout(() => registry.start().then(resolve, reject), 1500));
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, {
      localRef: local,
      remoteRef: `${registry.host}/down-ns/airflow:deploy-1`,
      auth: { username: 'cli', password: registry.token, serveraddress: registry.host },
      retry: { attempts: 6, baseDelayMs: 500, maxDelayMs: 2000 },
      onProgress: (e) => events.push(e),
    });
    await back;
    expect(pushed.attempts).toBeGreaterThan(1);
    const retries = events.filter((e) => e.type === 'push-retry');
    expect(retries.length).toBeGreaterThan(0);
    expect((retries[0] as { reason: string }).reason).toMatch(/connection refused/);
    expect((await fetchImageConfig(registry, 'down-ns/airflow', 'deploy-1')).digest).toBe(pushed.digest);
  });
});

describe('--image-name', () => {
  async function dockerfileImage(name: string, dockerfile: string, platform: string): Promise<string> {
    const dir = await writeProject(name, { Dockerfile: dockerfile, 'file.txt': `${name}\n` });
    const ref = image(name);
    // No cache: the classic builder would reuse a FROM scratch layer built for another platform.
    docker(['build', '-q', '--no-cache', '--platform', platform, '-t', ref, dir]);
    return ref;
  }

  it('accepts a local linux/amd64 Runtime image and returns its Runtime version', async () => {
    const ref = await dockerfileImage('prebuilt-ok', `FROM ${base}\nCOPY file.txt /\n`, 'linux/amd64');
    const checked = await inspectPrebuiltImage(engine, ref);
    expect(checked.runtimeVersion).toBe(RUNTIME_VERSION);
  });

  it('refuses an arm64 image, saying how to rebuild it', async () => {
    const ref = await dockerfileImage('prebuilt-arm', `FROM scratch\nCOPY file.txt /\nLABEL ${RUNTIME_VERSION_LABEL}=${RUNTIME_VERSION}\n`, 'linux/arm64');
    expect((await engine.inspect(ref))?.architecture).toBe('arm64');
    await expect(inspectPrebuiltImage(engine, ref)).rejects.toThrow(
      `The image '${ref}' is built for linux/arm64, but Astronomer Deployments run linux/amd64 images only.`,
    );
    await expect(inspectPrebuiltImage(engine, ref)).rejects.toMatchObject({ nextStep: expect.stringContaining('docker build --platform=linux/amd64') });
  });

  it('Astro refuses an image without the Runtime label with the warning users know', async () => {
    const ref = await dockerfileImage('prebuilt-nolabel', 'FROM scratch\nCOPY file.txt /\n', 'linux/amd64');
    const image = await inspectPrebuiltImage(engine, ref);
    expect(() => checkBuiltRuntimeImage({ label: image.runtimeVersion, source: { imageName: ref } })).toThrow(notRuntimeImageNameMessage(ref));
  });

  it('refuses a Runtime version the Deployment cannot take, before anything is pushed', async () => {
    const ref = await dockerfileImage('prebuilt-old', `FROM ${base}\nCOPY file.txt /\n`, 'linux/amd64');
    const image = await inspectPrebuiltImage(engine, ref);
    const deployment = { runtimeVersion: '3.1-9', supportedVersions: ['3.1-8', '3.1-9'] };
    expect(() => checkBuiltRuntimeImage({ label: image.runtimeVersion, source: { imageName: ref }, deployment })).toThrow(
      'Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to 3.1-9 or higher in your Dockerfile',
    );
  });

  it('says so when the image does not exist locally', async () => {
    await expect(inspectPrebuiltImage(engine, 'astro-test/does-not-exist:nope')).rejects.toThrow(/was not found in the local Docker engine/);
  });
});
