import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiOriginsFile } from '../../../src/cli/api-origin.js';
import { readEnv } from '../../../src/env.js';
import { acceptingServer, type AcceptingServer } from '../../helpers/accepting-server.js';

interface EarlyConnection {
  open(argv: string[], env: Record<string, string | undefined>): { origin: string; socket: net.Socket; started: Promise<void> } | undefined;
  locate(env: Record<string, string | undefined>): { file: string; key: string };
  compileAddressPatterns(host: string, env: Record<string, string | undefined>): void;
}
const early = createRequire(import.meta.url)('../../../bin/early-connection.js') as EarlyConnection;

let home: string;
let server: AcceptingServer;
let origin: string;

beforeEach(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-early-connection-'));
  server = await acceptingServer();
  origin = `http://localhost:${server.port}`;
});

afterEach(async () => {
  await server.close();
  fs.rmSync(home, { recursive: true, force: true });
});

const env = () => ({ ASTRO_HOME: home, ASTRO_CACHE_DIR: path.join(home, 'cache') });

function remember(content: unknown): void {
  const { file } = early.locate(env());
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
}

async function connections(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  return server.sockets.length;
}

describe('the API connection opened before the CLI loads', () => {
  it('reads the file the CLI writes, under the key it writes, in every environment', () => {
    const cases: Record<string, string | undefined>[] = [
      env(),
      { HOME: home },
      { HOME: `  ${home}  `, XDG_CACHE_HOME: path.join(home, 'xdg') },
      { ASTRO_HOME: 'relative/home', ASTRO_CACHE_DIR: '  ', HOME: home, XDG_CACHE_HOME: '' },
      {},
    ];
    for (const vars of cases) {
      const cli = readEnv(vars);
      expect(early.locate(vars), JSON.stringify(vars)).toEqual({ file: apiOriginsFile(cli), key: cli.astroHome });
    }
  });

  it('opens one for an API command, to the origin remembered for this config home, and starts it at once', async () => {
    remember({ [path.resolve(home)]: origin, '/some/other/home': 'http://127.0.0.1:9' });
    const opened = early.open(['--verbose', 'deploy', 'dep-1', '--dags'], env());
    expect(opened?.origin).toBe(origin);
    const started = Date.now();
    await opened!.started;
    // The name was looked up well before the cap of the wait (3 ms; a timer can fire late on a busy machine).
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await connections()).toBe(1);
    opened!.socket.destroy();
    const listing = early.open(['deployment', 'list'], env());
    expect(listing?.origin).toBe(origin);
    listing!.socket.destroy();
  });

  it('opens nothing for other commands, help, no command, or without a valid remembered origin', async () => {
    remember({ [path.resolve(home)]: origin });
    for (const argv of [['dev', 'parse'], ['deploy', '--help'], ['deployment', 'list', '-h'], ['--help'], [], ['context', 'list'], ['login']]) {
      expect(early.open(argv, env()), argv.join(' ')).toBeUndefined();
    }
    for (const content of [
      '{not json',
      '[]',
      'null',
      { [path.resolve(home)]: 42 },
      { [path.resolve(home)]: `${origin}/v1` },
      { [path.resolve(home)]: `${origin}?x=1` },
      { [path.resolve(home)]: `ftp://localhost:21` },
      { [path.resolve(home)]: 'http://two words:1' },
      { '/another/home': origin },
    ]) {
      remember(content);
      expect(early.open(['deploy'], env()), JSON.stringify(content)).toBeUndefined();
    }
    fs.rmSync(path.join(home, 'cache'), { recursive: true, force: true });
    expect(early.open(['deploy'], env())).toBeUndefined();
    expect(await connections()).toBe(0);
  });

  it('a refused connection is no error, and an address is started without a lookup', async () => {
    remember({ [path.resolve(home)]: 'http://127.0.0.1:9' });
    const refused = early.open(['deploy'], env());
    await refused!.started;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(refused!.socket.destroyed).toBe(true);
  });
});

describe("Node's address patterns compiled before the first connection to a name", () => {
  const script = path.resolve('bin/early-connection.js');
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-address-patterns-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * A fresh Node (with `flags`) that writes a V8 code cache of a small script (`make`), or that runs
   * compileAddressPatterns (after `before`, with `nodeOptions` as NODE_OPTIONS) and then says whether it changed the
   * flag for the patterns and whether V8 accepted that cache. V8 accepts a cache only under the flags it was made
   * with, so an accepted cache shows the regexp flag left as it was found.
   */
  function fresh(mode: 'make' | 'check', flags: string[] = [], before = '', nodeOptions = ''): string {
    const cache = path.join(dir, 'probe.v8');
    const program = `
      const vm = require('node:vm');
      const fs = require('node:fs');
      const source = '(function () { return [1, 2, 3].map((n) => n * 2); })';
      if (process.argv[1] === 'make') {
        fs.writeFileSync(process.argv[2], new vm.Script(source, { filename: 'probe.js' }).createCachedData());
      } else {
        ${before}
        const compiled = require(process.argv[3]).compileAddressPatterns('api.example.invalid', { NODE_OPTIONS: process.argv[4] });
        const net = require('node:net');
        if (net.isIP('::1') !== 6 || net.isIP('10.0.0.1') !== 4 || net.isIP('api.example.invalid') !== 0) throw new Error('net.isIP broke');
        const script = new vm.Script(source, { filename: 'probe.js', cachedData: fs.readFileSync(process.argv[2]) });
        process.stdout.write((compiled ? 'compiled' : 'left alone') + ', cache ' + (script.cachedDataRejected ? 'rejected' : 'accepted'));
      }`;
    const result = spawnSync(process.execPath, [...flags, '-e', program, mode, cache, script, nodeOptions], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    return result.stdout;
  }

  it("compiles them in a fresh process and puts V8's regexp flag back, so the CLI's code cache is still accepted", () => {
    fresh('make');
    expect(fresh('check')).toBe('compiled, cache accepted');
    // The check can fail: under the other setting of the flag the same cache is refused.
    expect(fresh('check', ['--no-regexp-tier-up'])).toBe('left alone, cache rejected');
  });

  it('leaves the flag alone where preloaded code may have run, or the user set a regexp flag', () => {
    fresh('make');
    expect(fresh('check', ['--require', script])).toBe('left alone, cache accepted');
    expect(fresh('check', [], '', '--require ./apm.js')).toBe('left alone, cache accepted');
    expect(fresh('check', [], '', '--import=./hooks.mjs')).toBe('left alone, cache accepted');
    fresh('make', ['--regexp-tier-up']);
    expect(fresh('check', ['--regexp-tier-up'])).toBe('left alone, cache accepted');
  });
});
