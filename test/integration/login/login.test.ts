/**
 * Login against the real local platform (test/platform) with a real browser: Debian Chromium driven by
 * playwright-core loads the authorize page, clicks its button, and the CLI's callback server receives the code.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startStack, type Stack } from '../../platform/stack.js';
import { AstroConfig, configPaths } from '../../../src/config/store.js';
import { loginToAstro } from '../../../src/auth/login.js';
import { decodeJwtClaims } from '../../../src/auth/jwt.js';
import { createAstroClient } from '../../../src/platform/astro/client.js';
import { runCli, type CliRun } from '../../helpers/cli.js';
import { startCli } from '../../unit/auth/live-cli.js';

let stack: Stack;
let browser: BrowserContext;
let stateDir: string;
let profileDir: string;
let home: string;

const ADA = 'clusrada00000000000000000';
const GRACE = 'clusrgrace000000000000000';
const STELLAR = 'clorgstellar0000000000000';
const DATA_PLATFORM = 'clwksdataplatform00000000';

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-login-stack-'));
  profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-login-chromium-'));
  [stack, browser] = await Promise.all([
    startStack({ stateDir, ports: 0, healthDelayMs: 100 }),
    chromium.launchPersistentContext(profileDir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await fs.rm(stateDir, { recursive: true, force: true });
  await fs.rm(profileDir, { recursive: true, force: true });
});

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-login-home-'));
  await writeConfig({});
  return () => fs.rm(home, { recursive: true, force: true });
});

async function writeConfig(extra: Record<string, unknown>): Promise<void> {
  await fs.mkdir(path.join(home, '.astro'), { recursive: true });
  await fs.writeFile(
    path.join(home, '.astro', 'config.yaml'),
    stringify({
      local: { core: stack.endpoints.platform.url, houston: stack.endpoints.houston.graphqlUrl },
      login: { callback_port: 0 },
      ...extra,
    }),
  );
}

const env = (extra: Record<string, string> = {}) => ({ ASTRO_HOME: home, ...extra });
const loadConfig = () => AstroConfig.load(configPaths(home, home));

/** Plays the user in the browser: opens the authorize URL, picks a user, clicks a button; returns the final page text. */
async function authorizeInBrowser(url: string, options: { userId?: string; button: 'login' | 'deny' }): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    expect(await page.locator('h1').textContent()).toBe('Log in to Astro');
    if (options.userId) await page.check(`input[name="user"][value="${options.userId}"]`);
    await Promise.all([page.waitForURL(/\/callback\?/), page.click(`#${options.button}`)]);
    return (await page.locator('body').textContent()) ?? '';
  } finally {
    await page.close();
  }
}

/** Credentials the platform knows, plus those saved in the config: none may ever be printed. */
async function expectNoSecrets(runs: CliRun[], extra: string[] = []): Promise<void> {
  const { tokens } = stack;
  const secrets = [
    ...tokens.apiTokens.map((t) => t.token),
    ...tokens.userAccessTokens.map((t) => t.token),
    ...tokens.refreshTokens.map((t) => t.token),
    ...tokens.users.map((u) => u.password),
    ...tokens.houston.userTokens.map((t) => t.token),
    ...extra,
  ];
  const config = await loadConfig().catch(() => undefined);
  for (const ctx of config?.contexts() ?? []) {
    for (const s of [ctx.token, ctx.refreshtoken]) if (s && s.length > 8) secrets.push(s, s.replace(/^Bearer /, ''));
  }
  for (const run of runs) {
    for (const secret of secrets) {
      expect(run.stdout).not.toContain(secret);
      expect(run.stderr).not.toContain(secret);
    }
  }
}

function choiceNumber(stderr: string, label: string): string {
  const line = stderr.split('\n').findLast((l) => l.includes(label));
  const match = line && /^\s*(\d+)\s/.exec(line);
  if (!match) throw new Error(`no choice "${label}" in:\n${stderr}`);
  return match[1]!;
}

