// What the built CLI (bin/astro.js) loads for a command: Node's built-in modules and the packages from node_modules,
// recorded as the process exits. `--help` and a DAG-only deploy load no Docker, gRPC or Azure code (issue 18); a
// DAG-only deploy to an http origin compiles no TLS, child processes, prompts or fs/promises either (scripts/bundle.mjs: built-in
// modules some commands use load on first use). The deploy runs against the local platform, so the command did its
// whole job with what it loaded.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';

const DAG_ON = 'cldepdagon000000000000000';
const BIN = path.resolve('bin/astro.js');
let stack: Stack;
let work: string;
let recorder: string;

interface Loaded {
  code: number | null;
  stderr: string;
  builtins: string[];
  packages: string[];
}

beforeAll(async () => {
  stack = await startStack({ ports: 0, healthDelayMs: 100 });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-loaded-modules-'));
  recorder = path.join(work, 'record.cjs');
  // Preloaded, so it sees the whole process; it loads nothing itself (fs and path are loaded before any user code).
  await fs.writeFile(
    recorder,
    `const fs = require('node:fs');
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const packages = Object.keys(require.cache).filter((f) => f.includes('/node_modules/'))
    .map((f) => f.slice(f.lastIndexOf('/node_modules/') + 14).split('/').slice(0, 2).join('/').replace(/^([^@][^/]*)\\/.*$/, '$1'));
  fs.writeFileSync(process.env.RECORD_TO, JSON.stringify({ builtins, packages: [...new Set(packages)] }));
});\n`,
  );
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** An ASTRO_HOME whose config points at the local platform, and a copy of the example project. */
async function setUp(): Promise<{ home: string; project: string }> {
  const home = await fs.mkdtemp(path.join(work, 'home-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
  const project = await fs.mkdtemp(path.join(work, 'project-'));
  await fs.cp(path.resolve('fixtures/example-project'), project, { recursive: true });
  return { home, project };
}

async function loadedBy(argv: string[], place?: { home: string; project: string }): Promise<Loaded> {
  const { home, project } = place ?? (await setUp());
  const record = path.join(home, 'loaded.json');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    ASTRO_HOME: home,
    ASTRO_CACHE_DIR: path.join(home, 'cache'),
    ASTRO_API_TOKEN: stack.tokens.apiTokens.find((t) => t.id === 'cltokwsdataplatform000000')!.token,
    ASTRONOMER_SKIP_PARSE: '1',
    NO_COLOR: '1',
    RECORD_TO: record,
  };
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', recorder, BIN, ...argv], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('close', (exit) => resolve({ code: exit, stderr: err }));
  });
  return { code, stderr, ...(JSON.parse(await fs.readFile(record, 'utf8')) as { builtins: string[]; packages: string[] }) };
}

const HEAVY_PACKAGES = ['dockerode', 'docker-modem', '@grpc/grpc-js', '@azure/storage-blob', 'ssh2', 'ora', 'open', 'graphql-request'];

describe('what a command loads', () => {
  it('a DAG-only deploy to an http origin: no Docker, gRPC, Azure, TLS, child process, prompt or fs/promises code', async () => {
    // Twice in one home: the first run remembers the API's origin (a file written: fs/promises), the second opens
    // its connection early and, with nothing to write, needs no fs/promises either.
    const place = await setUp();
    for (let run = 0; run < 2; run++) {
      const loaded = await loadedBy(['deploy', DAG_ON, '--dags'], place);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect(loaded.stderr).toMatch(/Deployed DAG bundle/);
      expect(loaded.builtins).toEqual(expect.arrayContaining(['http', 'zlib', 'crypto']));
      for (const builtin of ['https', 'tls', '_tls_wrap', 'child_process', 'readline', 'readline/promises', ...(run > 0 ? ['fs/promises'] : [])])
        expect(loaded.builtins, `run ${run}`).not.toContain(builtin);
      for (const pkg of HEAVY_PACKAGES) expect(loaded.packages).not.toContain(pkg);
    }
  });

  it('--help: none of those, and no HTTP client', async () => {
    const loaded = await loadedBy(['--help']);
    expect(loaded.code, loaded.stderr).toBe(0);
    for (const builtin of ['http', 'https', 'tls', 'child_process', 'zlib']) expect(loaded.builtins).not.toContain(builtin);
    expect(loaded.packages).toEqual([]);
  });
});
