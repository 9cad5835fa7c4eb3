import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AstroConfig, configPaths } from '../../../../src/config/store.js';
import { runCli, type CliRun } from '../../../helpers/cli.js';
import { FakePlatform, fetchBrowser } from '../../auth/fake-platform.js';
import { startCli } from '../../auth/live-cli.js';

let home: string;
let fake: FakePlatform;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-login-cli-'));
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

const env = (extra: Record<string, string> = {}) => ({ ASTRO_HOME: home, ...extra });
const loadConfig = () => AstroConfig.load(configPaths(home, home));

/** Every token the platform issued or accepted, and every password used, must never be printed. */
function expectNoSecrets(run: CliRun, extra: string[] = []): void {
  const secrets = [...fake.validTokens, ...fake.refreshTokens.keys(), ...fake.houston.tokens, ...fake.houston.users.values(), ...extra];
  expect(secrets.length).toBeGreaterThan(0);
  for (const secret of secrets) {
    expect(run.stdout).not.toContain(secret);
    expect(run.stderr).not.toContain(secret);
  }
}

describe('astro login (Astro)', () => {
  it.each([[[]], [['--verbose']], [['--json']]])('--login-link %j: prints the URL, receives the callback, saves the context', async (extra) => {
    const cli = startCli(['login', 'localhost', '--login-link', ...extra], { env: env() });
    const [, url] = await cli.stderrMatch(/Please visit the following link on a device with a browser: (\S+)/);
    expect(url).toContain(`${fake.url}/auth/authorize?`);
    await fetchBrowser(url!);
    const run = await cli.done;

    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Welcome to the Astro CLI 🚀');
    expect(run.stderr).toContain('Logging in as ada@example.com');
    expect(run.stderr).toContain('"Data Platform" Workspace found. This is your default Workspace.');
    if (extra.includes('--json')) {
      expect(JSON.parse(run.stdout)).toMatchObject({ loggedIn: true, domain: 'localhost', organization: { id: 'org-1' }, workspace: { id: 'ws-1' } });
    } else {
      expect(run.stdout).toBe('Successfully authenticated to Astronomer\n');
    }
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.token).toBe(`Bearer ${fake.issued[0]!.accessToken}`);
    expectNoSecrets(run);
  });

  it('--token-login stores the token, says it will not refresh, and never prints it (even with --verbose)', async () => {
    const token = fake.issueAccessToken();
    const run = await runCli(['login', 'localhost', '--token-login', token, '--verbose'], { env: env() });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('You are logging into Astro via an OAuth token\nThis token will expire in 1 hour and will not refresh');
    expect((await loadConfig()).context('localhost')!.token).toBe(`Bearer ${token}`);
    expectNoSecrets(run);
  });

  it('a refused token fails with exit 1 and the token is not echoed in the error', async () => {
    const bad = 'definitely-not-a-valid-token-1234567890';
    const run = await runCli(['login', 'localhost', '-t', bad, '--verbose'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: cannot retrieve userinfo');
    expectNoSecrets(run, [bad]);
  });

  it('without a terminal, several workspaces give exit 4 naming --workspace-id (also in --json)', async () => {
    fake.workspaces.push({ id: 'ws-2', name: 'Analytics', organizationId: 'org-1' });
    const run = await runCli(['login', 'localhost', '-t', fake.issueAccessToken(), '--json'], { env: env() });
    expect(run.code).toBe(4);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { kind: 'needs-input', missingFlags: ['--workspace-id'] } });
    expect(run.stderr).toContain('no terminal');
    expectNoSecrets(run);

    const rerun = await runCli(['login', 'localhost', '-t', fake.issueAccessToken(), '--workspace-id', 'ws-2'], { env: env() });
    expect(rerun.code).toBe(0);
    expect((await loadConfig()).context('localhost')!.workspace).toBe('ws-2');
  });

  it('on a terminal, several organizations and workspaces are prompted for', async () => {
    fake.organizations.push({ id: 'org-2', name: 'Nebula', product: 'HYBRID' });
    fake.workspaces.push({ id: 'ws-a', name: 'Alpha', organizationId: 'org-2' }, { id: 'ws-b', name: 'Beta', organizationId: 'org-2' });
    const cli = startCli(['login', 'localhost', '-t', fake.issueAccessToken()], { env: env(), tty: true });
    await cli.stderrMatch(/Please choose an organization:[\s\S]*> $/);
    cli.type('2\n');
    await cli.stderrMatch(/Please choose a workspace:[\s\S]*Beta[\s\S]*> $/);
    cli.type('2\n');
    const run = await cli.done;
    expect(run.code).toBe(0);
    const ctx = (await loadConfig()).context('localhost')!;
    expect(ctx.organization).toBe('org-2');
    expect(ctx.organization_product).toBe('HYBRID');
    expect(ctx.workspace).toBe('ws-b');
    expectNoSecrets(run);
  });
});