describe('browser login with Chromium against the local platform', () => {
  it('astro login: the authorize page is loaded, "Log in" clicked, the callback received; the saved context lists deployments', async () => {
    const cli = startCli(['login', 'localhost', '--login-link', '--verbose'], { env: env(), tty: true });
    const [, url] = await cli.stderrMatch(/Please visit the following link on a device with a browser: (\S+)/);
    expect(url!.startsWith(`${stack.endpoints.platform.authDomainUrl}authorize?`)).toBe(true);

    const finalPage = await authorizeInBrowser(url!, { button: 'login' });
    expect(finalPage).toContain('astro is now logged in');

    // Ada belongs to two organizations, and Stellar Labs has two workspaces: answer the prompts.
    const orgPrompt = await cli.stderrMatch(/Please choose an organization:[\s\S]*> $/, 20_000);
    cli.type(`${choiceNumber(orgPrompt[0], 'Stellar Labs')}\n`);
    const wsPrompt = await cli.stderrMatch(/Please choose a workspace:[\s\S]*> $/);
    cli.type(`${choiceNumber(wsPrompt[0], 'Data Platform')}\n`);
    const login = await cli.done;

    expect(login.code).toBe(0);
    expect(login.stderr).toContain('Logging in as ada@example.com');
    expect(login.stdout).toBe('Successfully authenticated to Astronomer\n');

    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.organization).toBe(STELLAR);
    expect(ctx.organization_product).toBe('HOSTED');
    expect(ctx.workspace).toBe(DATA_PLATFORM);
    expect(ctx.user_email).toBe('ada@example.com');
    expect(decodeJwtClaims(ctx.token!)?.sub).toBe(ADA);
    expect(ctx.refreshtoken).toMatch(/^rt_/);

    const list = await runCli(['deployment', 'list', '--json', '--verbose'], { env: env() });
    expect(list.code).toBe(0);
    const listed = (JSON.parse(list.stdout) as { deployments: { id: string }[] }).deployments.map((d) => d.id).sort();
    const expected = stack.platform.seed.deployments
      .filter((d) => d.workspaceId === DATA_PLATFORM)
      .map((d) => d.id)
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(listed).toEqual(expected);

    await expectNoSecrets([login, list]);
  });

  it('the login service with Chromium as its injected browser opener (one organization, one workspace: chosen automatically)', async () => {
    const pages: string[] = [];
    const result = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), callbackPort: 0 },
      {
        controlPlane: (baseUrl, token) => createAstroClient({ baseUrl, token: () => token, clientIdentifier: 'cli', clientVersion: 'test' }),
        beforeBrowserOpens: async () => {},
        openBrowser: async (url) => {
          // Like a real browser launcher: returns once the browser has the URL, the user acts later.
          void authorizeInBrowser(url, { userId: GRACE, button: 'login' }).then((text) => pages.push(text));
        },
        chooseOrganization: async () => {
          throw new Error('Grace has one organization: nothing to choose');
        },
        chooseWorkspace: async () => {
          throw new Error('Nebula has one workspace: nothing to choose');
        },
        addSecret: () => {},
      },
    );
    expect(result).toMatchObject({
      email: 'grace@example.com',
      organization: { id: 'clorgnebula00000000000000', product: 'HYBRID' },
      workspace: { id: 'clwksoperations0000000000', name: 'Operations' },
    });
    await expect.poll(() => pages.length).toBe(1);
    expect(pages[0]).toContain('astro is now logged in');
  });

  it('clicking "Deny" fails the login with "Could not authorize your device" and saves no token', async () => {
    const cli = startCli(['login', 'localhost', '--login-link'], { env: env() });
    const [, url] = await cli.stderrMatch(/link on a device with a browser: (\S+)/);
    const finalPage = await authorizeInBrowser(url!, { button: 'deny' });
    expect(finalPage).toContain('astro was not authorized');
    const run = await cli.done;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: Could not authorize your device: access_denied: The user denied access to the Astro CLI');
    expect((await loadConfig()).context('localhost')).toBeUndefined();
    await expectNoSecrets([run]);
  });

  it('without a terminal, a user with two organizations gets exit 4 naming --organization-id, and the flags finish it', async () => {
    const ada = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
    const first = await runCli(['login', 'localhost', '-t', ada], { env: env() });
    expect(first.code).toBe(4);
    expect(first.stderr).toContain('--organization-id');
    const second = await runCli(['login', 'localhost', '-t', ada, '--organization-id', STELLAR, '--workspace-id', DATA_PLATFORM], { env: env() });
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('This token will expire in 1 hour and will not refresh');
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.token).toBe(`Bearer ${ada}`);
    expect(ctx.refreshtoken).toBe('');
    await expectNoSecrets([first, second]);
  });
});

