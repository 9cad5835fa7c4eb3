// `astro auth login|logout|token`, as Astronomer's CLI has them (login and logout are also top-level commands).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AstroConfig, configPaths } from '../../../../src/config/store.js';
import { runCli } from '../../../helpers/cli.js';
import { FakePlatform } from '../../auth/fake-platform.js';

let home: string;
let fake: FakePlatform;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-auth-cli-'));
  fake = await new FakePlatform().start();
  await writeConfig({});
});
afterEach(async () => {
  await fake.stop();
  await fs.rm(home, { recursive: true, force: true });
});

async function writeConfig(extra: Record<string, unknown>): Promise<void> {
  await fs.mkdir(path.join(home, '.astro'), { recursive: true });
  await fs.writeFile(
    path.join(home, '.astro', 'config.yaml'),
    stringify({ local: { core: fake.url, houston: `${fake.url}/houston/v1` }, login: { callback_port: 0 }, ...extra }),
  );
}

const env = () => ({ ASTRO_HOME: home });
const loadConfig = () => AstroConfig.load(configPaths(home, home));

describe('astro auth', () => {
  it('auth login --token-login, auth token prints the raw token, auth logout forgets it', async () => {
    const token = fake.issueAccessToken();
    const login = await runCli(['auth', 'login', 'localhost', '-t', token], { env: env() });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toBe('Successfully authenticated to Astronomer\n');
    expect((await loadConfig()).context('localhost')?.token).toBe(`Bearer ${token}`);

    const printed = await runCli(['auth', 'token'], { env: env() });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toBe(`${token}\n`);

    const logout = await runCli(['auth', 'logout'], { env: env() });
    expect(logout.code).toBe(0);
    expect(logout.stdout).toBe('Successfully logged out of Astronomer\n');
    const after = await runCli(['auth', 'token', '--domain', 'localhost'], { env: env() });
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('There is no token for localhost');
    expect(after.stdout).toBe('');
  });

  it('auth token -d names another context; a Software token is printed as stored', async () => {
    await writeConfig({
      context: 'localhost',
      contexts: {
        localhost: { domain: 'localhost', token: `Bearer ${fake.issueAccessToken()}`, expiresin: new Date(Date.now() + 3600_000).toISOString() },
        houston: { domain: 'houston', token: 'raw-houston-token-value' },
      },
      local: { core: fake.url, houston: `${fake.url}/houston/v1`, platform: 'cloud' },
    });
    const run = await runCli(['auth', 'token', '-d', 'houston'], { env: env() });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('raw-houston-token-value\n');
    const unknown = await runCli(['auth', 'token', '-d', 'elsewhere.example.com'], { env: env() });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('There is no context for "elsewhere.example.com"');
  });

  it('auth token refreshes an Astro token that is due, saves it, and prints the new one', async () => {
    fake.refreshTokens.set('rt-known-refresh-token', 'old');
    const old = fake.issueAccessToken();
    await writeConfig({
      context: 'localhost',
      contexts: {
        localhost: {
          domain: 'localhost',
          organization: 'org-1',
          token: `Bearer ${old}`,
          refreshtoken: 'rt-known-refresh-token',
          expiresin: new Date(Date.now() + 60_000).toISOString(),
        },
      },
    });
    const run = await runCli(['auth', 'token', '--json'], { env: env() });
    expect(run.code, run.stderr).toBe(0);
    const fresh = fake.issued.at(-1)!.accessToken;
    expect(fresh).not.toBe(old);
    expect(JSON.parse(run.stdout)).toEqual({ domain: 'localhost', token: fresh });
    expect((await loadConfig()).context('localhost')?.token).toBe(`Bearer ${fresh}`);
  });

  it('no context at all: says to log in', async () => {
    const run = await runCli(['auth', 'token'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no context set');
  });
});
