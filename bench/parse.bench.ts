/**
 * `astro dev parse` on a generated 200-DAG project against one DagBag() call in the same venv (a fresh Python
 * process importing Airflow, applying the integrity test's mocks and filling a DagBag), on both Airflow majors
 * (the Airflow 3 venv and the Airflow 2 one, each with a project written in its imports).
 *   cold: no cached verdicts (the initialised database template and the interpreter's identity are kept: they
 *         belong to the interpreter, not to the project). Target: <= 0.6x the baseline.
 *   warm: nothing changed since the previous parse. Target: <= 0.05x the baseline.
 *   one file changed: every verdict cached but one file's. Target: <= 0.3x the baseline.
 *   floor: Python's start and Airflow's import alone (not astro), against the same baseline: what any run in a fresh
 *         Python process pays before its first file, so the lowest "one file changed" ratio such a run can reach.
 *   cold, heavier DAGs (Airflow 3): the same project with five times the tasks per DAG (no target; shows how the
 *         ratio moves as per-file work outweighs Airflow's fixed import cost, which both sides pay once).
 * Run with `npm run bench -- parse` (needs `npm run build` and scripts/provision.sh), or directly:
 *   npx tsx bench/parse.bench.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateBenchProject } from '../fixtures/parse/generate-bench-project.mjs';
import { startingStandbys, stopStandbys } from '../src/parse/standby.js';
import { compare, median, report, type Comparison, type Timed } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function provisioned(name: string): string | undefined {
  if (process.env[name]) return process.env[name];
  const file = path.join(root, '.state', 'provision.env');
  const line = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${name}=`))
    : undefined;
  return line?.slice(name.length + 1).trim();
}

function airflowPython(): string {
  const python = provisioned('AIRFLOW_PYTHON');
  if (python === undefined) throw new Error('AIRFLOW_PYTHON is not set: run scripts/provision.sh first');
  return python;
}

function airflow2Python(): string | undefined {
  const python = provisioned('AIRFLOW2_PYTHON') ?? path.join(root, '.state', 'airflow2-venv', 'bin', 'python');
  return fs.existsSync(python) ? python : undefined;
}

function setUp(work: string, python: string, scale: number, major: 2 | 3) {
  const tag = `a${major}-x${scale}`;
  const project = generateBenchProject(path.join(work, `project-${tag}`), 200, scale, major);
  const cacheDir = path.join(work, `cache-${tag}`);
  const scratch = path.join(work, `scratch-${tag}`);
  fs.mkdirSync(scratch);
  const baseline: Timed = {
    label: `python: import Airflow ${major} + DagBag() (200 DAG files${scale > 1 ? `, ${scale}x tasks` : ''})`,
    command: python,
    args: [path.join(root, 'bench', 'parse-baseline.py')],
    options: {
      cwd: project,
      env: {
        PATH: process.env.PATH,
        HOME: scratch,
        AIRFLOW_HOME: project,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${scratch}/airflow.db`,
        AIRFLOW__LOGGING__BASE_LOG_FOLDER: `${scratch}/logs`,
        AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY: `${scratch}/logs/scheduler`,
        AIRFLOW__LOGGING__DAG_PROCESSOR_MANAGER_LOG_LOCATION: `${scratch}/logs/manager.log`,
        AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
        AIRFLOW_CONFIG: `${scratch}/airflow.cfg`,
        PYTHONDONTWRITEBYTECODE: '1',
      },
    },
  };
  // The command a user runs: the built CLI in a fresh Node process, in the project. Not at a terminal, so no
  // standby unless `standby` asks for one (ASTRO_PARSE_STANDBY=1, what a `dev parse` at a terminal does).
  const candidate = (label: string, before?: () => void, standby = false): Timed => ({
    label,
    command: process.execPath,
    args: [path.join(root, 'bin', 'astro.js'), 'dev', 'parse', '--python', python],
    options: {
      cwd: project,
      env: { PATH: process.env.PATH, HOME: scratch, ASTRO_CACHE_DIR: cacheDir, NO_COLOR: '1', ASTRO_PARSE_STANDBY: standby ? '1' : '0' },
    },
    before,
  });
  // With standbys: every run (the baseline's too) starts once the standby the previous run started is ready, so
  // that no run shares the machine with a standby importing Airflow.
  const settled = (before?: () => void) => () => {
    waitForStandbys(path.join(cacheDir, 'parse'));
    before?.();
  };
  const settledBaseline: Timed = { ...baseline, before: settled() };
  const dropVerdicts = () => fs.rmSync(path.join(cacheDir, 'parse', 'runs'), { recursive: true, force: true });
  // A new comment each time: the file's content (and so its cached verdict) changes, nothing else does.
  const changed = fs.readdirSync(path.join(project, 'dags')).sort()[0] as string;
  let edits = 0;
  const changeOneFile = () => fs.appendFileSync(path.join(project, 'dags', changed), `# edit ${++edits}\n`);
  return { project, cacheDir, baseline, settledBaseline, settled, candidate, dropVerdicts, changeOneFile };
}

/**
 * The warm run inside an already running process (as the CLI calls it, its own start-up aside): Node's start-up
 * and module loading, which every astro command pays, are left out of the candidate.
 */
