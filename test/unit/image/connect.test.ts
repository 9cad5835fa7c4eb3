import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseEngine, connectEngine } from '../../../src/image/connect.js';

const servers: http.Server[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

/** An engine on a Unix socket that answers /_ping as Docker or Podman do (their headers), and records every request. */
async function fakeEngine(kind: 'docker' | 'podman'): Promise<{ socketPath: string; requests: string[] }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-connect-'));
  dirs.push(dir);
  const socketPath = path.join(dir, 'engine.sock');
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.setHeader('Api-Version', '1.41');
    if (kind === 'podman') {
      res.setHeader('Libpod-Api-Version', '4.3.1');
      res.setHeader('Server', 'Libpod/4.3.1 (linux)');
    } else {
      res.setHeader('Server', 'Docker/20.10.24+dfsg1 (linux)');
    }
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end('OK');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { socketPath, requests };
}

describe('chooseEngine', () => {
  it('reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH from the raw environment', async () => {
    const certs = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-connect-certs-'));
    dirs.push(certs);
    await fs.writeFile(path.join(certs, 'ca.pem'), 'CA');
    const choice = await chooseEngine({ raw: { HOME: certs, DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs } });
    expect(choice.endpoint).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2376, tls: { verify: true, ca: Buffer.from('CA') } });
    expect(choice.target.reason).toBe('DOCKER_HOST');
  });

  it('takes container.binary from the caller (the config), not from the environment', async () => {
    const choice = await chooseEngine({ raw: { HOME: '/nonexistent', XDG_RUNTIME_DIR: '/run/user/1000', DOCKER_HOST: '' } }, 'podman');
    expect(choice.target.kind).toBe('podman');
    expect(choice.endpoint.kind).toBe('unix');
    await expect(chooseEngine({ raw: {} }, 'nerdctl')).rejects.toThrow(/container.binary is 'nerdctl'/);
  });
});

describe('connectEngine', () => {
  it('says with --verbose which engine and why, and learns from /_ping that it is Podman', async () => {
    const engine = await fakeEngine('podman');
    const debug: string[] = [];
    const client = await connectEngine({ raw: { HOME: '/nonexistent', DOCKER_HOST: `unix://${engine.socketPath}` } }, { debug: (m) => debug.push(m) });
    expect(debug).toEqual([
      `Docker engine at unix://${engine.socketPath} (chosen by DOCKER_HOST)`,
      `The engine at unix://${engine.socketPath} says it is Podman.`,
    ]);
    expect(engine.requests).toEqual(['GET /_ping']);

    // Build secrets on Podman are refused before the build request is sent.
    const build = client.build({ context: Readable.from([]), tag: 'x:1', dockerfile: 'Dockerfile', secrets: [{ id: 's', data: Buffer.from('v') }] });
    await expect(build[Symbol.asyncIterator]().next()).rejects.toThrow(`The Podman engine at unix://${engine.socketPath} cannot serve build secrets`);
    expect(engine.requests).toEqual(['GET /_ping']);
  });

  it('names the engine and why it was chosen when nothing answers there', async () => {
    const missing = path.join(os.tmpdir(), `astro-no-engine-${process.pid}.sock`);
    const error = await connectEngine({ raw: { HOME: '/nonexistent', DOCKER_HOST: `unix://${missing}` } }).then(
      () => expect.fail('connected to a missing socket'),
      (e: unknown) => e as Error & { nextStep?: string },
    );
    expect(error.message).toBe(
      `No Docker engine answers at unix://${missing}: ${missing} does not exist — start Docker, or point DOCKER_HOST or \`docker context use\` at the engine you use.`,
    );
    expect(error.nextStep).toBe('astro chose this engine because of DOCKER_HOST.');
  });
});
