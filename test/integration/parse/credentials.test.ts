/**
 * No credential is reachable from DAG code or a test, by any probe: the environment, /proc of every process the
 * sandbox shows (the astro process that started it included), astro's and Docker's config files in the home
 * directory, ASTRO_HOME, DOCKER_CONFIG, astro's cache, inherited file descriptors, and printing a secret
 * base64-encoded so that redaction cannot catch it. Runs the built CLI as its own process, with canary tokens in
 * its environment and in those files, for `dev parse` and `dev pytest`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runParse } from '../../../src/parse/index.js';
import { standbyFolder, standbysSettled, stopStandbys, type StandbyRecord } from '../../../src/parse/standby.js';
import { airflowMajors, copyFixture, decodedOutput, probeHome, removeTempDirs, repoRoot, tempDir, type ProbeHome } from './helpers.js';

const CANARY = 'c4n4ry-astro-token-5d1e0f9a';
let home: ProbeHome;
let projectDir: string;
let cacheDir: string;

beforeAll(() => {
  home = probeHome(CANARY);
  cacheDir = tempDir('astro-parse-cache-');
  fs.writeFileSync(path.join(cacheDir, 'token-in-cache.json'), JSON.stringify({ token: CANARY }));
  projectDir = copyFixture('credentials');
  fs.writeFileSync(
    path.join(projectDir, '.env'),
    `PROBE_PATHS=${[...home.probePaths, path.join(cacheDir, 'token-in-cache.json')].join(':')}\nPROBE_REAL_HOME=${home.home}\n` +
      "# bare names are copied from the caller, except astro's own credentials\nASTRO_API_TOKEN\nASTRONOMER_KEY_SECRET\n",
  );
});

afterAll(() => {
  home.remove();
  removeTempDirs();
});

function astro(args: string[], python: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; output: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'astro.js'), ...args], {
      cwd: projectDir,
      env: {
        PATH: process.env.PATH,
        ...home.env,
        ASTRO_API_TOKEN: CANARY,
        ASTRONOMER_KEY_ID: `id-${CANARY}`,
        ASTRONOMER_KEY_SECRET: `secret-${CANARY}`,
        AWS_SECRET_ACCESS_KEY: `aws-${CANARY}`,
        ASTRO_CACHE_DIR: cacheDir,
        ASTRO_PARSE_PYTHON: python,
        NO_COLOR: '1',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, stdout }));
  });
}

function expectNothingFound(output: string) {
  const decoded = decodedOutput(output);
  // The probes ran and printed what they found.
  expect(output).toMatch(/environment: \d+ found/);
  expect(output).toMatch(/process data: \d+ found/);
  expect(output).toMatch(/credential files: 0 found/);
  // Empty where the sandbox hides it; absent when the repo (and so the probe home) lies below the temp directory,
  // which the sandbox replaces with its own.
  expect(output).toMatch(new RegExp(`home entries: ${home.home} ${home.belowTemp ? 'unreadable' : '0\\b'}`));
  expect(Number(/processes seen: (\d+)/.exec(output)?.[1])).toBeLessThan(16);
  expect(decoded).not.toMatch(/socket:/);
  // Nothing was cut: a leak cannot hide in output beyond the cap.
  expect(output).not.toMatch(/more bytes not kept/);
  for (const text of [output, decoded]) expect(text).not.toContain(CANARY);
}

describe.each(airflowMajors)('credentials on Airflow $major', ({ python }) => {
  it('dev parse: the probes find nothing, in the report or encoded', async () => {
    const run = await astro(['dev', 'parse', '--json', '--no-cache'], python());
    expect(run.code, run.output).toBe(0);
    const report = JSON.parse(run.stdout) as { files: { path: string; output?: string }[] };
    expect(report.files.find((f) => f.path === 'dags/probes.py')?.output).toMatch(/ENCODED:/);
    expectNothingFound(run.output);
  });

  it('dev parse through a harness started ahead (a standby): the probes find nothing, nor is a canary in its environment', async () => {
    const standbyRoot = path.join(cacheDir, 'parse');
    try {
      const first = await astro(['dev', 'parse', '--json', '--no-cache'], python(), { ASTRO_PARSE_STANDBY: '1' });
      expect(first.code, first.output).toBe(0);
      await standbysSettled(standbyRoot);
      const [name] = fs.readdirSync(standbyFolder(standbyRoot)).filter((n) => n.endsWith('.json'));
      const record = JSON.parse(fs.readFileSync(path.join(standbyFolder(standbyRoot), name!), 'utf8')) as StandbyRecord;
      for (const file of [`/proc/${record.pid}/environ`, `/proc/${record.pid}/cmdline`]) {
        expect(fs.readFileSync(file, 'utf8')).not.toContain(CANARY);
      }
      const run = await astro(['dev', 'parse', '--json', '--no-cache'], python(), { ASTRO_PARSE_STANDBY: '0' });
      expect(run.code, run.output).toBe(0);
      expect(fs.existsSync(record.scratch)).toBe(false);
      expectNothingFound(run.output);
    } finally {
      await stopStandbys(standbyRoot);
    }
  });

  it('dev pytest: the same probes from a test find nothing', async () => {
    const run = await astro(['dev', 'pytest', '--args=-s'], python());
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/1 passed/);
    expectNothingFound(run.output);
  });
});

describe('the probes can find what is there', () => {
  it('without the sandbox, the file probe reads the canary (so finding nothing above means something)', async () => {
    const report = await runParse({
      projectDir,
      python: airflowMajors[1].python(),
      hostEnv: { PATH: process.env.PATH, ...home.env },
      cacheDir: tempDir('astro-parse-cache-'),
      noCache: true,
      noSandbox: true,
    });
    const output = report.files.find((f) => f.path === 'dags/probes.py')?.output ?? '';
    expect(output).toMatch(/credential files: [1-9]\d* found/);
    expect(decodedOutput(output)).toContain(CANARY);
  });
});

describe('dev parse outside an Astro project', () => {
  it.each(['/tmp', 'empty'])('refuses in %s with the message users know, exit 1', async (where) => {
    const cwd = where === 'empty' ? tempDir('astro-not-a-project-') : where;
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'astro.js'), 'dev', 'parse'], {
      cwd,
      env: { PATH: process.env.PATH, HOME: tempDir('astro-home-'), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(output).toContain('this is not an Astro project directory');
    expect(output).not.toMatch(/Traceback|Read-only file system/);
  });
});
