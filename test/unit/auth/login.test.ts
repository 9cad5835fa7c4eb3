import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AstroConfig, configPaths } from '../../../src/config/store.js';
import { loginToAstro, logout, type AstroLoginPorts, type LoginEvent } from '../../../src/auth/login.js';
import { createAstroClient } from '../../../src/platform/astro/client.js';
import { NeedsInputError, UserError } from '../../../src/errors.js';
import { FakePlatform, fetchBrowser } from './fake-platform.js';

let home: string;
let fake: FakePlatform;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-login-'));
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

interface Harness {
  ports: AstroLoginPorts;
  events: LoginEvent[];
  calls: string[];
  secrets: string[];
}

function harness(overrides: Partial<AstroLoginPorts> = {}): Harness {
  const events: LoginEvent[] = [];
  const calls: string[] = [];
  const secrets: string[] = [];
  const ports: AstroLoginPorts = {
    controlPlane: (baseUrl, token) =>
      createAstroClient({
        baseUrl,
        token: () => token,
        clientIdentifier: 'cli',
        clientVersion: '0.0.0-test',
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      }),
    beforeBrowserOpens: async () => {
      calls.push('enter');
    },
    openBrowser: async (url) => {
      calls.push('open');
      await fetchBrowser(url);
    },
    chooseOrganization: async () => {
      throw new NeedsInputError('choose an organization', ['--organization-id']);
    },
    chooseWorkspace: async () => {
      throw new NeedsInputError('choose a workspace', ['--workspace-id']);
    },
    addSecret: (s) => secrets.push(s),
    onProgress: (e) => events.push(e),
    ...overrides,
  };
  return { ports, events, calls, secrets };
}

describe('browser login (PKCE)', () => {
  it('logs in through authorize + callback + token exchange and saves the context in the compatible format', async () => {
    const h = harness();
    const before = Date.now();
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0 }, h.ports);

    expect(result).toEqual({
      domain: 'localhost',
      email: 'ada@example.com',
      organization: { id: 'org-1', name: 'Stellar Labs', product: 'HOSTED' },
      workspace: { id: 'ws-1', name: 'Data Platform' },
    });
    expect(h.calls).toEqual(['enter', 'open']);

    const config = await loadConfig();
    expect(config.currentDomain()).toBe('localhost');
    const ctx = config.context('localhost')!;
    const issued = fake.issued[0]!;
    expect(ctx.token).toBe(`Bearer ${issued.accessToken}`);
    expect(ctx.refreshtoken).toBe(issued.refreshToken);
    expect(ctx.user_email).toBe('ada@example.com');
    expect(ctx.organization).toBe('org-1');
    expect(ctx.organization_product).toBe('HOSTED');
    expect(ctx.workspace).toBe('ws-1');
    expect(ctx.last_used_workspace).toBe('ws-1');
    const expires = new Date(String(ctx.expiresin)).getTime();
    expect(String(ctx.expiresin)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(expires).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);

    // Every credential was handed to the redactor.
    expect(h.secrets).toEqual(expect.arrayContaining([issued.accessToken, issued.refreshToken]));
    // The session check Astronomer's CLI makes.
    expect(fake.requests.find((r) => r.path === '/v1/users/self')?.query).toEqual({ createIfNotExist: 'true' });
    expect(fake.requests.find((r) => r.path === '/v1/users/self')?.authorization).toBe(`Bearer ${issued.accessToken}`);
    expect(h.events.map((e) => e.type)).toEqual([
      'welcome',
      'browser-opened',
      'waiting-for-browser',
      'callback-received',
      'logged-in-as',
      'organization-selected',
      'workspace-selected',
    ]);
  });

  it('sends the verifier whose S256 hash is the challenge, and the same redirect_uri, to the token endpoint', async () => {
    const h = harness();
    await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0 }, h.ports);
    const authorize = fake.requests.find((r) => r.path === '/auth/authorize')!;
    const exchange = new URLSearchParams(fake.requests.find((r) => r.path === '/auth/oauth/token')!.body);
    expect(exchange.get('grant_type')).toBe('authorization_code');
    expect(exchange.get('client_id')).toBe('fake-client');
    expect(exchange.get('redirect_uri')).toBe(authorize.query.redirect_uri);
    expect(exchange.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.query.redirect_uri).toMatch(/^http:\/\/localhost:\d+\/callback$/);
  });

  it('--login-link reports the URL and does not open a browser or wait for Enter', async () => {
    let link = '';
    const h = harness({
      onProgress: (e) => {
        if (e.type === 'login-link') {
          link = e.url;
          void fetchBrowser(e.url);
        }
      },
    });
    await loginToAstro({ domain: 'localhost', config: await loadConfig(), loginLink: true, callbackPort: 0 }, h.ports);
    expect(link).toContain(`${fake.url}/auth/authorize?`);
    expect(h.calls).toEqual([]);
  });

  it('reports the URL when the browser cannot be opened, and still completes when the user visits it', async () => {
    const h = harness({
      openBrowser: async () => {
        throw new Error('no browser here');
      },
      onProgress: (e) => {
        if (e.type === 'browser-open-failed') void fetchBrowser(e.url);
      },
    });
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0 }, h.ports);
    expect(result.email).toBe('ada@example.com');
  });

  it('fails with "Could not authorize your device" when the user denies, saving nothing', async () => {
    fake.authorizeMode = 'deny';
    const h = harness();
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0 }, h.ports).catch((e: unknown) => e);
    expect((error as Error).message).toBe('Could not authorize your device: access_denied: User did not authorize the request');
    expect((await loadConfig()).context('localhost')).toBeUndefined();
  });

  it('times out with "the operation has timed out" when no callback arrives', async () => {
    const h = harness({ openBrowser: async () => {} });
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0, callbackTimeoutMs: 200 }, h.ports).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('the operation has timed out');
    expect(fake.count('POST', '/auth/oauth/token')).toBe(0);
  });

  it('ignores a callback that does not carry the state it sent (it times out instead of using the code)', async () => {
    fake.authorizeMode = 'drop-state';
    const h = harness();
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0, callbackTimeoutMs: 500 }, h.ports).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('the operation has timed out');
    expect(fake.count('POST', '/auth/oauth/token')).toBe(0);
  });

  it('refuses a Software domain with the message Astronomer users know', async () => {
    const error = await loginToAstro({ domain: 'software.example.com', config: await loadConfig() }, harness().ports).catch((e: unknown) => e);
    expect((error as Error).message).toContain('Error! Invalid domain. You are attempting to login into Astro.');
  });
});

