/** What the parse integration tests share: the provisioned Airflow venv and Runtime image, fixture copies, and a
 * direct DagBag run to compare verdicts with. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { parseReport, type ParseReport } from '../../../src/parse/index.js';
import { processAlive } from '../../../src/util/process.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const fixturesDir = path.join(repoRoot, 'fixtures', 'parse');

function provisionEnv(): Record<string, string> {
  const file = path.join(repoRoot, '.state', 'provision.env');
  const values: Record<string, string> = {};
  if (!fs.existsSync(file)) return values;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) values[match[1] as string] = (match[2] as string).replace(/^"(.*)"$/, '$1');
  }
  return values;
}

function setting(name: string): string {
  const value = process.env[name] ?? provisionEnv()[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: run scripts/provision.sh (it writes .state/provision.env)`);
  }
  return value;
}

/** The Python of the project's pinned Airflow venv. */
export const airflowPython = (): string => setting('AIRFLOW_PYTHON');
/** The Python of the pinned Airflow 2 venv (scripts/provision.sh, AIRFLOW2_PYTHON). */
export const airflow2Python = (): string => {
  const fallback = path.join(repoRoot, '.state', 'airflow2-venv', 'bin', 'python');
  if (process.env.AIRFLOW2_PYTHON === undefined && provisionEnv().AIRFLOW2_PYTHON === undefined && fs.existsSync(fallback)) {
    return fallback;
  }
  return setting('AIRFLOW2_PYTHON');
};
/** Both Airflow majors the host mode supports, each with its venv. */
export const airflowMajors = [
  { major: 2, python: airflow2Python },
  { major: 3, python: airflowPython },
] as const;
/** The stand-in Astro Runtime image (same Airflow). */
export const runtimeImage = (): string => setting('RUNTIME_IMAGE');
export const dockerSocket = (): string => process.env.DOCKER_SOCKET ?? provisionEnv().DOCKER_SOCKET ?? '/var/run/docker.sock';

const created: string[] = [];

