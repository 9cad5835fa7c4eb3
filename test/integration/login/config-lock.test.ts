/**
 * A home Astronomer's CLI has used: it leaves an empty `config.yaml.lock` beside every config it saves (its flock
 * sidecar). Every command of ours that writes the config must treat that file as what it is, no lock held, and write.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startStack, type Stack } from '../../platform/stack.js';
import { runCli } from '../../helpers/cli.js';

let stack: Stack;
let stateDir: string;
let home: string;
let project: string;

const ADA = 'clusrada00000000000000000';
const STELLAR = 'clorgstellar0000000000000';
const DATA_PLATFORM = 'clwksdataplatform00000000';

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-lock-stack-'));
  stack = await startStack({ stateDir, ports: 0, healthDelayMs: 100 });
});
afterAll(async () => {
  await stack?.stop();
  await fs.rm(stateDir, { recursive: true, force: true });
});

const globalFile = () => path.join(home, '.astro', 'config.yaml');
const projectFile = () => path.join(project, '.astro', 'config.yaml');
const env = () => ({ ASTRO_HOME: home });
const readGlobal = async () => parse(await fs.readFile(globalFile(), 'utf8')) as Record<string, any>;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-lock-home-'));
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-lock-project-'));
  const adaToken = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
  const refresh = stack.tokens.refreshTokens.find((r) => !r.revoked)!.token;
  await fs.mkdir(path.join(home, '.astro'), { recursive: true });
  await fs.mkdir(path.join(project, '.astro'), { recursive: true });
  await fs.writeFile(
    globalFile(),
    stringify({
      local: { core: stack.endpoints.platform.url, houston: stack.endpoints.houston.graphqlUrl },
      context: 'localhost',
      contexts: {
        localhost: {
          domain: 'localhost',
          organization: STELLAR,
          workspace: DATA_PLATFORM,
          token: `Bearer ${adaToken}`,
          refreshtoken: refresh,
          // Within five minutes of expiry: the next authenticated command refreshes and saves.
          expiresin: new Date(Date.now() + 60_000).toISOString(),
        },
        example_com: { domain: 'example.com', token: 'Bearer other' },
      },
    }),
  );
  await fs.writeFile(projectFile(), 'project:\n  name: demo\n');
  // What Astronomer's CLI leaves behind: empty regular files, never deleted.
  await fs.writeFile(`${globalFile()}.lock`, '');
  await fs.writeFile(`${projectFile()}.lock`, '');
  return async () => {
    await fs.rm(home, { recursive: true, force: true });
    await fs.rm(project, { recursive: true, force: true });
  };
});

async function expectLockFilesKept(): Promise<void> {
  for (const file of [`${globalFile()}.lock`, `${projectFile()}.lock`]) {
    const stat = await fs.stat(file);
    expect(stat.isFile()).toBe(true);
    expect(stat.size).toBe(0);
  }
}

describe("every write command beside an empty config.yaml.lock (as Astronomer's CLI leaves it)", () => {
  it('token refresh (deployment list) saves the new token', async () => {
    const before = (await readGlobal()).contexts.localhost.token;
    const run = await runCli(['deployment', 'list'], { env: env() });
    expect(run.stderr).not.toMatch(/lock/i);
    expect(run.code).toBe(0);
    expect((await readGlobal()).contexts.localhost.token).not.toBe(before);
    await expectLockFilesKept();
  });

  it('login --token-login saves the context', async () => {
    const token = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
    const run = await runCli(['login', 'localhost', '-t', token, '--organization-id', STELLAR, '--workspace-id', DATA_PLATFORM], { env: env() });
    expect(run.stderr).not.toMatch(/lock/i);
    expect(run.code).toBe(0);
    const saved = (await readGlobal()).contexts.localhost;
    expect(saved.token).toBe(`Bearer ${token}`);
    expect(saved.refreshtoken).toBe('');
    await expectLockFilesKept();
  });

  it('logout clears the token', async () => {
    const run = await runCli(['logout'], { env: env() });
    expect(run.stderr).not.toMatch(/lock/i);
    expect(run.code).toBe(0);
    expect((await readGlobal()).contexts.localhost.token ?? '').toBe('');
    await expectLockFilesKept();
  });

  it('context switch and context delete', async () => {
    const sw = await runCli(['context', 'switch', 'example.com'], { env: env() });
    expect(sw.stderr).not.toMatch(/lock/i);
    expect(sw.code).toBe(0);
    expect((await readGlobal()).context).toBe('example.com');
    const del = await runCli(['context', 'delete', 'example.com', '-f'], { env: env() });
    expect(del.code).toBe(0);
    expect((await readGlobal()).contexts.example_com).toBeUndefined();
    await expectLockFilesKept();
  });

  it('config set, global and in the project', async () => {
    const global = await runCli(['config', 'set', '-g', 'show_warnings', 'false'], { env: env(), cwd: project });
    expect(global.stderr).not.toMatch(/lock/i);
    expect(global.code).toBe(0);
    expect((await readGlobal()).show_warnings).toBe('false');
    const local = await runCli(['config', 'set', 'project.deployment', 'dep-1'], { env: env(), cwd: project });
    expect(local.code).toBe(0);
    expect(parse(await fs.readFile(projectFile(), 'utf8')).project).toEqual({ name: 'demo', deployment: 'dep-1' });
    await expectLockFilesKept();
  });
});
