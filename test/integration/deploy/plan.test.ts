// The deploy plan end to end against the local platform: an unchanged project is not deployed again (from a fresh
// ASTRO_HOME and a fresh copy of the project, so only what the platform kept can tell), a DAG change alone becomes a
// DAG_ONLY deploy, anything else a full one, and --dry-run sends nothing that changes the platform.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';
import { connectionOrigin } from '../../../src/util/preconnect.js';

const DAG_ON = 'cldepdagon000000000000000';
const DAG_OFF = 'cldepdagoff00000000000000';
let stack: Stack;
const temps: string[] = [];

interface LoggedRequest {
  listener: string;
  method: string;
  path: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string | string[]>;
  body?: unknown;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** A fresh copy of the example project: new paths, new mtimes, nothing carried over from an earlier copy. */
async function project(): Promise<string> {
  const dir = await tempDir('astro-plan-project-');
  await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
  return dir;
}

/** A fresh ASTRO_HOME (config and caches): nothing a previous run left on this machine. */
async function freshHome(): Promise<string> {
  const home = await tempDir('astro-plan-home-');
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
  return home;
}

async function deploy(argv: string[], cwd: string, reuseHome?: string) {
  const home = reuseHome ?? (await freshHome());
  const token = stack.tokens.apiTokens.find((x) => x.id === 'cltokwsdataplatform000000')!.token;
  return runCli(['deploy', ...argv], {
    cwd,
    env: {
      ASTRO_HOME: home,
      ASTRO_API_TOKEN: token,
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(home, 'cache'),
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
    },
  });
}

async function mark(): Promise<number> {
  return ((await (await fetch(`${stack.endpoints.platform.url}/_platform/requests?path=/nothing`)).json()) as { lastSeq: number }).lastSeq;
}

async function requestsSince(seq: number): Promise<LoggedRequest[]> {
  return ((await (await fetch(`${stack.endpoints.platform.url}/_platform/requests?since=${seq}`)).json()) as { requests: LoggedRequest[] }).requests;
}

async function state(): Promise<{ deploys: { id: string; deploymentId: string; description: string }[]; registryPushes: unknown[] }> {
  return (await (await fetch(`${stack.endpoints.platform.url}/_platform/state`)).json()) as never;
}

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Ada',
  GIT_AUTHOR_EMAIL: 'ada@example.com',
  GIT_COMMITTER_NAME: 'Ada',
  GIT_COMMITTER_EMAIL: 'ada@example.com',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: gitEnv }).toString().trim();

/** Requests that change something. The registry's notifications of reads (pull events it posts itself) are not. */
const writes = (requests: LoggedRequest[]) =>
  requests.filter((r) => {
    if (['GET', 'HEAD'].includes(r.method)) return false;
    const events = r.path === '/registry/events' ? (r.body as { events?: { action?: string }[] } | undefined)?.events : undefined;
    return !(events && events.length > 0 && events.every((e) => e.action === 'pull'));
  });

beforeAll(async () => {
  stack = await startStack({ ports: 0, healthDelayMs: 300 });
});

