import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFetch } from '../../../src/platform/http.js';
import { adoptConnection, connectionOrigin, preconnect, usingPreconnected, waitingConnections } from '../../../src/util/preconnect.js';
import { ensureTlsIdentity } from '../../platform/keys.js';

/** A server that answers 200 and counts the connections it accepted. */
async function countingServer(onConnection?: (socket: net.Socket) => void) {
  const server = http.createServer((_req, res) => res.end('ok'));
  let connections = 0;
  server.on('connection', (socket: net.Socket) => {
    connections++;
    onConnection?.(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/x`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server,
  };
}

function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('preconnect', () => {
  it("the API clients' fetch (the registry's reads go through it) takes the connection opened before it", async () => {
    const s = await countingServer();
    closers.push(s.close);
    preconnect(s.url);
    await until(() => s.connections() === 1);
    const answer = await nodeFetch(s.url, {});
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('ok');
    expect(s.connections()).toBe(1);
    expect(waitingConnections()).toEqual([]);
  });

  it('the first request to the origin goes over the connection opened before it', async () => {
    const s = await countingServer();
    closers.push(s.close);
    preconnect(s.url);
    await until(() => s.connections() === 1);
    const agent = usingPreconnected(new http.Agent({ keepAlive: true }), 'http:');
    expect(await get(s.url, agent)).toBe(200);
    expect(await get(s.url, agent)).toBe(200);
    expect(s.connections()).toBe(1);
    expect(waitingConnections()).not.toContain(connectionOrigin(s.url));
    agent.destroy();
  });

  it('opens as many as asked for, and requests made at once take one each before any new one is opened', async () => {
    const s = await countingServer();
    closers.push(s.close);
    preconnect(s.url, 3);
    // Asking again for no more than wait there opens nothing.
    preconnect(s.url, 2);
    preconnect(s.url);
    await until(() => s.connections() === 3);
    expect(waitingConnections().filter((o) => o === connectionOrigin(s.url))).toHaveLength(3);
    const agent = usingPreconnected(new http.Agent({ keepAlive: true }), 'http:');
    expect(await Promise.all([get(s.url, agent), get(s.url, agent), get(s.url, agent)])).toEqual([200, 200, 200]);
    expect(s.connections()).toBe(3);
    expect(waitingConnections()).not.toContain(connectionOrigin(s.url));
    // A fourth at once: the agent's three are busy or kept alive, the next one is its own.
    expect(await Promise.all([get(s.url, agent), get(s.url, agent), get(s.url, agent), get(s.url, agent)])).toEqual([200, 200, 200, 200]);
    expect(s.connections()).toBe(4);
    agent.destroy();
  });

  it('another origin opens its own; one that closed meanwhile is never handed out', async () => {
    const a = await countingServer();
    // The first connection is closed by the server at once, as an idle timeout would.
    let first = true;
    const b = await countingServer((socket) => {
      if (first) socket.destroy();
      first = false;
    });
    closers.push(a.close, b.close);
    preconnect(a.url);
    preconnect(b.url);
    await until(() => a.connections() === 1 && b.connections() === 1);
    await until(() => !waitingConnections().includes(connectionOrigin(b.url)!));
    const agent = usingPreconnected(new http.Agent({ keepAlive: true }), 'http:');
    expect(await get(b.url, agent)).toBe(200);
    expect(b.connections()).toBe(2);
    // a's connection still waits for a request to a.
    expect(waitingConnections()).toContain(connectionOrigin(a.url));
    expect(await get(a.url, agent)).toBe(200);
    expect(a.connections()).toBe(1);
    agent.destroy();
  });

  it('adoptConnection: a connection opened before the CLI loaded carries the first request; a closed one never does', async () => {
    const a = await countingServer();
    const b = await countingServer();
    closers.push(a.close, b.close);
    const early = (await import('node:net')).connect(Number(new URL(a.url).port), '127.0.0.1');
    await until(() => a.connections() === 1);
    adoptConnection(new URL(a.url).origin, early);
    expect(waitingConnections()).toContain(connectionOrigin(a.url));
    // One already closed is not kept: the agent opens its own.
    const closed = (await import('node:net')).connect(Number(new URL(b.url).port), '127.0.0.1');
    await until(() => b.connections() === 1);
    closed.destroy();
    adoptConnection(b.url, closed);
    expect(waitingConnections()).not.toContain(connectionOrigin(b.url));
    const agent = usingPreconnected(new http.Agent({ keepAlive: true }), 'http:');
    expect(await get(a.url, agent)).toBe(200);
    expect(await get(b.url, agent)).toBe(200);
    expect(a.connections()).toBe(1);
    expect(b.connections()).toBe(2);
    agent.destroy();
  });

  it('a connection nobody takes does not keep the process alive, and a refused one is no error', () => {
    const script = [
      `import { preconnect } from ${JSON.stringify(path.resolve('src/util/preconnect.ts'))};`,
      // 9 (discard) is closed here: refused.
      `preconnect('http://127.0.0.1:9/');`,
      `preconnect('https://localhost:9/');`,
      // The server's own end of the connection must not hold this process either.
      `const server = (await import('node:net')).createServer((socket) => socket.unref()).listen(0, '127.0.0.1', () => {`,
      `  preconnect('http://127.0.0.1:' + server.address().port + '/');`,
      `  server.unref();`,
      `});`,
    ].join('\n');
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('https: the TLS connection opened early carries the first request, its certificate checked for the host', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-preconnect-'));
    closers.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const identity = ensureTlsIdentity(dir);
    const server = https.createServer({ key: identity.key, cert: identity.cert }, (_req, res) => res.end('ok'));
    let handshakes = 0;
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as net.AddressInfo;
    const script = [
      `import https from 'node:https';`,
      `import { preconnect, usingPreconnected } from ${JSON.stringify(path.resolve('src/util/preconnect.ts'))};`,
      `const url = 'https://localhost:${port}/x';`,
      `preconnect(url);`,
      `await new Promise((r) => setTimeout(r, 300));`,
      `const agent = usingPreconnected(new https.Agent({ keepAlive: true }), 'https:');`,
      `const status = await new Promise((resolve, reject) => https.get(url, { agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject));`,
      `console.log(status);`,
      `agent.destroy();`,
    ].join('\n');
    const child = (await import('node:child_process')).spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: identity.certPath },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('200');
    expect(handshakes).toBe(1);
  });

  it('connectionOrigin: scheme, host and port only; anything but http(s) has none', () => {
    expect(connectionOrigin('https://Acct.blob.core.windows.net/c/b?sv=1&sig=secret')).toBe('https://acct.blob.core.windows.net:443');
    expect(connectionOrigin('http://[::1]:8080/x')).toBe('http://[::1]:8080');
    expect(connectionOrigin('http://localhost/x')).toBe('http://localhost:80');
    expect(connectionOrigin('ftp://host/x')).toBeUndefined();
    expect(connectionOrigin('not a url')).toBeUndefined();
  });
});
