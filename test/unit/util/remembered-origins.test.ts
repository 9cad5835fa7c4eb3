import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitingConnections } from '../../../src/util/preconnect.js';
import { preconnectRemembered, rememberedOrigins, rememberOrigin } from '../../../src/util/remembered-origins.js';

let cacheDir: string;
beforeEach(() => {
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-upload-origin-'));
});
afterEach(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

const file = () => path.join(cacheDir, 'upload-origins.json');
// As the deploy uses them for the blob store (the registry's are the same, in registry-origins.json).
const preconnectUpload = (dir: string, deploymentId: string) => preconnectRemembered(path.join(dir, 'upload-origins.json'), deploymentId);
const rememberUploadOrigin = (dir: string, deploymentId: string, url: string, remembered?: string) =>
  rememberOrigin(path.join(dir, 'upload-origins.json'), deploymentId, url, remembered);

/** A server that counts the connections it accepted. */
async function countingServer() {
  const server = http.createServer((_req, res) => res.end());
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('where a Deployment uploaded last time', () => {
  it('keeps the origin only (never the path or the SAS token), per Deployment, and rewrites only on a change', async () => {
    await rememberUploadOrigin(cacheDir, 'dep-a', 'https://acct.blob.core.windows.net/container/dags.tar.gz?sv=2023&sig=SECRET');
    const text = fs.readFileSync(file(), 'utf8');
    expect(text).not.toContain('SECRET');
    expect(text).not.toContain('container');
    expect(JSON.parse(text)).toEqual({ 'dep-a': 'https://acct.blob.core.windows.net:443' });
    const before = fs.statSync(file()).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rememberUploadOrigin(cacheDir, 'dep-a', 'https://acct.blob.core.windows.net/other?sig=X');
    expect(fs.statSync(file()).mtimeMs).toBe(before);
    await rememberUploadOrigin(cacheDir, 'dep-b', 'http://127.0.0.1:10000/devstoreaccount1/c/b?sig=Y');
    expect(JSON.parse(fs.readFileSync(file(), 'utf8'))).toEqual({
      'dep-a': 'https://acct.blob.core.windows.net:443',
      'dep-b': 'http://127.0.0.1:10000',
    });
  });

  it('opens a connection to the remembered origin; nothing for an unknown Deployment or a corrupt or foreign file', async () => {
    const { port, connections, close } = await countingServer();
    try {
      await rememberUploadOrigin(cacheDir, 'dep-a', `http://127.0.0.1:${port}/c/b?sig=Z`);
      await preconnectUpload(cacheDir, 'dep-unknown');
      expect(waitingConnections()).not.toContain(`http://127.0.0.1:${port}`);
      await preconnectUpload(cacheDir, 'dep-a');
      expect(waitingConnections()).toContain(`http://127.0.0.1:${port}`);
      for (let i = 0; i < 200 && connections() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(connections()).toBe(1);

      for (const bad of ['{not json', JSON.stringify({ 'dep-c': 'file:///etc/passwd' }), JSON.stringify({ 'dep-c': 'http://h/p?sig=1' })]) {
        fs.writeFileSync(file(), bad);
        await expect(preconnectUpload(cacheDir, 'dep-c')).resolves.toBeUndefined();
        expect(waitingConnections().filter((o) => o.startsWith('file:') || o.startsWith('http://h:'))).toEqual([]);
      }
    } finally {
      await close();
    }
  });

  it('says what it found, and the file is not read again when the bundle went where it said', async () => {
    await rememberUploadOrigin(cacheDir, 'dep-a', 'http://127.0.0.1:1/c/b?sig=1');
    const found = await preconnectUpload(cacheDir, 'dep-a');
    expect(found).toBe('http://127.0.0.1:1');
    expect(await preconnectUpload(cacheDir, 'dep-unknown')).toBeUndefined();
    // Unreadable now: had it been read again, the unchanged origin would have been written back over it.
    fs.writeFileSync(file(), '{not json');
    await rememberUploadOrigin(cacheDir, 'dep-a', 'http://127.0.0.1:1/other?sig=2', found);
    expect(fs.readFileSync(file(), 'utf8')).toBe('{not json');
    // Somewhere else this time: written.
    await rememberUploadOrigin(cacheDir, 'dep-a', 'http://127.0.0.1:2/c/b?sig=3', found);
    expect(JSON.parse(fs.readFileSync(file(), 'utf8'))).toEqual({ 'dep-a': 'http://127.0.0.1:2' });
  });

  it("one run's origins: each key's connection opened once, and what it found is what remember compares with", async () => {
    const { port, connections, close } = await countingServer();
    try {
      await rememberUploadOrigin(cacheDir, 'dep-a', `http://127.0.0.1:${port}/c/b?sig=1`);
      const origins = rememberedOrigins(file());
      origins.prepare('dep-a');
      origins.prepare('dep-a');
      for (let i = 0; i < 200 && connections() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(connections()).toBe(1);
      // Unreadable now: had remember read it again, the unchanged origin would have been written back over it.
      fs.writeFileSync(file(), '{not json');
      await origins.remember('dep-a', `http://127.0.0.1:${port}/other?sig=2`);
      expect(fs.readFileSync(file(), 'utf8')).toBe('{not json');
      // A key prepare never saw: the file decides, and the new origin is written.
      await origins.remember('dep-b', 'http://127.0.0.1:3/c?sig=3');
      expect(JSON.parse(fs.readFileSync(file(), 'utf8'))).toEqual({ 'dep-b': 'http://127.0.0.1:3' });
    } finally {
      await close();
    }
  });

  it('a cache folder it cannot write to is no error', async () => {
    fs.writeFileSync(path.join(cacheDir, 'blocked'), '');
    await expect(rememberUploadOrigin(path.join(cacheDir, 'blocked'), 'dep-a', 'http://127.0.0.1:1/x')).resolves.toBeUndefined();
  });
});
