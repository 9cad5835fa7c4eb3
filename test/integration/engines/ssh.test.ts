// DOCKER_HOST=ssh://root@127.0.0.1:PORT through Debian's OpenSSH server (scripts/engines/sshd.sh), whose forced
// command records each session and runs `docker system dial-stdio` against the main engine. The tests check the
// session log and the main engine's own events, not only that the calls succeed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEngineError, describeEngineTarget } from '../../../src/image/engine-target.js';
import { engineClientOptions } from '../../../src/image/engine-target-node.js';
import { provisioned } from '../../helpers/provisioned.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from '../image/registry.js';
import { buildTinyImage, imageEvents, MAIN_SOCKET, pushImage, removeTag, startEngine, targetFor } from './engines.js';

let engine: Record<string, string>;
let registry: TestRegistry;
const built: string[] = [];
// docker-modem's own ssh support builds URLs Node calls invalid (DEP0170, printed on stderr); astro's agent must not.
const warnings: string[] = [];
const onWarning = (warning: Error & { code?: string }) => warnings.push(`${warning.code ?? warning.name}: ${warning.message}`);

beforeAll(async () => {
  engine = startEngine('sshd');
  registry = await startTestRegistry();
  process.on('warning', onWarning);
});

afterAll(async () => {
  process.off('warning', onWarning);
  for (const tag of built) await removeTag(MAIN_SOCKET, tag);
  await registry?.stop();
  expect(warnings).toEqual([]);
});

async function sessionCount(): Promise<number> {
  const log = await fs.readFile(engine.ENGINE_SSH_SESSIONS_LOG!, 'utf8');
  return log.split('\n').filter((line) => line.endsWith(' docker system dial-stdio')).length;
}

describe('Docker engine over ssh', () => {
  it('builds, inspects and pushes through ssh://, each call a dial-stdio session on the server', async () => {
    expect(engine.ENGINE_SSH_ENGINE_HOST).toBe(`unix://${MAIN_SOCKET}`);
    const target = await targetFor({ HOME: engine.ENGINE_SSH_HOME, DOCKER_HOST: engine.DOCKER_HOST });
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, transport: 'ssh', ssh: { user: 'root', host: '127.0.0.1' } });
    expect(describeEngineTarget(target)).toContain(`over ssh as root with ${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`);
    const docker = new Docker(await engineClientOptions(target));
    const sessionsBefore = await sessionCount();
    const since = Math.floor(Date.now() / 1000) - 1;

    expect(String(await docker.ping())).toBe('OK');
    const image = await buildTinyImage(docker, provisioned().RUNTIME_BASE_IMAGE, `${registry.host}/engine-ssh`);
    built.push(image.tag);
    await pushImage(docker, image.tag, registry);

    // ping, build, inspect, push: at least one session each.
    expect((await sessionCount()) - sessionsBefore).toBeGreaterThanOrEqual(4);
    const events = await imageEvents(MAIN_SOCKET, since);
    expect(events).toContainEqual({ action: 'tag', name: image.tag, id: image.id });
    expect(events).toContainEqual({ action: 'push', name: `${registry.host}/engine-ssh`, id: image.tag });
    const pushed = await fetchImageConfig(registry, 'engine-ssh', image.tag.split(':').pop()!);
    expect(pushed.config.config?.Labels?.['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
  });

  it('reaches the engine through a Docker context whose host is ssh://', async () => {
    const config = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-engine-ssh-config-'));
    try {
      execFileSync('/usr/bin/docker', ['context', 'create', 'astro-ssh', '--docker', `host=${engine.DOCKER_HOST}`], {
        env: { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '' },
        stdio: 'ignore',
      });
      const target = await targetFor({ HOME: engine.ENGINE_SSH_HOME, DOCKER_CONFIG: config, DOCKER_CONTEXT: 'astro-ssh' });
      expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, transport: 'ssh', reason: 'DOCKER_CONTEXT=astro-ssh' });
      const before = await sessionCount();
      const info = (await new Docker(await engineClientOptions(target)).info()) as { DockerRootDir?: string };
      // The main engine answers (its root dir, not the TLS engine's or Podman's), through one more ssh session.
      expect(info.DockerRootDir).toBe((await new Docker({ socketPath: MAIN_SOCKET }).info()).DockerRootDir);
      expect(await sessionCount()).toBe(before + 1);
    } finally {
      await fs.rm(config, { recursive: true, force: true });
    }
  });

  it('names the engine and the key when the server refuses the login', async () => {
    const target = await targetFor({ HOME: engine.ENGINE_SSH_UNAUTHORIZED_HOME, DOCKER_HOST: engine.DOCKER_HOST });
    const sessionsBefore = await sessionCount();
    const failure = await new Docker(await engineClientOptions(target)).ping().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    expect(describeEngineError(target, failure).message).toBe(
      `No Docker engine answers at ${engine.DOCKER_HOST}: ssh refused the login of root@127.0.0.1:${target.ssh!.port} — check the key astro offers (${engine.ENGINE_SSH_UNAUTHORIZED_HOME}/.ssh/id_ed25519): its public key must be in root's authorized_keys on 127.0.0.1.`,
    );
    expect(await sessionCount()).toBe(sessionsBefore);
  });

  it('says sshd is not listening when nothing answers on the port', async () => {
    const home = await fs.mkdtemp('/tmp/astro-engine-ssh-');
    try {
      const known = await fs.readFile(`${engine.ENGINE_SSH_HOME}/.ssh/known_hosts`, 'utf8');
      await fs.mkdir(`${home}/.ssh`);
      // Port 1 on loopback: nothing listens there.
      await fs.writeFile(`${home}/.ssh/known_hosts`, known.replace(/^\[127\.0\.0\.1\]:\d+/, '[127.0.0.1]:1'));
      await fs.copyFile(`${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`, `${home}/.ssh/id_ed25519`);
      const target = await targetFor({ HOME: home, DOCKER_HOST: 'ssh://root@127.0.0.1:1' });
      const failure = await new Docker(await engineClientOptions(target)).ping().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(describeEngineError(target, failure).message).toBe(
        'No Docker engine answers at ssh://root@127.0.0.1:1: connection refused — check that sshd listens on 127.0.0.1:1.',
      );
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('refuses a server whose host key does not match known_hosts', async () => {
    const home = engine.ENGINE_SSH_UNAUTHORIZED_HOME!;
    const known = await fs.readFile(`${home}/.ssh/known_hosts`, 'utf8');
    // Same host, some other key: the verifier must reject the real server's key.
    const forged = known.replace(/ssh-ed25519 \S+/, `ssh-ed25519 ${Buffer.from('not the server key').toString('base64')}`);
    const fakeHome = await fs.mkdtemp('/tmp/astro-engine-ssh-');
    try {
      await fs.mkdir(`${fakeHome}/.ssh`);
      await fs.writeFile(`${fakeHome}/.ssh/known_hosts`, forged);
      await fs.copyFile(`${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`, `${fakeHome}/.ssh/id_ed25519`);
      const target = await targetFor({ HOME: fakeHome, DOCKER_HOST: engine.DOCKER_HOST });
      const sessionsBefore = await sessionCount();
      const failure = await new Docker(await engineClientOptions(target)).ping().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(describeEngineError(target, failure).message).toContain(`check that its host key matches ${fakeHome}/.ssh/known_hosts`);
      expect(await sessionCount()).toBe(sessionsBefore);
    } finally {
      await fs.rm(fakeHome, { recursive: true, force: true });
    }
  });
});
