// DOCKER_HOST=ssh://root@127.0.0.1:PORT through Debian's OpenSSH server (scripts/engines/sshd.sh), whose forced
// command records each session and runs `docker system dial-stdio` against the main engine. The tests check the
// session log and the main engine's own events, not only that the calls succeed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEngineTarget } from '../../../src/image/engine-target.js';
import { provisioned } from '../../helpers/provisioned.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from '../image/registry.js';
import { buildTinyImage, clientFor, failure, imageEvents, MAIN_SOCKET, pushImage, removeTag, startEngine } from './engines.js';

let engine: Record<string, string>;
let registry: TestRegistry;
const built: string[] = [];
// No deprecation or other warnings from reaching an ssh:// engine (docker-modem's ssh URLs used to print DEP0170).
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

/** A throwaway $HOME whose .ssh holds the given files. */
async function sshHome(files: Record<string, string | Buffer>): Promise<string> {
  const home = await fs.mkdtemp('/tmp/astro-engine-ssh-');
  await fs.mkdir(`${home}/.ssh`, { mode: 0o700 });
  for (const [name, content] of Object.entries(files)) await fs.writeFile(`${home}/.ssh/${name}`, content, { mode: 0o600 });
  return home;
}

describe('Docker engine over ssh (the system ssh running docker system dial-stdio)', () => {
  it('builds, inspects and pushes through ssh://, each call a dial-stdio session on the server', async () => {
    expect(engine.ENGINE_SSH_ENGINE_HOST).toBe(`unix://${MAIN_SOCKET}`);
    const { target, engine: client } = await clientFor({ HOME: engine.ENGINE_SSH_HOME, DOCKER_HOST: engine.DOCKER_HOST });
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, transport: 'ssh', ssh: { user: 'root', host: '127.0.0.1' } });
    expect(describeEngineTarget(target)).toContain(`over ssh as root with ${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`);
    const sessionsBefore = await sessionCount();
    const since = Math.floor(Date.now() / 1000) - 1;

    expect((await client.ping()).kind).toBe('docker');
    const image = await buildTinyImage(client, provisioned().RUNTIME_BASE_IMAGE, `${registry.host}/engine-ssh`);
    built.push(image.tag);
    await pushImage(client, image.tag, registry);

    // ping, build, inspect, push: one session each.
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
      const { target, engine: client } = await clientFor({ HOME: engine.ENGINE_SSH_HOME, DOCKER_CONFIG: config, DOCKER_CONTEXT: 'astro-ssh' });
      expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, transport: 'ssh', reason: 'DOCKER_CONTEXT=astro-ssh' });
      const before = await sessionCount();
      // The full Runtime image is in the main engine only (the TLS engine and Podman hold the base): the main engine
      // answers, through one more ssh session.
      const runtime = provisioned().RUNTIME_IMAGE;
      const main = await new Docker({ socketPath: MAIN_SOCKET }).getImage(runtime).inspect();
      expect((await client.inspect(runtime))?.id).toBe(main.Id);
      expect(await sessionCount()).toBe(before + 1);
    } finally {
      await fs.rm(config, { recursive: true, force: true });
    }
  });

  it('names the engine and the key when the server refuses the login', async () => {
    const { target, engine: client } = await clientFor({ HOME: engine.ENGINE_SSH_UNAUTHORIZED_HOME, DOCKER_HOST: engine.DOCKER_HOST });
    const sessionsBefore = await sessionCount();
    expect((await failure(client.ping())).message).toBe(
      `No Docker engine answers at ${engine.DOCKER_HOST}: ssh refused the login of root@127.0.0.1:${target.ssh!.port} (root@127.0.0.1: Permission denied (publickey).) — check the keys ssh offers (${engine.ENGINE_SSH_UNAUTHORIZED_HOME}/.ssh/id_ed25519): a public key must be in root's authorized_keys on 127.0.0.1.`,
    );
    expect(await sessionCount()).toBe(sessionsBefore);
  });

  it('says sshd is not listening when nothing answers on the port', async () => {
    const home = await sshHome({ id_ed25519: await fs.readFile(`${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`) });
    try {
      // Port 1 on loopback: nothing listens there.
      const { engine: client } = await clientFor({ HOME: home, DOCKER_HOST: 'ssh://root@127.0.0.1:1' });
      expect((await failure(client.ping())).message).toBe(
        'No Docker engine answers at ssh://root@127.0.0.1:1: connection refused — check that sshd listens on 127.0.0.1:1.',
      );
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('refuses a server whose host key is not the one in known_hosts, or is not there at all', async () => {
    const key = await fs.readFile(`${engine.ENGINE_SSH_HOME}/.ssh/id_ed25519`);
    const known = await fs.readFile(`${engine.ENGINE_SSH_HOME}/.ssh/known_hosts`, 'utf8');
    // Same host, another (well-formed) key: ssh must reject the real server's key.
    const other = execFileSync('bash', ['-c', 'd=$(mktemp -d) && ssh-keygen -q -t ed25519 -N "" -f "$d/k" && cat "$d/k.pub" && rm -r "$d"'], {
      encoding: 'utf8',
    }).split(' ')[1]!;
    const forged = known.replace(/ssh-ed25519 \S+/, `ssh-ed25519 ${other}`);
    for (const knownHosts of [forged, '']) {
      const home = await sshHome({ id_ed25519: key, known_hosts: knownHosts });
      try {
        const { engine: client } = await clientFor({ HOME: home, DOCKER_HOST: engine.DOCKER_HOST });
        const sessionsBefore = await sessionCount();
        const message = (await failure(client.ping())).message;
        expect(message).toContain(`ssh could not verify the host key of 127.0.0.1:${engine.DOCKER_HOST!.split(':').pop()} (Host key verification failed.)`);
        expect(message).toContain(`check that its host key is in ${home}/.ssh/known_hosts or /etc/ssh/ssh_known_hosts`);
        expect(await sessionCount()).toBe(sessionsBefore);
      } finally {
        await fs.rm(home, { recursive: true, force: true });
      }
    }
  });
});
