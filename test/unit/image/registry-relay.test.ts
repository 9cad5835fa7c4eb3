import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openRegistryRelay, proxyFor, type RegistryRelay } from '../../../src/image/registry-relay.js';
import { probeRegistry } from '../../../src/image/registry.js';

interface Upstream {
  origin: string;
  /** Connections the registry accepted. */
  connections: number;
  /** `METHOD path host` of every request it answered. */
  seen: string[];
  close(): Promise<void>;
}

/** A registry stand-in: manifests PUT under a tag get 201 with a digest, blobs answer as a registry does. */
async function startUpstream(handle?: (req: http.IncomingMessage, res: http.ServerResponse, origin: string) => boolean): Promise<Upstream> {
  const upstream: Upstream = { origin: '', connections: 0, seen: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    upstream.seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (handle?.(req, res, upstream.origin)) return;
      if (req.method === 'PUT' && /\/manifests\/[^/]+$/.test(req.url!)) {
        res.writeHead(201, { 'docker-content-digest': `sha256:${'d'.repeat(64)}`, 'x-body': body }).end();
      } else if (req.method === 'POST' && req.url!.endsWith('/blobs/uploads/')) {
        // An absolute Location on the registry's own origin, as some registries send.
        res.writeHead(202, { location: `${upstream.origin}/v2/ns/airflow/blobs/uploads/u1?_state=x`, 'docker-upload-uuid': 'u1' }).end();
      } else if (req.url === '/v2/') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://127.0.0.1:1/token",service="reg"' }).end('{}');
      } else {
        // With its length, as a registry answers (Node's client keeps no connection after a HEAD answered without one).
        res.writeHead(404, { 'content-length': '0' }).end();
      }
    });
  });
  server.on('connection', () => upstream.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return upstream;
}

