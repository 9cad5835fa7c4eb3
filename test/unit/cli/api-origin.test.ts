import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { earlyApiConnection } from '../../../src/cli/api-origin.js';
import { readEnv } from '../../../src/env.js';

let home: string;
let server: net.Server;
let connections = 0;
let sockets: net.Socket[] = [];
let origin: string;

beforeEach(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-api-origin-'));
  connections = 0;
  sockets = [];
  server = net.createServer((socket) => {
    connections++;
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(home, { recursive: true, force: true });
});

const env = () => readEnv({ ASTRO_HOME: home, ASTRO_CACHE_DIR: path.join(home, 'cache') });
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

async function connectedWithin(ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (connections > 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return connections > 0;
}

describe('the early connection to the platform API', () => {
  it('is remembered per config home, as an origin only, and opened as an API command starts', async () => {
    await earlyApiConnection(['deploy', 'some-deployment'], env()).remember(`${origin}/v1/organizations/org-1?x=secret`);
    const file = path.join(home, 'cache', 'api-origins.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ [path.resolve(home)]: origin });
    expect(connections).toBe(0);

    // Neither a command that does not call the API, nor an API command's help, nor no command opens it.
    for (const argv of [['dev', 'parse'], ['deploy', '--help'], ['deployment', 'list', '-h'], ['--help'], [], ['context', 'list']]) {
      earlyApiConnection(argv, env());
    }
    await settle();
    expect(connections).toBe(0);

    earlyApiConnection(['--verbose', 'deployment', 'list'], env());
    expect(await connectedWithin(5_000)).toBe(true);
    await settle();
    expect(connections).toBe(1);
  });

  it('opens nothing without a remembered origin, or for another config home', async () => {
    earlyApiConnection(['deploy'], env());
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-api-origin-other-'));
    try {
      await earlyApiConnection(['deploy'], readEnv({ ASTRO_HOME: other, ASTRO_CACHE_DIR: path.join(home, 'cache') })).remember(origin);
      earlyApiConnection(['deploy'], env());
      await settle();
      expect(connections).toBe(0);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