afterAll(async () => {
  await stack?.stop();
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

describe('the deploy plan', () => {
  let firstDeployId: string;

  it('records the content digests of a full deploy with the deploy, where any machine reads them back', async () => {
    const run = await deploy([DAG_ON, '--json', '--description', 'plan e2e'], await project());
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ type: 'IMAGE_AND_DAG', plan: { image: { state: 'unknown' }, decision: { action: 'deploy' } } });
    firstDeployId = doc.deployId;
    const record = (await state()).deploys.find((d) => d.id === firstDeployId)!;
    expect(record.description).toMatch(/^plan e2e\n\nastro-content: image=[0-9a-f]{32} dags=[0-9a-f]{32}$/);
    expect(record.description).toContain(doc.plan.local.image.digest.slice(0, 32));
    expect(record.description).toContain(doc.plan.local.dags.digest.slice(0, 32));
  });

  it('--dry-run of the unchanged project prints the no-op plan and sends only reads', async () => {
    const dir = await project();
    const since = await mark();
    const run = await deploy([DAG_ON, '--dry-run', '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({
      dryRun: true,
      plan: { decision: { action: 'noop' }, image: { state: 'unchanged', basis: 'content' }, dags: { state: 'unchanged' } },
    });
    // What runs now, down to the registry's digest of the running image.
    const recorded = ((await state()).deploys as unknown as { id: string; imageDigest?: string }[]).find((d) => d.id === firstDeployId)!;
    expect(doc.plan.deployed.image).toMatchObject({ deployId: firstDeployId, imageDigest: recorded.imageDigest, recordedIn: 'description' });
    expect(doc.plan.steps.map((s: { phase: string; action: string }) => `${s.phase}:${s.action}`)).toEqual([
      'select:run',
      'parse:skip',
      'build:skip',
      'push:skip',
      'upload:skip',
      'finalize:skip',
    ]);
    const requests = await requestsSince(since);
    expect(requests.length).toBeGreaterThan(0);
    expect(writes(requests)).toEqual([]);
    expect(requests.filter((r) => r.listener === 'blob-proxy')).toEqual([]);
    // The registry is only read: a pull token, never a push one.
    const scopes = requests.filter((r) => r.path === '/registry/token').map((r) => String(r.query?.scope));
    expect(scopes.length).toBeGreaterThan(0);
    expect(
      scopes.every((scope) => scope.endsWith(':pull')),
      scopes.join(' '),
    ).toBe(true);

    const human = await deploy([DAG_ON, '--dry-run'], dir);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/no deploy \(nothing changed\)/);
    expect(human.stdout).toMatch(/build\s+skip/);
  });

  it('an unchanged project redeploys as a no-op from a fresh ASTRO_HOME and a fresh copy: nothing created, pushed or uploaded', async () => {
    const before = await state();
    const since = await mark();
    const run = await deploy([DAG_ON, '--json'], await project());
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ noop: true, deploymentId: DAG_ON, deployId: firstDeployId });
    const after = await state();
    expect(after.deploys.length).toBe(before.deploys.length);
    expect(after.registryPushes.length).toBe(before.registryPushes.length);
    const requests = await requestsSince(since);
    expect(writes(requests)).toEqual([]);
    expect(requests.filter((r) => r.listener === 'blob-proxy')).toEqual([]);
    expect(requests.filter((r) => r.path.startsWith('/registry/'))).toEqual([]);

    const human = await deploy([DAG_ON], await project());
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`Deployment \\S+ already runs this project \\(deploy ${firstDeployId}, \\d{4}-`));
  });

  it('touching one DAG gives a DAG_ONLY deploy without --dags, said in one line', async () => {
    const dir = await project();
    await fs.appendFile(path.join(dir, 'dags', 'example_etl.py'), '\n# touched\n');
    const run = await deploy([DAG_ON, '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ type: 'DAG_ONLY', plan: { decision: { automatic: true }, image: { state: 'unchanged' }, dags: { state: 'changed' } } });
    expect(doc.timings.build).toBeUndefined();
    expect(doc.image).toBeUndefined();
    expect(run.stderr.split('\n').filter((l) => l.includes('Only DAGs changed'))).toHaveLength(1);

    // The DAG-only deploy recorded its bundle: the same project is now a no-op, and its image is still traced.
    const again = await deploy([DAG_ON, '--json'], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ noop: true, deployId: doc.deployId });
  });

  it('a DAG-only redeploy of a DAGs folder nobody wrote to ships the bundle this machine made of it; an edit is bundled anew', async () => {
    const dir = await project();
    const home = await freshHome();
    // Files written in the last seconds are never trusted to be as a bundle found them (bundle/tarball.ts SETTLED_MS).
    await new Promise((resolve) => setTimeout(resolve, 3_100));
    const reusedLine = /No file in the DAGs folder changed since this machine bundled it/;
    const first = await deploy([DAG_ON, '--dags', '--json'], dir, home);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(reusedLine);
    expect(await fs.readdir(path.join(home, 'cache', 'dag-bundles'))).toHaveLength(1);

    const second = await deploy([DAG_ON, '--dags', '--json'], dir, home);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(reusedLine);
    const [a, b] = [JSON.parse(first.stdout), JSON.parse(second.stdout)];
    expect(b.plan.local.dags).toEqual(a.plan.local.dags);
    const deploys = (await state()).deploys;
    expect(deploys.find((d) => d.id === b.deployId)!.description).toBe(deploys.find((d) => d.id === a.deployId)!.description);

    await fs.appendFile(path.join(dir, 'dags', 'example_etl.py'), '\n# edited\n');
    const third = await deploy([DAG_ON, '--dags', '--json'], dir, home);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).not.toMatch(reusedLine);
    expect(JSON.parse(third.stdout).plan.local.dags.digest).not.toBe(a.plan.local.dags.digest);
    // --no-cache bundles the files again.
    const fresh = await deploy([DAG_ON, '--dags', '--no-cache', '--json'], dir, home);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).not.toMatch(reusedLine);
  });

  it('touching requirements.txt gives IMAGE_AND_DAG; explicit --dags still wins, --force deploys an unchanged project', async () => {
    const dir = await project();
    await fs.appendFile(path.join(dir, 'dags', 'example_etl.py'), '\n# touched\n');
    await fs.appendFile(path.join(dir, 'requirements.txt'), '# touched\n');
    const run = await deploy([DAG_ON, '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ type: 'IMAGE_AND_DAG', plan: { image: { state: 'changed', basis: 'content' } } });

    const dags = await deploy([DAG_ON, '--dags', '--json'], dir);
    expect(dags.code, dags.stderr).toBe(0);
    expect(JSON.parse(dags.stdout)).toMatchObject({ type: 'DAG_ONLY' });

    const forced = await deploy([DAG_ON, '--force', '--json'], dir);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ type: 'IMAGE_AND_DAG', plan: { decision: { why: expect.stringContaining('--force') } } });
  });

  it('with DAG deploys off the DAGs are part of the image: a DAG change is a full deploy', async () => {
    const dir = await project();
    const first = await deploy([DAG_OFF, '--json'], dir);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse((await deploy([DAG_OFF, '--json'], dir)).stdout)).toMatchObject({ noop: true });
    await fs.appendFile(path.join(dir, 'dags', 'example_etl.py'), '\n# touched\n');
    const run = await deploy([DAG_OFF, '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ type: 'IMAGE_AND_DAG', plan: { image: { state: 'changed' } } });
  });

  it('goes by git history when the deploy kept a commit but no digests: a fresh clone of an unchanged repository is a no-op', async () => {
    // A repository with the project, cloned fresh: its origin makes the CLI record git metadata with the deploy.
    const origin = await project();
    git(origin, 'init', '-q', '-b', 'main');
    git(origin, 'add', '-A');
    git(origin, 'commit', '-qm', 'Example project');
    const clone = await tempDir('astro-plan-clone-');
    git(clone, 'clone', '-q', origin, '.');
    const first = await deploy([DAG_ON, '--json'], clone);
    expect(first.code, first.stderr).toBe(0);
    const deployId = JSON.parse(first.stdout).deployId as string;
    const token = stack.tokens.apiTokens.find((x) => x.id === 'cltokwsdataplatform000000')!.token;
    const deployUrl = `${stack.endpoints.platform.url}/v1/organizations/${stack.platform.organizationOf(stack.platform.seed.deployments.find((d) => d.id === DAG_ON)!)}/deployments/${DAG_ON}/deploys/${deployId}`;
    const record = (await (await fetch(deployUrl, { headers: { authorization: `Bearer ${token}` } })).json()) as { git?: { commitSha: string } };
    expect(record.git?.commitSha).toBe(git(clone, 'rev-parse', 'HEAD'));
    // Someone rewrites the description in the UI: the digests are gone, the commit stays.
    const edited = await fetch(deployUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'reviewed' }),
    });
    expect(edited.status).toBe(200);

    const fresh = await tempDir('astro-plan-clone-');
    git(fresh, 'clone', '-q', origin, '.');
    const dry = await deploy([DAG_ON, '--dry-run', '--json'], fresh);
    expect(dry.code, dry.stderr).toBe(0);
    // The bundle goes by git; the image by the inputs label of the running image, which no description edit removes.
    expect(JSON.parse(dry.stdout).plan).toMatchObject({
      decision: { action: 'noop' },
      image: { basis: 'content', state: 'unchanged' },
      deployed: { image: { recordedIn: 'image label' } },
      dags: { basis: 'git', state: 'unchanged' },
    });

    await fs.appendFile(path.join(fresh, 'dags', 'example_etl.py'), '\n# touched\n');
    git(fresh, 'commit', '-qam', 'Touch a DAG');
    const run = await deploy([DAG_ON, '--json'], fresh);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      type: 'DAG_ONLY',
      plan: { image: { state: 'unchanged' }, dags: { basis: 'git', state: 'changed', files: ['dags/example_etl.py'] } },
    });
  });

  /** Rewrites a deploy's description, as a deploy by another tool would have it: no digests of ours. */
  async function forgetDigests(deployId: string): Promise<void> {
    const token = stack.tokens.apiTokens.find((x) => x.id === 'cltokwsdataplatform000000')!.token;
    const org = stack.platform.organizationOf(stack.platform.seed.deployments.find((d) => d.id === DAG_OFF)!);
    const edited = await fetch(`${stack.endpoints.platform.url}/v1/organizations/${org}/deployments/${DAG_OFF}/deploys/${deployId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'edited by hand' }),
    });
    expect(edited.status).toBe(200);
  }

  it("reads the image inputs digest from the running image's label when the description lost it and there is no git", async () => {
    const dir = await project();
    await fs.writeFile(path.join(dir, 'include', 'label.txt'), 'a change of its own\n');
    const first = await deploy([DAG_OFF, '--json'], dir);
    expect(first.code, first.stderr).toBe(0);
    await forgetDigests(JSON.parse(first.stdout).deployId as string);
    const run = await deploy([DAG_OFF, '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      noop: true,
      plan: { image: { basis: 'content', state: 'unchanged' }, deployed: { image: { recordedIn: 'image label' } } },
    });
  });

  it("remembers where a Deployment's registry was read (its origin only) and reads it again through the connection opened early", async () => {
    const dir = await project();
    await fs.writeFile(path.join(dir, 'include', 'origin.txt'), 'another change of its own\n');
    const home = await freshHome();
    const first = await deploy([DAG_OFF, '--json'], dir, home);
    expect(first.code, first.stderr).toBe(0);
    const deployed = JSON.parse(first.stdout) as { deployId: string; image: { repository: string } };
    await forgetDigests(deployed.deployId);
    const file = path.join(home, 'cache', 'registry-origins.json');
    // This plan reads the registry: where it went is kept, as scheme, host and port, nothing else.
    const second = await deploy([DAG_OFF, '--json'], dir, home);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ noop: true, plan: { deployed: { image: { recordedIn: 'image label' } } } });
    const host = deployed.image.repository.split('/')[0]!;
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual({ [DAG_OFF]: `http://${host}` });
    // The next plan opens that connection while the deploy list is asked for, and reads the same answer through it.
    const third = await deploy([DAG_OFF, '--json'], dir, home);
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout)).toMatchObject({ noop: true, plan: { deployed: { image: { recordedIn: 'image label' } } } });
  });

  it("pushes with a registry token of its own once the registry's realm is known: the engine asks the realm for nothing", async () => {
    const dir = await project();
    await fs.writeFile(path.join(dir, 'include', 'token.txt'), 'a change for this test\n');
    const home = await freshHome();
    const first = await deploy([DAG_OFF, '--json'], dir, home);
    expect(first.code, first.stderr).toBe(0);
    // A plan that reads the registry (the digests forgotten, as after another tool's deploy) learns its realm.
    await forgetDigests((JSON.parse(first.stdout) as { deployId: string }).deployId);
    expect((await deploy([DAG_OFF, '--json'], dir, home)).code).toBe(0);
    await fs.writeFile(path.join(dir, 'include', 'token.txt'), 'another change\n');
    const since = await mark();
    const shipped = await deploy([DAG_OFF, '--json'], dir, home);
    expect(shipped.code, shipped.stderr).toBe(0);
    const doc = JSON.parse(shipped.stdout) as { type: string; image: { repository: string; digest: string } };
    expect(doc).toMatchObject({ type: 'IMAGE_AND_DAG', image: { digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) } });
    const tokens = (await requestsSince(since)).filter((r) => r.path === '/registry/token');
    const name = doc.image.repository.slice(doc.image.repository.indexOf('/') + 1);
    // The plan's own read (pull) and the push's token (pull,push), both astro's; none of the engine's.
    expect(tokens.map((r) => r.query?.scope)).toEqual([`repository:${name}:pull`, `repository:${name}:pull,push`]);
    for (const request of tokens) expect(String(request.headers?.['user-agent'] ?? '')).not.toMatch(/docker/i);
  });

  it("remembers the API's origin under the config home, and the next deploy connects there as it starts", async () => {
    const dir = await project();
    const home = await freshHome();
    const file = path.join(home, 'cache', 'api-origins.json');
    const first = await deploy([DAG_ON, '--dags', '--json'], dir, home);
    expect(first.code, first.stderr).toBe(0);
    // Only the origin (scheme, host and port), under the config home it was used from.
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual({ [path.resolve(home)]: connectionOrigin(stack.endpoints.platform.url) });
    const second = await deploy([DAG_ON, '--dags', '--json'], dir, home);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ type: 'DAG_ONLY', status: 'DEPLOYING' });
  });
});
