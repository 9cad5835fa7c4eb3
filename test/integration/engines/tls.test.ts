// A second dockerd on 127.0.0.1 with --tlsverify (scripts/engines/tls-dockerd.sh), reached through DOCKER_HOST +
// DOCKER_TLS_VERIFY + DOCKER_CERT_PATH and through a Docker context that names it. Each test checks on the engines'
// own sockets that the image landed on the TLS engine and not on the main one.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { describeEngineTarget } from '../../../src/image/engine-target.js';
import { fetchImageConfig, startTestRegistry, type TestRegistry } from '../image/registry.js';
import { buildTinyImage, clientFor, engineHasTag, failure, imageEvents, MAIN_SOCKET, pushImage, removeTag, startEngine } from './engines.js';

let engine: Record<string, string>;
let registry: TestRegistry;
let home: string;
const built: string[] = [];

beforeAll(async () => {
  engine = startEngine('tls-dockerd');
  registry = await startTestRegistry();
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-engine-tls-'));
});

afterAll(async () => {
  for (const tag of built) await removeTag(engine.ENGINE_TLS_SOCKET!, tag);
  await registry?.stop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function expectOnTlsEngineOnly(tag: string): Promise<void> {
  expect(await engineHasTag(engine.ENGINE_TLS_SOCKET!, tag)).toBe(true);
  expect(await engineHasTag(MAIN_SOCKET, tag)).toBe(false);
}

describe('Docker engine over TCP with TLS', () => {
  it('builds, inspects and pushes through DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, on that engine', async () => {
    const { target, engine: client } = await clientFor({
      HOME: home,
      DOCKER_HOST: engine.DOCKER_HOST,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: engine.DOCKER_CERT_PATH,
    });
    expect(target).toMatchObject({ endpoint: engine.DOCKER_HOST, reason: 'DOCKER_HOST', transport: 'tcp', kind: 'docker' });
    expect(describeEngineTarget(target)).toContain(`TLS verified with DOCKER_CERT_PATH=${engine.DOCKER_CERT_PATH}`);
    const since = Math.floor(Date.now() / 1000) - 1;
    expect((await client.ping()).kind).toBe('docker');

    const image = await buildTinyImage(client, engine.ENGINE_TLS_RUNTIME_IMAGE!, `${registry.host}/engine-tls`);
    built.push(image.tag);
    expect((await client.inspect(image.tag))?.labels['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
    await pushImage(client, image.tag, registry);

    await expectOnTlsEngineOnly(image.tag);
    const events = await imageEvents(engine.ENGINE_TLS_SOCKET!, since);
    expect(events).toContainEqual({ action: 'tag', name: image.tag, id: image.id });
    expect(events).toContainEqual({ action: 'push', name: `${registry.host}/engine-tls`, id: image.tag });
    const pushed = await fetchImageConfig(registry, 'engine-tls', image.tag.split(':').pop()!);
    expect(pushed.config.config?.Labels?.['dev.astro-deploy-cli.engine-test']).toBe(image.marker);
  });

  it('refuses an engine certificate from another CA, naming the engine and DOCKER_CERT_PATH', async () => {
    const wrong = engine.ENGINE_TLS_WRONG_CA_CERT_PATH!;
    const { engine: client } = await clientFor({ HOME: home, DOCKER_HOST: engine.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: wrong });
    const error = await failure(client.ping());
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `No Docker engine answers at ${engine.DOCKER_HOST}: TLS handshake failed: unknown authority — check DOCKER_CERT_PATH (${wrong}).`,
    );
  });

  it("says the engine refused astro's client certificate when there is none", async () => {
    const caOnly = path.join(home, 'ca-only');
    await fs.mkdir(caOnly, { recursive: true });
    await fs.copyFile(path.join(engine.DOCKER_CERT_PATH!, 'ca.pem'), path.join(caOnly, 'ca.pem'));
    const { engine: client } = await clientFor({ HOME: home, DOCKER_HOST: engine.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: caOnly });
    expect((await failure(client.ping())).message).toBe(
      `No Docker engine answers at ${engine.DOCKER_HOST}: TLS handshake failed: the engine refused astro's client certificate — check DOCKER_CERT_PATH (${caOnly}): cert.pem and key.pem must be signed by the CA the engine trusts.`,
    );
  });

  it('says the engine expects TLS when DOCKER_TLS_VERIFY is missing', async () => {
    const { target, engine: client } = await clientFor({ HOME: home, DOCKER_HOST: engine.DOCKER_HOST });
    expect(target.tls).toBeUndefined();
    expect((await failure(client.ping())).message).toBe(
      `No Docker engine answers at ${engine.DOCKER_HOST}: the engine expects TLS — set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem.`,
    );
  });

  it('builds through a Docker context that names the engine, chosen by DOCKER_CONTEXT and by currentContext', async () => {
    const config = path.join(home, 'docker-config');
    const cli = (...args: string[]) =>
      execFileSync('/usr/bin/docker', args, { env: { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '' }, encoding: 'utf8' });
    const certs = engine.ENGINE_TLS_CA_DIR!;
    cli('context', 'create', 'astro-tls', '--docker', `host=${engine.DOCKER_HOST},ca=${certs}/ca.pem,cert=${certs}/cert.pem,key=${certs}/key.pem`);

    const byEnv = await clientFor({ HOME: home, DOCKER_CONFIG: config, DOCKER_CONTEXT: 'astro-tls' });
    expect(byEnv.target).toMatchObject({ endpoint: engine.DOCKER_HOST, reason: 'DOCKER_CONTEXT=astro-tls', transport: 'tcp' });
    const image = await buildTinyImage(byEnv.engine, engine.ENGINE_TLS_RUNTIME_IMAGE!, 'astro-test/engine-context');
    built.push(image.tag);
    await expectOnTlsEngineOnly(image.tag);

    cli('context', 'use', 'astro-tls');
    const byConfig = await clientFor({ HOME: home, DOCKER_CONFIG: config });
    expect(byConfig.target.reason).toBe(`currentContext astro-tls in ${config}/config.json`);
    expect((await byConfig.engine.inspect(image.tag))?.id).toBe(image.id);
  });
});
