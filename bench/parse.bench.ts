/**
 * `astro dev parse` on a generated 200-DAG project against one DagBag() call in the same venv (a fresh Python
 * process importing Airflow, applying the integrity test's mocks and filling a DagBag).
 *   cold: no cached verdicts (the initialised database template and the interpreter's identity are kept: they
 *         belong to the interpreter, not to the project). Target: <= 0.6x the baseline.
 *   warm: nothing changed since the previous parse. Target: <= 0.05x the baseline.
 *   cold, heavier DAGs: the same project with five times the tasks per DAG (no target; shows how the ratio
 *         moves as per-file work outweighs Airflow's fixed import cost, which both sides pay once).
 * Run with `npm run bench -- parse` (needs `npm run build` and scripts/provision.sh), or directly:
 *   npx tsx bench/parse.bench.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateBenchProject } from '../fixtures/parse/generate-bench-project.mjs';
import { compare, median, report, type Comparison, type Timed } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function airflowPython(): string {
  if (process.env.AIRFLOW_PYTHON) return process.env.AIRFLOW_PYTHON;
  const file = path.join(root, '.state', 'provision.env');
  const line = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AIRFLOW_PYTHON=')) : undefined;
  if (line === undefined) throw new Error('AIRFLOW_PYTHON is not set: run scripts/provision.sh first');
  return line.slice('AIRFLOW_PYTHON='.length).trim();
}

function setUp(work: string, python: string, scale: number) {
  const project = generateBenchProject(path.join(work, `project-x${scale}`), 200, scale);
  const cacheDir = path.join(work, `cache-x${scale}`);
  const scratch = path.join(work, `scratch-x${scale}`);
  fs.mkdirSync(scratch);
  const baseline: Timed = {
    label: `python: import Airflow + DagBag() (200 DAG files${scale > 1 ? `, ${scale}x tasks` : ''})`,
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
        PYTHONDONTWRITEBYTECODE: '1',
      },
    },
  };
  const candidate = (label: string, before?: () => void): Timed => ({
    label,
    command: process.execPath,
    args: [path.join(root, 'bench', 'parse-candidate.mjs'), project, cacheDir, python],
    before,
  });
  const dropVerdicts = () => fs.rmSync(path.join(cacheDir, 'parse', 'runs'), { recursive: true, force: true });
  return { baseline, candidate, dropVerdicts };
}

/**
 * The warm run inside an already running process (as the CLI calls it, its own start-up aside): Node's start-up
 * and module loading, which every astro command pays, are left out of the candidate.
 */
async function warmInProcess(light: ReturnType<typeof setUp>, python: string, baseline: Comparison['baseline']): Promise<Comparison> {
  const project = light.candidate('').args[1] as string;
  const cacheDir = light.candidate('').args[2] as string;
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

export default async function run(): Promise<Comparison[]> {
  const python = airflowPython();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-parse-bench-'));
  try {
    const light = setUp(work, python, 1);
    const heavy = setUp(work, python, 5);
    const results = [
      compare('astro dev parse, cold (no cached verdicts) vs DagBag()', light.baseline, light.candidate('astro dev parse (cold)', light.dropVerdicts), {
        runs: 7,
        warmup: 1,
        target: 0.6,
      }),
      compare('astro dev parse, warm (nothing changed) vs DagBag()', light.baseline, light.candidate('astro dev parse (warm)'), {
        runs: 7,
        warmup: 1,
        target: 0.05,
      }),
      compare('astro dev parse, cold, heavier DAGs (5x tasks) vs DagBag()', heavy.baseline, heavy.candidate('astro dev parse (cold, 5x tasks)', heavy.dropVerdicts), {
        runs: 5,
        warmup: 1,
        target: 0.6,
      }),
    ];
    results.push(await warmInProcess(light, python, (results[1] as Comparison).baseline));
    return results;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const result of await run()) console.log(report(result));
}
