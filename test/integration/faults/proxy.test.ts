// The fault proxy itself, against a small echo server: each action does what the suite relies on, counted.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, startFaultProxy } from '../../faults/proxy.js';

let upstream: Server;
let proxy: FaultProxy;
const received: { method: string; path: string; bytes: number; complete: boolean }[] = [];

/** One request through the proxy with Node's http client (no retries of its own). */
function send(method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, method, path, agent: false, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
      res.on('aborted', () => resolve({ error: 'aborted' }));
    });
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end(body);
  });
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const record = { method: req.method ?? '', path: req.url ?? '', bytes: 0, complete: false };
    received.push(record);
    req.on('aborted', () => (record.bytes = Buffer.concat(chunks).length));
    req.on('end', () => {
      record.bytes = Buffer.concat(chunks).length;
      record.complete = true;
      const answer = req.method === 'GET' ? Buffer.alloc(200_000, 7) : Buffer.from(`got ${record.bytes}`);
      res.writeHead(201, { 'content-length': answer.length });
      res.end(answer);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  proxy = await startFaultProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, flavor: 'azure-blob', name: 'echo' });
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

beforeEach(() => {
  proxy.clearRules();
  received.length = 0;
});

describe('fault proxy', () => {
  it('forwards untouched without rules, and answers a status by rule and count', async () => {
    expect(await send('PUT', '/a', Buffer.alloc(10))).toMatchObject({ status: 201 });
    proxy.add({ name: 'busy', match: { method: 'PUT', path: '^/a$' }, action: { status: 503 }, count: 2 });
    const first = await send('PUT', '/a', Buffer.alloc(10));
    expect(first).toMatchObject({ status: 503, headers: { 'x-ms-error-code': 'ServerBusy' } });
    expect(await send('PUT', '/b', Buffer.alloc(10))).toMatchObject({ status: 201 });
    expect(await send('PUT', '/a', Buffer.alloc(10))).toMatchObject({ status: 503 });
    expect(await send('PUT', '/a', Buffer.alloc(10))).toMatchObject({ status: 201 });
    expect(proxy.injected('busy')).toBe(2);
    expect(received.map((r) => r.path)).toEqual(['/a', '/b', '/a']);
  });

  it('lets the first N matches through with `after`, and matches query parameters', async () => {
    proxy.add({ name: 'third-block', match: { query: { comp: 'block' } }, after: 2, action: { status: 500 } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(((await send('PUT', '/x?comp=block', Buffer.alloc(5))) as { status: number }).status);
    expect(statuses).toEqual([201, 201, 500, 201]);
    expect(proxy.matched('third-block')).toBe(4);
  });

  it('resets before forwarding, mid-body, and after the upstream applied the request', async () => {
    proxy.add({ action: { reset: 'before' } });
    expect(await send('PUT', '/r1', Buffer.alloc(1000))).toHaveProperty('error');
    expect(received).toHaveLength(0);

    proxy.add({ action: { reset: 'mid-body' } });
    expect(await send('PUT', '/r2', Buffer.alloc(400_000))).toHaveProperty('error');
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toHaveLength(1);
    expect(received[0]!.complete).toBe(false);
    expect(received[0]!.bytes).toBeLessThan(400_000);

    proxy.add({ action: { reset: 'after' } });
    expect(await send('PUT', '/r3', Buffer.alloc(1000))).toHaveProperty('error');
    expect(received[1]).toMatchObject({ path: '/r3', complete: true, bytes: 1000 });
    expect(proxy.totals().byKind).toMatchObject({ 'reset-before': 1, 'reset-mid-body': 1, 'reset-after': 1 });
  });

  it('cuts an answer after N bytes', async () => {
    proxy.add({ action: { cutAfterBytes: 1000 } });
    const cut = await send('GET', '/big');
    if ('status' in cut) expect(cut.body.length).toBeLessThan(200_000);
    else expect(cut.error).toBeTruthy();
    expect(await send('GET', '/big')).toMatchObject({ status: 201 });
  });

  it('throttles bandwidth', async () => {
    proxy.add({ action: { throttleBytesPerSec: 400_000 } });
    const started = performance.now();
    const answer = await send('GET', '/slow');
    expect(answer).toMatchObject({ status: 201 });
    // 200 kB at 400 kB/s cannot arrive in less than about half a second.
    expect(performance.now() - started).toBeGreaterThan(400);
  });

  it('holds a request until released, and drops it when the client gives up meanwhile', async () => {
    proxy.add({ name: 'gate', action: { hold: 'request' }, count: 'always' });
    const pending = send('PUT', '/held', Buffer.alloc(10));
    await proxy.held('gate');
    expect(received).toHaveLength(0);
    proxy.release('gate');
    expect(await pending).toMatchObject({ status: 201 });
    expect(received).toHaveLength(1);

    const controller = new AbortController();
    const gone = new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, method: 'PUT', path: '/abandoned', agent: false, signal: controller.signal }, resolve);
      req.on('error', resolve);
      req.end('x');
    });
    await proxy.held('gate', 2);
    controller.abort();
    await gone;
    await proxy.waitForRequests((e) => e.path === '/abandoned' && e.outcome === 'client-gone');
    proxy.release('gate');
    await new Promise((r) => setTimeout(r, 50));
    expect(received.map((r) => r.path)).toEqual(['/held']);
  });

  it('holds an answer after the upstream applied the request', async () => {
    proxy.add({ name: 'late', action: { hold: 'response' } });
    const pending = send('PUT', '/applied', Buffer.alloc(3));
    await proxy.held('late');
    expect(received[0]).toMatchObject({ path: '/applied', complete: true });
    proxy.release('late');
    expect(await pending).toMatchObject({ status: 201 });
  });
});