/** A request as Docker's engine makes it: on a connection of its own, closed after the answer. */
function engineRequest(host: string, method: string, path: string, body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(
      { host: host.split(':')[0], port: Number(host.split(':')[1]), method, path, agent: false, headers: { authorization: 'Bearer t0k' } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function relayTo(upstream: Upstream): Promise<RegistryRelay> {
  const relay = await openRegistryRelay(upstream.origin);
  cleanup.push(() => relay.close());
  return relay;
}

describe('openRegistryRelay', () => {
  it("sends the engine's requests, each on a new connection, to the registry over kept-alive ones, as the registry's host", async () => {
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());
    const relay = await relayTo(upstream);
    expect(relay.host).toMatch(/^127\.0\.0\.1:\d+$/);

    for (let i = 0; i < 12; i++) expect((await engineRequest(relay.host, 'HEAD', `/v2/ns/airflow/blobs/sha256:${i}`)).status).toBe(404);
    expect(relay.requests).toBe(12);
    expect(upstream.seen).toHaveLength(12);
    // The registry is named as itself, not as the relay.
    expect(upstream.seen.every((line) => line.endsWith(` ${new URL(upstream.origin).host}`))).toBe(true);
    // Twelve requests, at most the connections opened as the relay started.
    expect(upstream.connections).toBeLessThanOrEqual(5);
  });

  it("gives the registry's same-origin Locations back as paths on the relay, and records the digest a manifest PUT was given", async () => {
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());
    const relay = await relayTo(upstream);

    const started = await engineRequest(relay.host, 'POST', '/v2/ns/airflow/blobs/uploads/');
    expect(started.status).toBe(202);
    expect(started.headers.location).toBe('/v2/ns/airflow/blobs/uploads/u1?_state=x');
    expect(started.headers['docker-upload-uuid']).toBe('u1');

    expect(relay.manifestDigest('deploy-1')).toBeUndefined();
    const put = await engineRequest(relay.host, 'PUT', '/v2/ns/airflow/manifests/deploy-1', '{"schemaVersion":2}');
    expect(put.status).toBe(201);
    // The body went through as it was sent.
    expect(put.headers['x-body']).toBe('{"schemaVersion":2}');
    expect(relay.manifestDigest('deploy-1')).toBe(`sha256:${'d'.repeat(64)}`);
    expect(relay.manifestDigest('deploy-2')).toBeUndefined();
  });

  it('records no digest for a manifest the registry refused', async () => {
    const upstream = await startUpstream((req, res) => {
      if (req.method !== 'PUT') return false;
      res.writeHead(400, { 'docker-content-digest': `sha256:${'e'.repeat(64)}` }).end('{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN"}]}');
      return true;
    });
    cleanup.push(() => upstream.close());
    const relay = await relayTo(upstream);
    const put = await engineRequest(relay.host, 'PUT', '/v2/ns/airflow/manifests/deploy-1', '{}');
    expect(put.status).toBe(400);
    expect(put.body).toContain('MANIFEST_BLOB_UNKNOWN');
    expect(relay.manifestDigest('deploy-1')).toBeUndefined();
  });

  it('relays nothing but the registry API, and answers 502 when the registry cannot be reached', async () => {
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());
    const relay = await relayTo(upstream);
    expect((await engineRequest(relay.host, 'GET', '/token?scope=x')).status).toBe(404);
    expect((await engineRequest(relay.host, 'GET', '/')).status).toBe(404);
    expect(upstream.seen).toEqual([]);
    expect(relay.requests).toBe(0);

    const failures: Error[] = [];
    relay.onFailure = (error) => failures.push(error);
    await upstream.close();
    expect((await engineRequest(relay.host, 'GET', '/v2/')).status).toBe(502);
    expect((await engineRequest(relay.host, 'GET', '/v2/')).status).toBe(502);
    // Said once, for the caller to stop the engine's push.
    expect(failures.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNREFUSED']);
  });

  it('does not take an engine that hangs up for a registry that failed', async () => {
    const upstream = await startUpstream((req) => req.url === '/v2/slow');
    cleanup.push(() => upstream.close());
    const relay = await relayTo(upstream);
    const failures: Error[] = [];
    relay.onFailure = (error) => failures.push(error);
    const [host, port] = relay.host.split(':');
    const request = http.request({ host, port: Number(port), path: '/v2/slow', agent: false });
    request.on('error', () => undefined);
    request.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    request.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(upstream.seen).toHaveLength(1);
    expect(failures).toEqual([]);
  });

  it('stops listening once closed', async () => {
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());
    const relay = await openRegistryRelay(upstream.origin);
    await relay.close();
    await expect(engineRequest(relay.host, 'GET', '/v2/')).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('probeRegistry', () => {
  it("times the registry's answer on a new connection and reads its Bearer challenge", async () => {
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());
    const probed = await probeRegistry(upstream.origin);
    expect(probed?.tookMs).toEqual(expect.any(Number));
    expect(probed?.tookMs).toBeGreaterThan(0);
    expect(probed?.challenge).toEqual({ realm: 'http://127.0.0.1:1/token', service: 'reg' });
    expect(upstream.seen).toEqual([`GET /v2/ ${new URL(upstream.origin).host}`]);
  });

  it('is undefined when nothing answers', async () => {
    const upstream = await startUpstream();
    await upstream.close();
    expect(await probeRegistry(upstream.origin)).toBeUndefined();
  });
});

describe('proxyFor', () => {
  const registry = 'https://images.example.com';
  it('names the proxy the environment sets for the scheme, or ALL_PROXY, in either case', () => {
    expect(proxyFor(registry, {})).toBeUndefined();
    expect(proxyFor(registry, { HTTPS_PROXY: 'http://proxy:3128' })).toBe('http://proxy:3128');
    expect(proxyFor(registry, { https_proxy: 'http://p:1' })).toBe('http://p:1');
    expect(proxyFor(registry, { HTTP_PROXY: 'http://p:1' })).toBeUndefined();
    expect(proxyFor('http://localhost:5000', { HTTP_PROXY: 'http://p:1' })).toBe('http://p:1');
    expect(proxyFor(registry, { ALL_PROXY: 'socks5://p:1' })).toBe('socks5://p:1');
  });

  it('leaves out hosts NO_PROXY covers: *, the host, its domains, with or without a port', () => {
    const env = (noProxy: string) => ({ HTTPS_PROXY: 'http://p:1', NO_PROXY: noProxy });
    expect(proxyFor(registry, env('*'))).toBeUndefined();
    expect(proxyFor(registry, env('localhost, images.example.com'))).toBeUndefined();
    expect(proxyFor(registry, env('example.com'))).toBeUndefined();
    expect(proxyFor(registry, env('.example.com'))).toBeUndefined();
    expect(proxyFor(registry, env('images.example.com:443'))).toBeUndefined();
    expect(proxyFor(registry, env('images.example.com:8443'))).toBe('http://p:1');
    expect(proxyFor(registry, env('ample.com,other.example.org'))).toBe('http://p:1');
    expect(proxyFor('http://127.0.0.1:5000', { HTTP_PROXY: 'http://p:1', no_proxy: 'localhost,127.0.0.1' })).toBeUndefined();
    expect(proxyFor('http://[::1]:5000', { HTTP_PROXY: 'http://p:1', NO_PROXY: '[::1]' })).toBeUndefined();
  });
});
