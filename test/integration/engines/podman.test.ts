// Podman's Docker-compatible API (`podman system service`, scripts/engines/podman.sh) chosen by container.binary
// podman and a DOCKER_HOST naming its socket. The image must be in Podman's own store and not in Docker's.
import http from 'node:http';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertEngineSupports, describeEngineError, engineKindFromVersion, resolveEngineTarget } from '../../../src/image/engine-target.js';
import { nodeEngineFs, pingUnixSocket } from '../../../src/image/engine-target-node.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from '../image/registry.js';
import { buildTinyImage, engineHasTag, imageEvents, MAIN_SOCKET, pushImage, removeTag, startEngine, targetFor } from './engines.js';

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
    const target = await targetFor({ DOCKER_HOST: engine.DOCKER_HOST }, 'podman');
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, kind: 'podman', transport: 'unix' });
    const docker = new Docker(target.options);
    expect(engineKindFromVersion(await docker.version())).toBe('podman');
    const since = Math.floor(Date.now() / 1000) - 1;

    const image = await buildTinyImage(docker, engine.ENGINE_PODMAN_RUNTIME_IMAGE!, `${registry.host}/engine-podman`);
    built.push(image.tag);
    const details = await docker.getImage(image.tag).inspect();
    expect(details.Config.Labels?.['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
    expect(details.Architecture).toBe('amd64');
    await pushImage(docker, image.tag, registry);

    expect(await engineHasTag(engine.ENGINE_PODMAN_SOCKET!, image.tag)).toBe(true);
    expect(await engineHasTag(MAIN_SOCKET, image.tag)).toBe(false);
    const events = await imageEvents(engine.ENGINE_PODMAN_SOCKET!, since);
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
    const docker = new Docker(target.options);
    expect(engineKindFromVersion(await docker.version())).toBe('podman');
    const image = await buildTinyImage(docker, engine.ENGINE_PODMAN_RUNTIME_IMAGE!, 'astro-test/engine-podman-fallback');
    built.push(image.tag);
    expect(await engineHasTag(engine.ENGINE_PODMAN_SOCKET!, image.tag)).toBe(true);
    expect(await engineHasTag(MAIN_SOCKET, image.tag)).toBe(false);
  });

  it('has no BuildKit session endpoint, so build secrets are refused up front', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: engine.ENGINE_PODMAN_SOCKET, method: 'POST', path: '/v1.41/session' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(404);
    const target = await targetFor({ DOCKER_HOST: engine.DOCKER_HOST });
    // Configured as Docker, but the engine says it is Podman: the reported kind decides.
    expect(target.kind).toBe('docker');
    const kind = engineKindFromVersion(await new Docker(target.options).version());
    expect(() => assertEngineSupports({ ...target, kind }, 'build-secrets')).toThrow(/Podman engine at unix:.* cannot serve build secrets/);
  });

  it('tells how to start Podman when its socket is missing', async () => {
    const missing = `${engine.ENGINE_PODMAN_SOCKET}.missing`;
    const target = await targetFor({ DOCKER_HOST: `unix://${missing}` }, 'podman');
    const failure = await new Docker(target.options).ping().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(describeEngineError(target, failure).message).toBe(
      `No Podman engine answers at unix://${missing}: ${missing} does not exist — start it with \`podman system service --time=0 unix://${missing}\` (or \`systemctl --user start podman.socket\`).`,
    );
  });
});