describe('token login', () => {
  it('stores the given token for one hour without a refresh token, still reading userinfo and the organization', async () => {
    const token = fake.issueAccessToken();
    const h = harness();
    const before = Date.now();
    await loginToAstro({ domain: 'localhost', config: await loadConfig(), token }, h.ports);
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.token).toBe(`Bearer ${token}`);
    expect(ctx.refreshtoken).toBe('');
    expect(new Date(String(ctx.expiresin)).getTime()).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(new Date(String(ctx.expiresin)).getTime()).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
    expect(h.calls).toEqual([]);
    expect(h.secrets).toContain(token);
    expect(h.events[1]).toEqual({ type: 'token-login' });
    expect(fake.count('GET', '/auth/userinfo')).toBe(1);
    expect(fake.count('GET', '/auth/authorize')).toBe(0);
  });

  it('accepts a token pasted with its "Bearer " prefix', async () => {
    const token = fake.issueAccessToken();
    await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: `Bearer ${token}` }, harness().ports);
    expect((await loadConfig()).context('localhost')!.token).toBe(`Bearer ${token}`);
  });

  it('fails on a token the platform does not accept, without saving it', async () => {
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: 'not-a-valid-token' }, harness().ports).catch((e: unknown) => e);
    expect((error as Error).message).toContain('cannot retrieve userinfo');
    expect((await loadConfig()).context('localhost')).toBeUndefined();
  });
});

describe('organization choice', () => {
  it('reuses the saved organization when it still exists', async () => {
    fake.organizations.push({ id: 'org-2', name: 'Nebula', product: 'HYBRID' });
    fake.workspaces.push({ id: 'ws-n', name: 'Ops', organizationId: 'org-2' });
    await writeConfig({ context: 'localhost', contexts: { localhost: { domain: 'localhost', organization: 'org-2' } } });
    const h = harness();
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, h.ports);
    expect(result.organization).toEqual({ id: 'org-2', name: 'Nebula', product: 'HYBRID' });
    expect(fake.count('GET', '/v1/organizations')).toBe(0);
  });

  it('falls back to the list when the saved organization is gone (404)', async () => {
    await writeConfig({ contexts: { localhost: { domain: 'localhost', organization: 'org-gone', workspace: 'ws-old', last_used_workspace: 'ws-old' } } });
    const h = harness();
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, h.ports);
    expect(result.organization?.id).toBe('org-1');
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.workspace).toBe('ws-1');
    expect(ctx.last_used_workspace).toBe('ws-1');
  });

  it('says "no organization found" when the user belongs to none', async () => {
    fake.organizations = [];
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, harness().ports).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('no organization found. Please contact your Astro Organization Owner to be invited to the organization');
  });

  it('asks the chooser when there are several, and fails with needs-input when it cannot ask', async () => {
    fake.organizations.push({ id: 'org-2', name: 'Nebula' });
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, harness().ports).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NeedsInputError);
    expect((error as NeedsInputError).missing).toEqual(['--organization-id']);
    // The credentials are kept: rerunning with the flag is enough to finish.
    expect((await loadConfig()).context('localhost')?.user_email).toBe('ada@example.com');

    const h = harness({ chooseOrganization: async (orgs) => orgs.find((o) => o.id === 'org-2')! });
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, h.ports);
    expect(result.organization).toEqual({ id: 'org-2', name: 'Nebula', product: 'HYBRID' });
    expect(result.workspace).toBeUndefined();
    expect(h.events.at(-1)?.type).toBe('no-workspace');
  });

  it('--organization-id picks the organization directly and refuses an unknown one', async () => {
    fake.organizations.push({ id: 'org-2', name: 'Nebula', product: 'HYBRID' });
    const ok = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken(), organizationId: 'org-2' },
      harness().ports,
    );
    expect(ok.organization?.id).toBe('org-2');
    const error = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken(), organizationId: 'org-x' },
      harness().ports,
    ).catch((e: unknown) => e);
    expect((error as UserError).message).toContain('Organization org-x does not exist');
  });
});