/** A private copy of a fixture project (tests may change it, and its path must not be shared with other runs). */
export function copyFixture(name: string): string {
  const dir = tempDir(`astro-parse-${name}-`);
  fs.cpSync(path.join(fixturesDir, name), dir, { recursive: true });
  return dir;
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Removes every copy and temporary directory this test file made. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface ReferenceResult {
  importErrors: Record<string, string>;
  dagIds: string[];
  failing: string[];
  /** DagBag itself did not return (Airflow 2 lets a DAG file's sys.exit() through): the whole test run fails. */
  aborted?: boolean;
  /** The DAG file whose import ended it. */
  abortedBy?: string | null;
}

/**
 * One DagBag(include_examples=False) call in the same venv, as the default integrity test makes it
 * (test/integration/parse/reference_dagbag.py), with the environment the Runtime image gives it: the project is
 * AIRFLOW_HOME, the working directory and on PYTHONPATH, the project's .env applied, no example DAGs; Airflow's
 * database and every log directory of both majors in a scratch directory.
 */
export async function referenceDagBag(
  projectDir: string,
  extraEnv: Record<string, string> = {},
  python: string = airflowPython(),
  options: { cwd?: string } = {},
): Promise<ReferenceResult> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-parse-reference-'));
  const envFile = path.join(projectDir, '.env');
  const dotenv: Record<string, string> = {};
  if (fs.existsSync(envFile)) {
    for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
      const trimmed = line.trimStart();
      const eq = trimmed.indexOf('=');
      if (trimmed === '' || trimmed.startsWith('#') || eq <= 0) continue;
      dotenv[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
    }
  }
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: path.join(scratch, 'home'),
    AIRFLOW_HOME: projectDir,
    PYTHONPATH: projectDir,
    AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    ...dotenv,
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${scratch}/airflow.db`,
    AIRFLOW__LOGGING__BASE_LOG_FOLDER: `${scratch}/logs`,
    AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY: `${scratch}/logs/dag-processor`,
    AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY: `${scratch}/logs/scheduler`,
    AIRFLOW__LOGGING__DAG_PROCESSOR_MANAGER_LOG_LOCATION: `${scratch}/logs/dag_processor_manager/manager.log`,
    AIRFLOW_CONFIG: `${scratch}/airflow.cfg`,
    PYTHONDONTWRITEBYTECODE: '1',
    ...extraEnv,
  };
  try {
    const output = await new Promise<string>((resolve, reject) => {
      // Run as a file of no directory (not `python script.py`, which would put the script's folder on sys.path).
      const script = path.join(repoRoot, 'test', 'integration', 'parse', 'reference_dagbag.py');
      const child = spawn(python, ['-c', 'import runpy, sys; runpy.run_path(sys.argv[1], run_name="__main__")', script], {
        cwd: options.cwd ?? projectDir,
        env,
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      });
      let result = '';
      let stderr = '';
      (child.stdio[3] as Readable).setEncoding('utf8').on('data', (chunk: string) => (result += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(result) : reject(new Error(`reference DagBag exited ${code}: ${stderr}`))));
    });
    return JSON.parse(output) as ReferenceResult;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

export interface ProbeHome {
  /** A stand-in for the user's home, outside the temp directory (the sandbox has a private one anyway). */
  home: string;
  canary: string;
  /** HOME, ASTRO_HOME and DOCKER_CONFIG pointing at it. */
  env: Record<string, string>;
  /** The credential files a DAG would try, by their real paths. */
  probePaths: string[];
  /** True when the repo, and so this home, lies below the temp directory (a clone in /tmp): the sandbox's own /tmp
   * then hides it as well as its hiding of the home would. */
  belowTemp: boolean;
  remove(): void;
}

/**
 * A home directory with astro's and Docker's config holding a canary token, under .state/ (not below the temp
 * directory, so that only the sandbox's hiding keeps DAG code from it).
 */
export function probeHome(canary: string): ProbeHome {
  const parent = path.join(repoRoot, '.state', 'probe-homes');
  fs.mkdirSync(parent, { recursive: true });
  const home = fs.mkdtempSync(path.join(parent, 'home-'));
  const astroHome = path.join(home, 'astro-home');
  const dockerConfig = path.join(home, 'docker-config');
  const files: Record<string, string> = {
    [path.join(home, '.astro', 'config.yaml')]: `contexts:\n  astronomer_io:\n    token: Bearer ${canary}\n`,
    [path.join(home, '.docker', 'config.json')]: JSON.stringify({
      auths: { 'images.astronomer.cloud': { auth: Buffer.from(`cli:${canary}`).toString('base64') } },
    }),
    [path.join(astroHome, '.astro', 'config.yaml')]: `contexts:\n  localhost:\n    token: ${canary}\n`,
    [path.join(dockerConfig, 'config.json')]: JSON.stringify({ auths: { localhost: { auth: canary } } }),
  };
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode: 0o600 });
  }
  return {
    home,
    canary,
    env: { HOME: home, ASTRO_HOME: astroHome, DOCKER_CONFIG: dockerConfig },
    probePaths: Object.keys(files),
    belowTemp: !path.relative(fs.realpathSync(os.tmpdir()), fs.realpathSync(home)).startsWith('..'),
    remove: () => fs.rmSync(home, { recursive: true, force: true }),
  };
}

/** Every `ENCODED:<base64>` a probe printed, decoded (a secret printed encoded gets past plain redaction). */
export function decodedOutput(text: string): string {
  return [...text.matchAll(/ENCODED:([A-Za-z0-9+/=]+)/g)].map((m) => Buffer.from(m[1] as string, 'base64').toString('latin1')).join('\n');
}

/** runParse builds its report without validating it again: the report must match its schema exactly (no key more or less). */
export function expectValidReport(report: ParseReport): void {
  expect(parseReport.parse(report)).toStrictEqual(report);
}

/**
 * Whether a process ended within `limitMs`. A process this test process started (a standby, a stand-in) stays a
 * zombie, alive to kill(pid, 0), until Node's event loop reaps it: the loop must get to run first.
 */
export async function processGone(pid: number, limitMs = 5_000): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (processAlive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
