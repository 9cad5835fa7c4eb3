import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiOriginsFile, earlyApiConnection } from '../../../src/cli/api-origin.js';
import { readEnv } from '../../../src/env.js';
import { acceptingServer, type AcceptingServer } from '../../helpers/accepting-server.js';
import { connectionOrigin, waitingConnections } from '../../../src/util/preconnect.js';

let home: string;
let server: AcceptingServer;
let origin: string;

beforeEach(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-api-origin-'));
  server = await acceptingServer();
  origin = `http://127.0.0.1:${server.port}`;
});

afterEach(async () => {
  await server.close();
  fs.rmSync(home, { recursive: true, force: true });
});

const env = () => readEnv({ ASTRO_HOME: home, ASTRO_CACHE_DIR: path.join(home, 'cache') });

describe('the early connection to the platform API', () => {
  it('is remembered per config home, as an origin only', async () => {
    await earlyApiConnection(env()).remember(`${origin}/v1/organizations/org-1?x=secret`);
    expect(JSON.parse(fs.readFileSync(apiOriginsFile(env()), 'utf8'))).toEqual({ [path.resolve(home)]: origin });
    // Another config home is kept beside it.
    const other = path.join(home, 'other');
    await earlyApiConnection(readEnv({ ASTRO_HOME: other, ASTRO_CACHE_DIR: path.join(home, 'cache') })).remember('https://api.example.test/v1');
    expect(JSON.parse(fs.readFileSync(apiOriginsFile(env()), 'utf8'))).toEqual({ [path.resolve(home)]: origin, [other]: 'https://api.example.test:443' });
  });

  it("takes over the connection bin/ opened, and writes nothing when the session's API is where it went", async () => {
    await earlyApiConnection(env()).remember(origin);
    const before = fs.statSync(apiOriginsFile(env())).mtimeMs;
    const socket = net.connect(Number(new URL(origin).port), '127.0.0.1');
    const early = earlyApiConnection(env(), { origin, socket });
    expect(waitingConnections()).toContain(connectionOrigin(origin));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await early.remember(`${origin}/v1`);
    expect(fs.statSync(apiOriginsFile(env())).mtimeMs).toBe(before);
    socket.destroy();
  });
});