describe('ASTRO_API_TOKEN against the local platform', () => {
  const apiEnv = (id: string) => env({ ASTRO_DOMAIN: 'localhost', ASTRO_API_TOKEN: stack.tokens.apiTokens.find((t) => t.id === id)!.token });

  it('a workspace token lists that workspace without any login', async () => {
    const run = await runCli(['deployment', 'list', '--json', '--verbose'], { env: apiEnv('cltokwsdataplatform000000') });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Using an Astro API Token');
    const listed = JSON.parse(run.stdout) as { workspaceId: string; deployments: { workspaceId: string }[] };
    expect(listed.workspaceId).toBe(DATA_PLATFORM);
    expect(listed.deployments.length).toBeGreaterThan(0);
    expect(listed.deployments.every((d) => d.workspaceId === DATA_PLATFORM)).toBe(true);
    await expectNoSecrets([run]);
  });

  it('an organization token lists the organization', async () => {
    const run = await runCli(['deployment', 'list', '--json'], { env: apiEnv('cltokorgnebula00000000000') });
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { organizationId: string; deployments: { id: string }[] };
    expect(doc.organizationId).toBe('clorgnebula00000000000000');
    const expected = stack.platform.seed.deployments.filter((d) => stack.platform.organizationOf(d) === 'clorgnebula00000000000000');
    expect(doc.deployments.map((d) => d.id).sort()).toEqual(expected.map((d) => d.id).sort());
    await expectNoSecrets([run]);
  });

  it('an expired token is refused with "API Token is expired" and exit 1', async () => {
    const run = await runCli(['deployment', 'list', '--verbose'], { env: apiEnv('cltokexpired0000000000000') });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: API Token is expired');
    expect(run.stderr).toContain('cltokexpired0000000000000');
    await expectNoSecrets([run]);
  });

  it('a malformed token is refused with "API Token is invalid or malformed"', async () => {
    const run = await runCli(['deployment', 'list'], { env: env({ ASTRO_DOMAIN: 'localhost', ASTRO_API_TOKEN: 'garbage-token-value-12345' }) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: API Token is invalid or malformed');
    await expectNoSecrets([run], ['garbage-token-value-12345']);
  });
});

describe('refresh against the local platform', () => {
  async function expiringContext(refreshToken: string): Promise<string> {
    const token = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
    await writeConfig({
      context: 'localhost',
      contexts: {
        localhost: {
          domain: 'localhost',
          organization: STELLAR,
          workspace: DATA_PLATFORM,
          token: `Bearer ${token}`,
          refreshtoken: refreshToken,
          expiresin: new Date(Date.now() + 60_000).toISOString(),
        },
      },
    });
    return token;
  }

  it('a token within 5 minutes of expiry is refreshed with the refresh token, and the command works', async () => {
    const refresh = stack.tokens.refreshTokens.find((r) => !r.revoked)!.token;
    const old = await expiringContext(refresh);
    const run = await runCli(['deployment', 'list', '--verbose'], { env: env() });
    expect(run.code).toBe(0);
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.token).not.toBe(`Bearer ${old}`);
    expect(decodeJwtClaims(ctx.token!)?.sub).toBe(ADA);
    expect(ctx.refreshtoken).toBe(refresh);
    expect(new Date(String(ctx.expiresin)).getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
    await expectNoSecrets([run]);
  });

  it('a revoked refresh token says to log in again', async () => {
    await expiringContext(stack.tokens.refreshTokens.find((r) => r.revoked)!.token);
    const run = await runCli(['deployment', 'list', '--verbose'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('could not be refreshed');
    expect(run.stderr).toContain('Run astro login localhost to log in again.');
    await expectNoSecrets([run]);
  });

  it('after astro logout the context no longer works', async () => {
    await expiringContext(stack.tokens.refreshTokens.find((r) => !r.revoked)!.token);
    const out = await runCli(['logout'], { env: env() });
    expect(out.stdout).toBe('Successfully logged out of Astronomer\n');
    expect((await loadConfig()).currentDomain()).toBe('');
    const run = await runCli(['deployment', 'list'], { env: env({ ASTRO_DOMAIN: 'localhost' }) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('You are not logged in to localhost');
  });
});

describe('Astronomer Software login against the local Houston', () => {
  it('username and password (createToken): the raw Houston token is stored and works', async () => {
    const run = await runCli(['login', 'houston', '-u', 'ada@example.com', '--password-stdin', '--workspace-id', 'ckwkssoftwareb00000000000', '--verbose'], {
      env: env(),
      input: 'ada-password\n',
    });
    expect(run.code).toBe(0);
    const config = await loadConfig();
    expect(config.currentDomain()).toBe('houston');
    const ctx = config.context('houston')!;
    expect(ctx.workspace).toBe('ckwkssoftwareb00000000000');
    expect(ctx.token).not.toMatch(/^Bearer /);
    expect(await stack.platform.authenticateHouston(ctx.token)).toEqual({ kind: 'houstonUser', userId: ADA });
    await expectNoSecrets([run]);
  });

  it('a wrong password fails with "local auth login failed" and OAuth is refused when the platform has no providers', async () => {
    const wrong = await runCli(['login', 'houston', '-u', 'ada@example.com', '--password-stdin'], { env: env(), input: 'not-adas-password\n' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('Error: local auth login failed: Invalid username or password');
    const oauth = await runCli(['login', 'houston', '--oauth'], { env: env() });
    expect(oauth.code).toBe(1);
    expect(oauth.stderr).toContain('Error: cannot authenticate, oauth is disabled');
    await expectNoSecrets([wrong, oauth], ['not-adas-password']);
  });

  it('--token-login stores a Houston token; Grace has one workspace, chosen automatically', async () => {
    const grace = stack.tokens.houston.userTokens.find((t) => t.userId === GRACE)!.token;
    const run = await runCli(['login', 'houston', '-t', grace], { env: env() });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('"Software Team B" Workspace found. This is your default Workspace.');
    expect((await loadConfig()).context('houston')!.token).toBe(grace);
    await expectNoSecrets([run]);
  });

  it('switching between the Astro and the Software context', async () => {
    const ada = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
    expect((await runCli(['login', 'localhost', '-t', ada, '--organization-id', STELLAR, '--workspace-id', DATA_PLATFORM], { env: env() })).code).toBe(0);
    const grace = stack.tokens.houston.userTokens.find((t) => t.userId === GRACE)!.token;
    expect((await runCli(['login', 'houston', '-t', grace], { env: env() })).code).toBe(0);
    expect((await loadConfig()).currentDomain()).toBe('houston');
    const switched = await runCli(['context', 'switch', 'localhost'], { env: env() });
    expect(switched.code).toBe(0);
    const list = await runCli(['deployment', 'list'], { env: env() });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+NAMESPACE\s+DEPLOYMENT ID/);
    await expectNoSecrets([switched, list]);
  });
});
