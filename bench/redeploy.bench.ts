// An unchanged redeploy of the example project (the plan finds nothing to ship: no build, push, upload or deploy)
// against a full image deploy of the same project with a warm build cache (`--force`, which is what every deploy
// costs without a plan), both end to end against the local platform. Requires `npm run build` and a provisioned
// machine (scripts/provision.sh).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Endpoints, SeedTokens } from '../test/platform/stack.js';
import { provisioned } from '../test/helpers/provisioned.js';
import { benchEnv, compare, type Comparison } from './lib.js';

const DEPLOYMENT = 'cldepdagon000000000000000';

/** The platform runs in its own process: the timed commands run synchronously and would block it here. */
function startPlatform(stateDir: string): { endpoints: Endpoints; tokens: SeedTokens; stop: () => void } {
  const cli = [path.resolve('node_modules/.bin/tsx'), path.resolve('test/platform/cli.ts')];
  execFileSync(cli[0]!, [cli[1]!, 'start', '--ephemeral', '--state', stateDir, '--health-delay-ms', '100'], { stdio: 'ignore' });
  return {
    endpoints: JSON.parse(fs.readFileSync(path.join(stateDir, 'endpoints.json'), 'utf8')) as Endpoints,
    tokens: JSON.parse(fs.readFileSync(path.join(stateDir, 'tokens.json'), 'utf8')) as SeedTokens,
    stop: () => execFileSync(cli[0]!, [cli[1]!, 'stop', '--state', stateDir], { stdio: 'ignore' }),
  };
}

export default async function run(): Promise<Comparison> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-bench-redeploy-'));
  const stack = startPlatform(path.join(work, 'platform'));
  try {
    const project = path.join(work, 'project');
    fs.cpSync(path.resolve('fixtures/example-project'), project, { recursive: true });
    const home = path.join(work, 'home');
    fs.mkdirSync(path.join(home, '.astro'), { recursive: true });
    fs.writeFileSync(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
    const env = benchEnv({
      ASTRO_HOME: home,
      ASTRO_API_TOKEN: stack.tokens.apiTokens.find((t) => t.id === 'cltokwsdataplatform000000')!.token,
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(work, 'cache'),
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      NO_COLOR: '1',
    });
    const astro = (extra: string[]) => ({
      command: process.execPath,
      args: [path.resolve('bin/astro.js'), 'deploy', DEPLOYMENT, ...extra],
      options: { cwd: project, env },
    });
    // One full deploy first: it warms the build and parse caches and gives the Deployment this project.
    execFileSync(process.execPath, astro([]).args, { cwd: project, env, stdio: 'ignore' });
    const noop = execFileSync(process.execPath, [...astro([]).args, '--json'], { cwd: project, env, encoding: 'utf8' });
    if (!(JSON.parse(noop) as { noop?: boolean }).noop) throw new Error('the unchanged redeploy was not a no-op');

    return compare(
      'astro deploy of the unchanged example project (no-op) vs a full image deploy with a warm build cache',
      { label: 'astro deploy --force (build, push, upload, finalize)', ...astro(['--force']) },
      { label: 'astro deploy (no-op)', ...astro([]) },
      { runs: 5, warmup: 1, target: 0.2 },
    );
  } finally {
    stack.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
