// `astro deploy --dags` of a 1,000-DAG project, end to end against the local platform (API calls, parse with a
// warm cache, bundle, upload, finalize), against `tar czf` + one curl PUT of the same folder to the same Azurite
// through the same SAS proxy. Requires `npm run build` and a provisioned machine (scripts/provision.sh).
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

export default async function run(): Promise<Comparison[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-bench-deploy-'));
  const stack = startPlatform(path.join(work, 'platform'));
  try {
    const project = path.join(work, 'project');
    fs.cpSync(path.resolve('fixtures/example-project'), project, { recursive: true });
    fs.rmSync(path.join(project, 'dags'), { recursive: true });
    const generated = path.join(work, 'generated');
    execFileSync(process.execPath, [path.resolve('fixtures/parse/generate-bench-project.mjs'), generated, '1000'], { stdio: 'ignore' });
    fs.cpSync(path.join(generated, 'dags'), path.join(project, 'dags'), { recursive: true });

    const home = path.join(work, 'home');
    fs.mkdirSync(path.join(home, '.astro'), { recursive: true });
    fs.writeFileSync(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
    const token = stack.tokens.apiTokens.find((t) => t.id === 'cltokwsdataplatform000000')!.token;
    const env = benchEnv({
      ASTRO_HOME: home,
      ASTRO_API_TOKEN: token,
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(work, 'cache'),
      NO_COLOR: '1',
    });
    const astro = { command: process.execPath, args: [path.resolve('bin/astro.js'), 'deploy', DEPLOYMENT, '--dags'], options: { cwd: project, env } };
    // One deploy first: it fills the parse cache (a user's second deploy of the day) and gives us a SAS URL's shape.
    execFileSync(astro.command, astro.args, { ...astro.options, stdio: 'ignore' });

    const created = execFileSync(
      'curl',
      [
        '-sf',
        '-X',
        'POST',
        '-H',
        `authorization: Bearer ${token}`,
        '-H',
        'content-type: application/json',
        '--data',
        '{"type":"DAG_ONLY","description":"bench baseline"}',
        `${stack.endpoints.platform.restUrl}/organizations/clorgstellar0000000000000/deployments/${DEPLOYMENT}/deploys`,
      ],
      { encoding: 'utf8' },
    );
    const sasUrl = (JSON.parse(created) as { dagsUploadUrl: string }).dagsUploadUrl;
    const tarball = path.join(work, 'baseline.tar.gz');
    const baselineScript = `tar czf ${tarball} -C ${project} dags && curl -sf -o /dev/null -T ${tarball} -H 'x-ms-blob-type: BlockBlob' "$SAS_URL"`;

    const withParse = compare(
      'astro deploy --dags, 1,000 DAGs (warm parse cache) vs tar czf + one PUT',
      { label: 'tar czf + curl PUT', command: 'bash', args: ['-c', baselineScript], options: { env: { ...process.env, SAS_URL: sasUrl } } },
      { label: 'astro deploy --dags', ...astro },
      { runs: 7, warmup: 1, target: 1.2 },
    );
    const skipParse = compare(
      'astro deploy --dags, 1,000 DAGs, ASTRONOMER_SKIP_PARSE=1 vs tar czf + one PUT',
      { label: 'tar czf + curl PUT', command: 'bash', args: ['-c', baselineScript], options: { env: { ...process.env, SAS_URL: sasUrl } } },
      { label: 'astro deploy --dags (skip parse)', ...astro, options: { ...astro.options, env: { ...env, ASTRONOMER_SKIP_PARSE: '1' } } },
      { runs: 7, warmup: 1, target: 1.2 },
    );
    return [withParse, skipParse];
  } finally {
    stack.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
