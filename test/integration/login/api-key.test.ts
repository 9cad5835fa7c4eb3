/**
 * ASTRONOMER_KEY_ID / ASTRONOMER_KEY_SECRET (deprecated Astro API keys) against the local platform: client
 * credentials at the auth-config's domainUrl, in Astronomer's precedence (API token, then key pair, then the
 * context), and the token never written to the config.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startStack, type Stack } from '../../platform/stack.js';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

let stack: Stack;
let stateDir: string;
let home: string;
let projectDir: string;

const ADA = 'clusrada00000000000000000';
const STELLAR = 'clorgstellar0000000000000';
const DATA_PLATFORM = 'clwksdataplatform00000000';
const DAG_ON = 'cldepdagon000000000000000';
const KEY_ID = 'key-dag-deploy-on';
const KEY_SECRET = 'secret-dag-deploy-on-0123456789';

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-key-stack-'));
  stack = await startStack({ stateDir, ports: 0, healthDelayMs: 100 });
  projectDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-key-project-'));
  await fs.cp(path.resolve('fixtures/example-project'), projectDir, { recursive: true });
});
afterAll(async () => {
  await stack?.stop();
  await fs.rm(stateDir, { recursive: true, force: true });
  await fs.rm(projectDir, { recursive: true, force: true });
});

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-key-home-'));
  await fs.mkdir(path.join(home, '.astro'));
  return () => fs.rm(home, { recursive: true, force: true });
});

const globalFile = () => path.join(home, '.astro', 'config.yaml');
const keyEnv = (extra: Record<string, string> = {}) => ({
  ASTRO_HOME: home,
  ASTRONOMER_KEY_ID: KEY_ID,
  ASTRONOMER_KEY_SECRET: KEY_SECRET,
  ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
  ASTRO_CACHE_DIR: path.join(home, 'cache'),
  ...extra,
});

/** A home with no context at all: only where the local platform answers. */
async function freshHome(): Promise<void> {
  await fs.writeFile(globalFile(), stringify({ local: { core: stack.endpoints.platform.url } }));
}

/** A home logged in as Ada (a user with other organizations and workspaces than the key's). */
async function loggedInHome(): Promise<void> {
  const token = stack.tokens.userAccessTokens.find((t) => t.userId === ADA)!.token;
  await fs.writeFile(
    globalFile(),
    stringify({
      local: { core: stack.endpoints.platform.url },
      context: 'localhost',
      contexts: {
        localhost: {
          domain: 'localhost',
          organization: 'clorgnebula00000000000000',
          workspace: 'clwksoperations0000000000',
          token: `Bearer ${token}`,
          refreshtoken: '',
          expiresin: new Date(Date.now() + 3600_000).toISOString(),
        },
      },
    }),
  );
}

async function recordedDeploys(): Promise<{ deploymentId: string; createdBy: string }[]> {
  const response = await fetch(`${stack.endpoints.platform.url}/_platform/state`);
  return ((await response.json()) as { deploys: { deploymentId: string; createdBy: string }[] }).deploys;
}

describe('an API key pair in the environment', () => {
  it("in a home with no context: lists the key's Deployment, says it uses a key, and saves nothing", async () => {
    await freshHome();
    const before = await fs.readFile(globalFile(), 'utf8');
    const run = await runCli(['deployment', 'list', '--json'], { env: keyEnv({ ASTRO_DOMAIN: 'localhost' }) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('Using an Astro API key');
    expect(run.stderr).toMatch(/API keys are deprecated/);
    const doc = JSON.parse(run.stdout) as { organizationId: string; workspaceId: string; deployments: { id: string }[] };
    expect(doc.organizationId).toBe(STELLAR);
    expect(doc.workspaceId).toBe(DATA_PLATFORM);
    expect(doc.deployments.map((d) => d.id)).toContain(DAG_ON);
    expect(await fs.readFile(globalFile(), 'utf8')).toBe(before);
    expect(run.stdout + run.stderr).not.toContain(KEY_SECRET);
  });

  it('in a logged-in home: the deploy is made as the key, not as the logged-in user, and the context is untouched', async () => {
    await loggedInHome();
    const before = await fs.readFile(globalFile(), 'utf8');
    const run = await runCli(['deploy', DAG_ON, '--dags', '--json'], { env: keyEnv(), cwd: projectDir });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ deploymentId: DAG_ON, type: 'DAG_ONLY' });
    expect((await recordedDeploys()).filter((d) => d.deploymentId === DAG_ON).at(-1)?.createdBy).toBe(`apiKey:${KEY_ID}`);
    expect(await fs.readFile(globalFile(), 'utf8')).toBe(before);
    expect(run.stdout + run.stderr).not.toContain(KEY_SECRET);
  });

  it("gives way to ASTRO_API_TOKEN, as in Astronomer's CLI", async () => {
    await loggedInHome();
    const apiToken = stack.tokens.apiTokens.find((t) => t.id === 'cltokorgnebula00000000000')!.token;
    const run = await runCli(['deployment', 'list', '--json'], { env: keyEnv({ ASTRO_API_TOKEN: apiToken }) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('Using an Astro API Token');
    expect(run.stderr).not.toContain('Using an Astro API key');
    expect((JSON.parse(run.stdout) as { organizationId: string }).organizationId).toBe('clorgnebula00000000000000');
  });

  it('a wrong secret fails with exit 1, naming the key and not the secret', async () => {
    await loggedInHome();
    const run = await runCli(['deployment', 'list'], { env: keyEnv({ ASTRONOMER_KEY_SECRET: 'wrong-secret-value-987654' }) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`The API key ${KEY_ID} could not be exchanged for a token at localhost`);
    expect(run.stderr).toContain('unknown client_id or wrong client_secret');
    expect(run.stderr).not.toContain('wrong-secret-value-987654');
  });

  it('only one half of the pair is ignored with a warning: the context is used', async () => {
    await loggedInHome();
    const run = await runCli(['deployment', 'list', '--json'], { env: { ASTRO_HOME: home, ASTRONOMER_KEY_ID: KEY_ID } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('ASTRONOMER_KEY_ID is set without ASTRONOMER_KEY_SECRET');
    expect((JSON.parse(run.stdout) as { organizationId: string }).organizationId).toBe('clorgnebula00000000000000');
    expect(parse(await fs.readFile(globalFile(), 'utf8')).contexts.localhost.organization).toBe('clorgnebula00000000000000');
  });
});