describe('workspace choice', () => {
  beforeEach(() => {
    fake.workspaces.push({ id: 'ws-2', name: 'Analytics', organizationId: 'org-1' });
  });

  it('fails with needs-input naming --workspace-id when several and it cannot ask', async () => {
    const error = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, harness().ports).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NeedsInputError);
    expect((error as NeedsInputError).missing).toEqual(['--workspace-id']);
  });

  it('reuses the last used workspace when it is still there', async () => {
    await writeConfig({ contexts: { localhost: { domain: 'localhost', organization: 'org-1', last_used_workspace: 'ws-2' } } });
    const h = harness();
    const result = await loginToAstro({ domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() }, h.ports);
    expect(result.workspace).toEqual({ id: 'ws-2', name: 'Analytics' });
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'workspace-selected', how: 'last-used' }));
  });

  it('uses the chooser, or --workspace-id, and refuses a workspace of another organization', async () => {
    const chosen = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken() },
      harness({ chooseWorkspace: async (list) => list[1]! }).ports,
    );
    expect(chosen.workspace?.id).toBe('ws-2');
    const byFlag = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken(), workspaceId: 'ws-1' },
      harness().ports,
    );
    expect(byFlag.workspace?.id).toBe('ws-1');
    expect((await loadConfig()).context('localhost')?.last_used_workspace).toBe('ws-1');
    const error = await loginToAstro(
      { domain: 'localhost', config: await loadConfig(), token: fake.issueAccessToken(), workspaceId: 'ws-elsewhere' },
      harness().ports,
    ).catch((e: unknown) => e);
    expect((error as UserError).message).toContain('Workspace ws-elsewhere is not in this organization');
  });
});

describe('logout', () => {
  it('clears the credentials and email of the current context, unsets the current context, keeps organization and workspace', async () => {
    await loginToAstro({ domain: 'localhost', config: await loadConfig(), callbackPort: 0 }, harness().ports);
    expect((await loadConfig()).currentDomain()).toBe('localhost');
    const result = await logout(await loadConfig(), undefined);
    expect(result.domain).toBe('localhost');
    const after = await loadConfig();
    expect(after.currentDomain()).toBe('');
    const ctx = after.context('localhost')!;
    expect(ctx.token).toBe('');
    expect(ctx.refreshtoken).toBe('');
    expect(ctx.user_email).toBe('');
    expect(ctx.expiresin).toBeUndefined();
    expect(ctx.organization).toBe('org-1');
    expect(ctx.workspace).toBe('ws-1');
  });

  it('logs out of a named domain (cloud. forms included) and refuses an unknown one', async () => {
    await writeConfig({
      context: 'localhost',
      contexts: {
        localhost: { domain: 'localhost', token: 'Bearer a.b.c' },
        astronomer_io: { domain: 'astronomer.io', token: 'Bearer d.e.f', refreshtoken: 'r' },
      },
    });
    await logout(await loadConfig(), 'https://cloud.astronomer.io/');
    const config = await loadConfig();
    expect(config.context('astronomer.io')!.token).toBe('');
    expect(config.context('localhost')!.token).toBe('Bearer a.b.c');
    // Logging out of another context leaves the current one current (Astronomer's CLI unsets it anyway).
    expect(config.currentDomain()).toBe('localhost');
    await expect(logout(config, 'nowhere.example.com')).rejects.toThrow('There is no context for "nowhere.example.com"');
  });
});