async function warmInProcess(light: ReturnType<typeof setUp>, python: string, baseline: Comparison['baseline']): Promise<Comparison> {
  const { project, cacheDir } = light;
  const { runParse } = (await import(path.join(root, 'dist', 'parse', 'index.js'))) as typeof import('../src/parse/index.js');
  const once = async () => {
    const start = process.hrtime.bigint();
    const result = await runParse({ projectDir: project, cacheDir, python, hostEnv: { PATH: process.env.PATH } });
    if (result.summary.cached !== result.summary.files) throw new Error('the warm run was not answered from the cache');
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  await once();
  const samples: number[] = [];
  for (let i = 0; i < 7; i++) samples.push(await once());
  const medianMs = median(samples);
  return {
    name: 'astro dev parse, warm, in-process runParse (no Node start-up) vs DagBag()',
    baseline,
    candidate: { label: 'runParse (warm) in a running process', medianMs, samples },
    ratio: medianMs / baseline.medianMs,
    target: 0.05,
    met: medianMs / baseline.medianMs <= 0.05,
  };
}

async function forMajor(work: string, python: string, major: 2 | 3): Promise<Comparison[]> {
  const light = setUp(work, python, 1, major);
  const name = (what: string) => `astro dev parse on Airflow ${major}, ${what} vs DagBag()`;
  const results = [
    compare(name('cold (no cached verdicts)'), light.baseline, light.candidate('astro dev parse (cold)', light.dropVerdicts), {
      runs: 5,
      warmup: 1,
      target: 0.6,
    }),
    compare(name('warm (nothing changed)'), light.baseline, light.candidate('astro dev parse (warm)'), { runs: 5, warmup: 1, target: 0.05 }),
    compare(name('one file changed'), light.baseline, light.candidate('astro dev parse (one file changed)', light.changeOneFile), {
      runs: 5,
      warmup: 1,
      target: 0.3,
    }),
  ];
  // With the next run's harness started ahead by the previous one (a standby, as at a terminal).
  results.push(
    compare(
      name('one file changed, with a standby'),
      light.settledBaseline,
      light.candidate('astro dev parse (one file changed, standby)', light.settled(light.changeOneFile), true),
      { runs: 5, warmup: 1, target: 0.3 },
    ),
    compare(
      name('cold (no cached verdicts), with a standby'),
      light.settledBaseline,
      light.candidate('astro dev parse (cold, standby)', light.settled(light.dropVerdicts), true),
      { runs: 5, warmup: 1, target: 0.6 },
    ),
  );
  await stopStandbys(path.join(light.cacheDir, 'parse'));
  // Not astro: what a fresh Python process pays before its first file. No run that starts Python can be faster, so
  // this ratio is the floor of the "one file changed" row (its target is met only with an interpreter kept warm).
  const importOnly: Timed = { ...light.baseline, label: `python: import Airflow ${major} only`, args: [...light.baseline.args, '--import-only'] };
  results.push(compare(name('floor: Python + Airflow import alone'), light.baseline, importOnly, { runs: 5, warmup: 1, target: 0.3 }));
  const inProcess = await warmInProcess(light, python, (results[1] as Comparison).baseline);
  results.push({ ...inProcess, name: name('warm, in-process runParse (no Node start-up)') });
  if (major === 3) {
    const heavy = setUp(work, python, 5, major);
    results.push(
      compare(name('cold, heavier DAGs (5x tasks)'), heavy.baseline, heavy.candidate('astro dev parse (cold, 5x tasks)', heavy.dropVerdicts), {
        runs: 3,
        warmup: 1,
        target: 0.6,
      }),
    );
  }
  return results;
}

export default async function run(): Promise<Comparison[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-parse-bench-'));
  try {
    const results = await forMajor(work, airflowPython(), 3);
    const python2 = airflow2Python();
    if (python2 !== undefined) results.push(...(await forMajor(work, python2, 2)));
    return results;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const result of await run()) console.log(report(result));
}

/** Blocks until every standby under the cache is ready or gone (at most two minutes). */
function waitForStandbys(parseRoot: string): void {
  const until = Date.now() + 120_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (startingStandbys(parseRoot) > 0 && Date.now() < until) Atomics.wait(pause, 0, 0, 20);
}
