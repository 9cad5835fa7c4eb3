// Podman's Docker-compatible API (`podman system service`, scripts/engines/podman.sh) chosen by container.binary
// podman and a DOCKER_HOST naming its socket. The image must be in Podman's own store and not in Docker's.
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineFor } from '../../../src/image/connect.js';
import { resolveEngineTarget } from '../../../src/image/engine-target.js';
import { nodeEngineFs, pingUnixSocket } from '../../../src/image/engine-target-node.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from '../image/registry.js';
import { buildTinyImage, clientFor, engineHasTag, failure, MAIN_SOCKET, pushImage, recordedEvents, removeTag, startEngine } from './engines.js';

let engine: Record<string, string>;
let registry: TestRegistry;
const built: string[] = [];

beforeAll(async () => {
  engine = startEngine('podman');
  registry = await startTestRegistry();
});

afterAll(async () => {
  for (const tag of built) await removeTag(engine.ENGINE_PODMAN_SOCKET!, tag);
  await registry?.stop();
});

describe('Podman', () => {
  it('builds, inspects and pushes through the Podman socket, into Podman’s store only', async () => {
    const { target, engine: client } = await clientFor({ DOCKER_HOST: engine.DOCKER_HOST }, 'podman');
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, kind: 'podman', transport: 'unix' });
    expect((await client.ping()).kind).toBe('podman');
    const since = Math.floor(Date.now() / 1000) - 1;

    const image = await buildTinyImage(client, engine.ENGINE_PODMAN_RUNTIME_IMAGE!, `${registry.host}/engine-podman`);
    built.push(image.tag);
    const details = await client.inspect(image.tag);
    expect(details?.labels['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
    expect(details?.architecture).toBe('amd64');
    await pushImage(client, image.tag, registry);

    expect(await engineHasTag(engine.ENGINE_PODMAN_SOCKET!, image.tag)).toBe(true);
    expect(await engineHasTag(MAIN_SOCKET, image.tag)).toBe(false);
    const events = await recordedEvents(engine.ENGINE_PODMAN_SOCKET!, since, (all) => all.some((e) => e.action === 'push'));
    expect(events.map((e) => e.action)).toContain('push');
    const pushed = await fetchImageConfig(registry, 'engine-podman', image.tag.split(':').pop()!);
    expect(pushed.config.config?.Labels?.['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
    expect(registry.tokenRequests.some((r) => r.granted && r.scope?.includes('engine-podman') && r.scope.includes('push'))).toBe(true);
  });

  it('probes sockets: the Podman service answers, a missing socket does not', async () => {
    const probe = pingUnixSocket();
    expect(await probe(engine.ENGINE_PODMAN_SOCKET!)).toBe(true);
    expect(await probe(MAIN_SOCKET)).toBe(true);
    expect(await probe(`${engine.ENGINE_PODMAN_SOCKET}.missing`)).toBe(false);
  });

  it('falls back to an answering Podman socket when no Docker engine answers on the default socket', async () => {
    const silentDocker = `${engine.ENGINE_PODMAN_SOCKET}.no-docker-here`;
    const target = await resolveEngineTarget({
      env: {},
      uid: 0,
      fs: nodeEngineFs,
      probe: pingUnixSocket(),
      sockets: { docker: silentDocker, rootfulPodman: engine.ENGINE_PODMAN_SOCKET! },
    });
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, kind: 'podman' });
    expect(target.reason).toBe(`podman socket at ${engine.ENGINE_PODMAN_SOCKET} (no Docker engine answers at unix://${silentDocker})`);
    const client = engineFor(target);
    expect((await client.ping()).kind).toBe('podman');
    const image = await buildTinyImage(client, engine.ENGINE_PODMAN_RUNTIME_IMAGE!, 'astro-test/engine-podman-fallback');
    built.push(image.tag);
    expect(await engineHasTag(engine.ENGINE_PODMAN_SOCKET!, image.tag)).toBe(true);
    expect(await engineHasTag(MAIN_SOCKET, image.tag)).toBe(false);
  });

  it('has no BuildKit session endpoint, so a build with secrets is refused before anything is sent', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: engine.ENGINE_PODMAN_SOCKET, method: 'POST', path: '/v1.41/session' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(404);
    // Configured as Docker, but the engine says it is Podman: the reported kind decides.
    const { target, engine: client } = await clientFor({ DOCKER_HOST: engine.DOCKER_HOST });
    expect(target.kind).toBe('docker');
    let read = false;
    const context = new Readable({
      read() {
        read = true;
        this.push(null);
      },
    });
    const build = client.build({ context, tag: 'astro-test/never-built:1', dockerfile: 'Dockerfile', secrets: [{ id: 'token', data: Buffer.from('s') }] });
    const error = await failure(build[Symbol.asyncIterator]().next());
    expect(error.message).toBe(
      `The Podman engine at ${engine.DOCKER_HOST} cannot serve build secrets: they need BuildKit, which Podman's Docker-compatible API does not offer.`,
    );
    expect(read).toBe(false);
    expect(await engineHasTag(engine.ENGINE_PODMAN_SOCKET!, 'astro-test/never-built:1')).toBe(false);
  });

  it('tells how to start Podman when its socket is missing', async () => {
    const missing = `${engine.ENGINE_PODMAN_SOCKET}.missing`;
    const { engine: client } = await clientFor({ DOCKER_HOST: `unix://${missing}` }, 'podman');
    expect((await failure(client.ping())).message).toBe(
      `No Podman engine answers at unix://${missing}: ${missing} does not exist — start it with \`podman system service --time=0 unix://${missing}\` (or \`systemctl --user start podman.socket\`).`,
    );
  });
});
