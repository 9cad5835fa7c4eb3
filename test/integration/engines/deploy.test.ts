// `astro deploy` of the example project, run as the built CLI (bin/astro.js), to the local platform through each
// reach path of scripts/engines/: TCP + TLS (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), a Docker context
// naming that engine, ssh:// and Podman (config container.binary: podman). Each run checks on the chosen engine's own
// socket (its events) or the sshd session log that the build and push happened there and not on the main engine.
// Needs `npm run build` first, as every integration test.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';
import { provisioned } from '../../helpers/provisioned.js';
import { imageEvents, MAIN_SOCKET, recordedEvents, startEngine, type ImageEvent } from './engines.js';

const DAG_ON = 'cldepdagon000000000000000';
const BIN = path.resolve('bin/astro.js');
let stack: Stack;
let tls: Record<string, string>;
let sshd: Record<string, string>;
let podman: Record<string, string>;
const temps: string[] = [];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** An ASTRO_HOME whose config points at the local platform, with extra config lines (e.g. container.binary). */
async function astroHome(extra = ''): Promise<string> {
  const home = await tempDir('astro-engines-e2e-home-');
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n${extra}`);
  return home;
}

/** The example project copied outside any git work tree (a deploy of uncommitted changes would need -f). */
async function project(): Promise<string> {
  const dir = await tempDir('astro-engines-e2e-project-');
  await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
  return dir;
}

function token(id: string): string {
  const t = stack.tokens.apiTokens.find((x) => x.id === id);
  if (!t) throw new Error(`no seed token ${id}`);
  return t.token;
}

/** The built CLI in a child process, with only the environment given here (no DOCKER_* of the test runner). */
function astro(argv: string[], options: { cwd: string; astroHome: string; env: Record<string, string | undefined> }): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: options.astroHome,
    ASTRO_HOME: options.astroHome,
    ASTRO_API_TOKEN: token('cltokwsdataplatform000000'),
    ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
    ASTRO_CACHE_DIR: path.join(options.astroHome, 'cache'),
    NO_COLOR: '1',
  };
  for (const [key, value] of Object.entries(options.env)) if (value !== undefined) env[key] = value;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...argv], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function createDeployCount(): Promise<number> {
  const response = await fetch(`${stack.endpoints.platform.url}/_platform/requests?method=POST`);
  const body = (await response.json()) as { requests: { path: string }[] };
  return body.requests.filter((r) => r.path.endsWith(`/deployments/${DAG_ON}/deploys`)).length;
}

/** Deploys the example project image-only and returns the pushed tag, with the engine's events since the start. */
async function deployThrough(env: Record<string, string | undefined>, config = ''): Promise<{ run: Run; tag: string; since: number }> {
  const since = Math.floor(Date.now() / 1000) - 1;
  const run = await astro(['deploy', DAG_ON, '--image', '--json', '--verbose'], { cwd: await project(), astroHome: await astroHome(config), env });
  expect(run.code, run.stderr).toBe(0);
  const doc = JSON.parse(run.stdout) as { type: string; image: { tag: string; digest: string; runtimeVersion: string } };
  expect(doc).toMatchObject({ type: 'IMAGE_ONLY', image: { digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), runtimeVersion: '3.1-8' } });
  return { run, tag: doc.image.tag, since };
}

/** Pushes of `:tag` among an engine's events (Docker names the reference in the id, Podman in the name). */
function pushesIn(events: ImageEvent[], tag: string): string[] {
  const ofTag = (ref: string | undefined) => ref !== undefined && ref.endsWith(`:${tag}`);
  return events.filter((e) => e.action === 'push' && (ofTag(e.id) || ofTag(e.name))).map((e) => e.name ?? e.id);
}

/** Pushes of `:tag` the engine behind `socketPath` recorded since `since`, as its log stands now. */
async function pushesOf(socketPath: string, since: number, tag: string): Promise<string[]> {
  return pushesIn(await imageEvents(socketPath, since), tag);
}

/** The same, once the engine has recorded one (recordedEvents). */
async function recordedPushesOf(socketPath: string, since: number, tag: string): Promise<string[]> {
  return pushesIn(await recordedEvents(socketPath, since, (events) => pushesIn(events, tag).length > 0), tag);
}

/** The build, on the engine behind `socketPath`, of an image labelled with the Runtime version (a `tag` event). */
async function builtOn(socketPath: string, since: number, tag: string): Promise<boolean> {
  return (await imageEvents(socketPath, since)).some((e) => e.action === 'tag' && (e.name ?? '').endsWith(`:${tag}`));
}

beforeAll(async () => {
  // The example project builds FROM the full stand-in Runtime image: the TLS engine and Podman get a copy of it.
  const runtime = provisioned().RUNTIME_IMAGE;
  tls = startEngine('tls-dockerd', runtime);
  podman = startEngine('podman', runtime);
  sshd = startEngine('sshd');
  stack = await startStack({ ports: 0, healthDelayMs: 300 });
}, 600_000);

afterAll(async () => {
  // Each deploy leaves the previous project image untagged on the engine that built it (scripts/test.sh prunes the
  // main engine's the same way).
  for (const socketPath of [tls?.ENGINE_TLS_SOCKET, podman?.ENGINE_PODMAN_SOCKET]) {
    if (socketPath)
      await new Docker({ socketPath })
        .pruneImages({ filters: { label: ['io.astronomer.deploy.revision.description'], dangling: ['true'] } })
        .catch(() => undefined);
  }
  await stack?.stop();
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

describe('astro deploy through every reach path', () => {
  it('builds and pushes on the TLS engine with DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, and says so with --verbose', async () => {
    const { run, tag, since } = await deployThrough({ DOCKER_HOST: tls.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: tls.DOCKER_CERT_PATH });
    expect(run.stderr).toContain(`Docker engine at ${tls.DOCKER_HOST}, TLS verified with DOCKER_CERT_PATH=${tls.DOCKER_CERT_PATH} (chosen by DOCKER_HOST)`);
    expect(await builtOn(tls.ENGINE_TLS_SOCKET!, since, tag)).toBe(true);
    expect(await recordedPushesOf(tls.ENGINE_TLS_SOCKET!, since, tag)).toHaveLength(1);
    expect(await builtOn(MAIN_SOCKET, since, tag)).toBe(false);
    expect(await pushesOf(MAIN_SOCKET, since, tag)).toEqual([]);
  });

  it('builds and pushes on the engine a Docker context names (currentContext in $DOCKER_CONFIG/config.json)', async () => {
    const config = await tempDir('astro-engines-e2e-docker-config-');
    const cli = (...args: string[]) =>
      execFileSync('/usr/bin/docker', args, { env: { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '' }, stdio: 'ignore' });
    const certs = tls.ENGINE_TLS_CA_DIR!;
    cli('context', 'create', 'astro-e2e-tls', '--docker', `host=${tls.DOCKER_HOST},ca=${certs}/ca.pem,cert=${certs}/cert.pem,key=${certs}/key.pem`);
    cli('context', 'use', 'astro-e2e-tls');
    const { run, tag, since } = await deployThrough({ DOCKER_CONFIG: config });
    expect(run.stderr).toContain(`Docker engine at ${tls.DOCKER_HOST}, TLS verified with the TLS files of Docker context astro-e2e-tls`);
    expect(run.stderr).toContain(`(chosen by currentContext astro-e2e-tls in ${config}/config.json)`);
    expect(await recordedPushesOf(tls.ENGINE_TLS_SOCKET!, since, tag)).toHaveLength(1);
    expect(await pushesOf(MAIN_SOCKET, since, tag)).toEqual([]);
  });

  it('builds and pushes through ssh://, every engine call a dial-stdio session on the server', async () => {
    const sessions = async () =>
      (await fs.readFile(sshd.ENGINE_SSH_SESSIONS_LOG!, 'utf8')).split('\n').filter((l) => l.endsWith(' docker system dial-stdio')).length;
    const before = await sessions();
    // HOME holds the throwaway key and the server's known_hosts entry (scripts/engines/sshd.sh).
    const { run, tag, since } = await deployThrough({ DOCKER_HOST: sshd.DOCKER_HOST, HOME: sshd.ENGINE_SSH_HOME });
    expect(run.stderr).toContain(`Docker engine at ${sshd.DOCKER_HOST}, over ssh as root with ${sshd.ENGINE_SSH_HOME}/.ssh/id_ed25519 (chosen by DOCKER_HOST)`);
    // version, build, inspect, tag, push, remove: at least that many sessions.
    expect((await sessions()) - before).toBeGreaterThanOrEqual(5);
    // sshd relays to the main engine: it built and pushed.
    expect(await builtOn(MAIN_SOCKET, since, tag)).toBe(true);
    expect(await recordedPushesOf(MAIN_SOCKET, since, tag)).toHaveLength(1);
  });

  it('builds and pushes on Podman with container.binary podman (its socket found under XDG_RUNTIME_DIR)', async () => {
    const runtimeDir = await tempDir('astro-engines-e2e-xdg-');
    await fs.mkdir(path.join(runtimeDir, 'podman'));
    await fs.symlink(podman.ENGINE_PODMAN_SOCKET!, path.join(runtimeDir, 'podman', 'podman.sock'));
    const { run, tag, since } = await deployThrough({ XDG_RUNTIME_DIR: runtimeDir }, 'container:\n  binary: podman\n');
    expect(run.stderr).toContain(
      `Podman engine at unix://${runtimeDir}/podman/podman.sock (chosen by container.binary podman: podman socket at ${runtimeDir}/podman/podman.sock)`,
    );
    expect(await recordedPushesOf(podman.ENGINE_PODMAN_SOCKET!, since, tag)).toHaveLength(1);
    expect(await pushesOf(MAIN_SOCKET, since, tag)).toEqual([]);
  });

  it('fails fast with the engine named, exit 1, when the TLS engine is not signed by the CA in DOCKER_CERT_PATH', async () => {
    const creates = await createDeployCount();
    const wrong = tls.ENGINE_TLS_WRONG_CA_CERT_PATH!;
    const run = await astro(['deploy', DAG_ON, '--image'], {
      cwd: await project(),
      astroHome: await astroHome(),
      env: { DOCKER_HOST: tls.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: wrong },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `No Docker engine answers at ${tls.DOCKER_HOST}: TLS handshake failed: unknown authority — check DOCKER_CERT_PATH (${wrong}).`,
    );
    expect(run.stderr).toContain('astro chose this engine because of DOCKER_HOST.');
    // Nothing reached the platform.
    expect(await createDeployCount()).toBe(creates);
  });

  it('parses the DAGs inside the Runtime image on the TLS engine with dev parse --image-name', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const run = await astro(['dev', 'parse', '--image-name', provisioned().RUNTIME_IMAGE, '--json', '--verbose'], {
      cwd: await project(),
      astroHome: await astroHome(),
      env: { DOCKER_HOST: tls.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: tls.DOCKER_CERT_PATH },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`Docker engine at ${tls.DOCKER_HOST}, TLS verified`);
    const report = JSON.parse(run.stdout) as { summary: { mode: string; passed: boolean } };
    expect(report.summary).toMatchObject({ mode: 'image', passed: true });
    // The sandbox container ran on the TLS engine.
    const containers = await imageEvents(tls.ENGINE_TLS_SOCKET!, since, 'container');
    expect(containers.map((e) => e.action)).toEqual(expect.arrayContaining(['create', 'start', 'die']));
  });

  it('parses and runs pytest inside the Runtime image on Podman (container.binary podman), in Podman’s containers only', async () => {
    const runtimeDir = await tempDir('astro-engines-e2e-xdg-');
    await fs.mkdir(path.join(runtimeDir, 'podman'));
    await fs.symlink(podman.ENGINE_PODMAN_SOCKET!, path.join(runtimeDir, 'podman', 'podman.sock'));
    const home = await astroHome('container:\n  binary: podman\n');
    const dir = await project();
    await fs.writeFile(path.join(dir, 'tests', 'test_fails.py'), 'def test_fails():\n    assert 1 == 2, "the sandbox ran this"\n');
    const env = { XDG_RUNTIME_DIR: runtimeDir };
    const since = Math.floor(Date.now() / 1000) - 1;

    const parse = await astro(['dev', 'parse', '--image-name', provisioned().RUNTIME_IMAGE, '--json', '--verbose'], { cwd: dir, astroHome: home, env });
    expect(parse.code, parse.stderr).toBe(0);
    expect(parse.stderr).toContain('Podman engine at unix://');
    const report = JSON.parse(parse.stdout) as { summary: { mode: string; passed: boolean }; files: { path: string; dagIds: string[] }[] };
    expect(report.summary).toMatchObject({ mode: 'image', passed: true });
    expect(report.files.flatMap((f) => f.dagIds).length).toBeGreaterThan(0);

    const passes = await astro(['dev', 'pytest', 'tests/test_example.py', '--image-name', provisioned().RUNTIME_IMAGE], { cwd: dir, astroHome: home, env });
    expect(passes.code, passes.stderr).toBe(0);
    expect(passes.stdout + passes.stderr).toMatch(/\b2 passed\b/);
    const fails = await astro(['dev', 'pytest', 'tests/test_fails.py', '--image-name', provisioned().RUNTIME_IMAGE], { cwd: dir, astroHome: home, env });
    expect(fails.code).toBe(1);
    expect(fails.stdout + fails.stderr).toContain('the sandbox ran this');

    // Three sandbox containers ran on Podman, none on the main engine (Podman records them after answering).
    const starts = (events: ImageEvent[]) => events.filter((e) => e.action === 'start');
    const onPodman = await recordedEvents(podman.ENGINE_PODMAN_SOCKET!, since, (events) => starts(events).length >= 3, 'container');
    expect(starts(onPodman).length).toBeGreaterThanOrEqual(3);
    expect((await imageEvents(MAIN_SOCKET, since, 'container')).filter((e) => e.action === 'start')).toEqual([]);
  });
});
