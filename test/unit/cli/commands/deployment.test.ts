import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AstroConfig, configPaths } from '../../../../src/config/store.js';
import { runCli, type CliRun } from '../../../helpers/cli.js';
import { FakePlatform, fakeJwt } from '../../auth/fake-platform.js';

let home: string;
let fake: FakePlatform;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-deployment-cli-'));
  fake = await new FakePlatform().start();
  await writeConfig({});
});
afterEach(async () => {
  await fake.stop();
  await fs.rm(home, { recursive: true, force: true });
});

async function writeConfig(extra: Record<string, unknown>): Promise<void> {
  await fs.mkdir(path.join(home, '.astro'), { recursive: true });
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), stringify({ local: { core: fake.url }, ...extra }));
}

const loadConfig = () => AstroConfig.load(configPaths(home, home));

function expectNoSecrets(run: CliRun, extra: string[] = []): void {
  for (const secret of [...fake.validTokens, ...fake.refreshTokens.keys(), ...extra]) {
    expect(run.stdout).not.toContain(secret);
    expect(run.stderr).not.toContain(secret);
  }
}

describe('ASTRO_API_TOKEN', () => {
  const apiEnv = (token: string) => ({ ASTRO_HOME: home, ASTRO_DOMAIN: 'localhost', ASTRO_API_TOKEN: token });

  it('works without any login, scoped by the workspace claim', async () => {
    const token = fake.apiToken(['workspaceId:ws-1', 'organizationId:org-1']);
    const run = await runCli(['deployment', 'list', '--verbose'], { env: apiEnv(token) });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Using an Astro API Token');
    expect(run.stdout).toContain('prod');
    expect(run.stdout).not.toContain('staging');
    const list = fake.requests.find((r) => r.path === '/v1/organizations/org-1/deployments')!;
    expect(list.query.workspaceIds).toBe('ws-1');
    expect(list.authorization).toBe(`Bearer ${token}`);
    // Nothing was written: CI tokens stay out of the config file.
    expect((await loadConfig()).contexts()).toEqual([]);
    expectNoSecrets(run);
  });

  it('an organization token lists the whole organization; --json gives the document', async () => {
    const token = fake.apiToken(['organizationId:org-1']);
    const run = await runCli(['deployment', 'list', '--json'], { env: apiEnv(token) });
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { organizationId: string; deployments: { id: string }[] };
    expect(doc.organizationId).toBe('org-1');
    expect(doc.deployments.map((d) => d.id)).toEqual(['dep-1', 'dep-2']);
    expectNoSecrets(run);
  });

  it('refuses an expired token with "API Token is expired" before any request', async () => {
    const token = fake.apiToken(['organizationId:org-1'], -60);
    const run = await runCli(['deployment', 'list', '--verbose'], { env: apiEnv(token) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: API Token is expired');
    expect(run.stderr).toContain('tok-1');
    expect(fake.requests.filter((r) => r.path.startsWith('/v1/'))).toEqual([]);
    expectNoSecrets(run);
  });

  it.each([
    ['not-a-jwt-at-all-0123456789', 'API Token is invalid or malformed'],
    ['eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.c2lnbmF0dXJl', 'API Token is invalid or malformed'],
    [fakeJwt({ sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 600 }), 'the API token given does not appear to be an Astro API Token'],
  ])('refuses a malformed or non-API token %#', async (token, message) => {
    const run = await runCli(['deployment', 'list', '--verbose'], { env: apiEnv(token) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Error: ${message}`);
    expectNoSecrets(run, [token]);
  });
});

describe('stored context refresh', () => {
  async function storeSession(expiresInSeconds: number, refreshToken: string): Promise<string> {
    const token = fake.issueAccessToken();
    await writeConfig({
      context: 'localhost',
      contexts: {
        localhost: {
          domain: 'localhost',
          organization: 'org-1',
          workspace: 'ws-1',
          token: `Bearer ${token}`,
          refreshtoken: refreshToken,
          expiresin: new Date(Date.now() + expiresInSeconds * 1000).toISOString(),
        },
      },
    });
    return token;
  }

  it('uses a token far from expiry as it is', async () => {
    const token = await storeSession(3600, 'rt-unused');
    const run = await runCli(['deployment', 'list'], { env: { ASTRO_HOME: home } });
    expect(run.code).toBe(0);
    expect(fake.count('POST', '/auth/oauth/token')).toBe(0);
    expect(fake.requests.find((r) => r.path.endsWith('/deployments'))!.authorization).toBe(`Bearer ${token}`);
  });

  it('refreshes a token within 5 minutes of expiry, saves it, and keeps the refresh token', async () => {
    fake.refreshTokens.set('rt-known-refresh-token', 'old');
    const old = await storeSession(120, 'rt-known-refresh-token');
    const run = await runCli(['deployment', 'list', '--verbose'], { env: { ASTRO_HOME: home } });
    expect(run.code).toBe(0);
    const form = new URLSearchParams(fake.requests.find((r) => r.path === '/auth/oauth/token')!.body);
    expect(Object.fromEntries(form)).toEqual({ client_id: 'fake-client', grant_type: 'refresh_token', refresh_token: 'rt-known-refresh-token' });
    const ctx = (await loadConfig()).context('localhost')!;
    const fresh = fake.issued.at(-1)!.accessToken;
    expect(ctx.token).toBe(`Bearer ${fresh}`);
    expect(ctx.token).not.toBe(`Bearer ${old}`);
    expect(ctx.refreshtoken).toBe('rt-known-refresh-token');
    expect(new Date(String(ctx.expiresin)).getTime()).toBeGreaterThan(Date.now() + 3000_000);
    expect(fake.requests.find((r) => r.path.endsWith('/deployments'))!.authorization).toBe(`Bearer ${fresh}`);
    expectNoSecrets(run, ['rt-known-refresh-token']);
  });

  it('says to log in again when the refresh fails', async () => {
    await storeSession(60, 'rt-revoked-refresh-token');
    const run = await runCli(['deployment', 'list', '--verbose'], { env: { ASTRO_HOME: home } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('could not be refreshed: Unknown or invalid refresh token.');
    expect(run.stderr).toContain('Run astro login localhost to log in again.');
    expectNoSecrets(run, ['rt-revoked-refresh-token']);
  });

  it('after logout (which unsets the current context), says to log in', async () => {
    await storeSession(3600, 'rt-x');
    expect((await runCli(['logout'], { env: { ASTRO_HOME: home } })).code).toBe(0);
    const run = await runCli(['deployment', 'list'], { env: { ASTRO_HOME: home } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no context set, have you authenticated to Astro or APC? Run astro login and try again');
    // With the domain named, the logged-out context says so.
    const named = await runCli(['deployment', 'list'], { env: { ASTRO_HOME: home, ASTRO_DOMAIN: 'localhost' } });
    expect(named.stderr).toContain('You are not logged in to localhost');
    expect(named.stderr).toContain('astro login localhost');
  });
});