describe('astro login (Astronomer Software)', () => {
  it('username + --password-stdin: createToken, raw token stored, password and token never printed', async () => {
    const run = await runCli(['login', 'houston', '-u', 'ada@example.com', '--password-stdin', '--workspace-id', 'sw-2', '--verbose'], {
      env: env(),
      input: 'ada-password\n',
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('Successfully authenticated to Astronomer\n');
    const config = await loadConfig();
    expect(config.currentDomain()).toBe('houston');
    const ctx = config.context('houston')!;
    expect([...fake.houston.tokens]).toContain(ctx.token);
    expect(ctx.token).not.toMatch(/^Bearer/);
    expect(ctx.workspace).toBe('sw-2');
    const mutation = fake.requests.find((r) => r.body?.includes('createToken'))!;
    expect(JSON.parse(mutation.body!).variables).toEqual({ identity: 'ada@example.com', password: 'ada-password' });
    expectNoSecrets(run);
  });

  it('a wrong password fails with "local auth login failed" and does not print the password', async () => {
    const run = await runCli(['login', 'houston', '-u', 'ada@example.com', '--password-stdin', '--verbose'], {
      env: env(),
      input: 'wrong-password-123\n',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: local auth login failed: Invalid password and username combination');
    expectNoSecrets(run, ['wrong-password-123']);
  });

  it('without a terminal and without flags it fails with exit 4 naming the flags', async () => {
    const run = await runCli(['login', 'houston'], { env: env() });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('--username');
    expect(run.stderr).toContain('--token-login');
    expectNoSecrets(run);
  });

  it('on a terminal it asks for username and password, then the workspace', async () => {
    const cli = startCli(['login', 'houston'], { env: env(), tty: true });
    await cli.stderrMatch(/Username \(leave blank for oAuth\): $/);
    cli.type('ada@example.com\n');
    await cli.stderrMatch(/Password: $/);
    cli.type('ada-password\n');
    await cli.stderrMatch(/Please choose a workspace:[\s\S]*> $/);
    cli.type('1\n');
    const run = await cli.done;
    expect(run.code).toBe(0);
    expect((await loadConfig()).context('houston')!.workspace).toBe('sw-1');
    expect(run.stderr).toContain('Logging in as ada@example.com');
    expectNoSecrets(run);
  });

  it('on a real terminal the password is read in raw mode (not echoed), with backspace handled', async () => {
    fake.houston.workspaces = [{ id: 'sw-1', label: 'Software A' }];
    const cli = startCli(['login', 'houston', '-u', 'ada@example.com'], { env: env(), tty: true, rawMode: true });
    await cli.stderrMatch(/Password: $/);
    cli.type('ada-passwoX\u007frd\r');
    const run = await cli.done;
    expect(run.code).toBe(0);
    expect(cli.rawModeCalls).toEqual([true, false]);
    expect(run.stderr).not.toContain('ada-passwo');
    expect(JSON.parse(fake.requests.find((r) => r.body?.includes('createToken'))!.body!).variables.password).toBe('ada-password');
  });

  it('^C at the password prompt interrupts the login (exit 130) and restores the terminal', async () => {
    const cli = startCli(['login', 'houston', '-u', 'ada@example.com'], { env: env(), tty: true, rawMode: true });
    await cli.stderrMatch(/Password: $/);
    cli.type('ada\u0003');
    const run = await cli.done;
    expect(run.code).toBe(130);
    expect(cli.rawModeCalls).toEqual([true, false]);
    expect(fake.requests.some((r) => r.body?.includes('createToken'))).toBe(false);
    expectNoSecrets(run);
  });

  it('--oauth shows where to get a token and reads it from the prompt', async () => {
    fake.houston.tokens.add('houston-oauth-token-abcdef');
    fake.houston.workspaces = [{ id: 'sw-1', label: 'Software A' }];
    const cli = startCli(['login', 'houston', '--oauth'], { env: env(), tty: true });
    await cli.stderrMatch(/oAuth Token: $/);
    cli.type('houston-oauth-token-abcdef\n');
    const run = await cli.done;
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Please visit the following URL, authenticate and paste token in next prompt\nhttps://app.houston/token');
    expect(run.stderr).toContain('"Software A" Workspace found. This is your default Workspace.');
    expect((await loadConfig()).context('houston')!.token).toBe('houston-oauth-token-abcdef');
    expectNoSecrets(run);
  });

  it('--token-login stores a Houston token after checking it works', async () => {
    fake.houston.tokens.add('houston-given-token-123456');
    const run = await runCli(['login', 'houston', '-t', 'houston-given-token-123456', '--workspace-id', 'sw-1'], { env: env() });
    expect(run.code).toBe(0);
    expect((await loadConfig()).context('houston')!.token).toBe('houston-given-token-123456');
    expectNoSecrets(run);

    const refused = await runCli(['login', 'houston', '-t', 'houston-unknown-token-99'], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Your token has expired. Please log in again');
    expectNoSecrets(refused, ['houston-unknown-token-99']);
  });

  it('says when basic authentication is disabled', async () => {
    fake.houston.localEnabled = false;
    const run = await runCli(['login', 'houston', '-u', 'ada@example.com', '--password-stdin'], { env: env(), input: 'ada-password\n' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Basic authentication is disabled');
    expectNoSecrets(run);
  });
});

describe('astro logout and contexts', () => {
  it('logs out, switches and lists contexts across an Astro and a Software login', async () => {
    expect((await runCli(['login', 'localhost', '-t', fake.issueAccessToken()], { env: env() })).code).toBe(0);
    fake.houston.tokens.add('houston-given-token-123456');
    expect((await runCli(['login', 'houston', '-t', 'houston-given-token-123456', '--workspace-id', 'sw-1'], { env: env() })).code).toBe(0);

    const list = await runCli(['context', 'list'], { env: env() });
    expect(list.stdout).toContain('  localhost  (ada@example.com)');
    expect(list.stdout).toContain('* houston');

    const switched = await runCli(['context', 'switch', 'localhost'], { env: env() });
    expect(switched.code).toBe(0);
    expect((await loadConfig()).currentDomain()).toBe('localhost');

    const out = await runCli(['logout'], { env: env() });
    expect(out.code).toBe(0);
    expect(out.stdout).toBe('Successfully logged out of Astronomer\n');
    const config = await loadConfig();
    expect(config.context('localhost')!.token).toBe('');
    expect(config.context('houston')!.token).toBe('houston-given-token-123456');

    const outSoftware = await runCli(['logout', 'houston'], { env: env() });
    expect(outSoftware.code).toBe(0);
    expect((await loadConfig()).context('houston')!.token).toBe('');

    const unknown = await runCli(['logout', 'elsewhere.example.com'], { env: env() });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('There is no context for "elsewhere.example.com"');
    for (const run of [list, switched, out, outSoftware, unknown]) expectNoSecrets(run);
  });
});
