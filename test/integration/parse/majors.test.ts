/**
 * Every parse fixture on both Airflow majors, each compared with a direct run of the integrity test's procedure
 * (initdb, its mocks, DagBag(include_examples=False)) in the same venv, set up as the Runtime image is: the same
 * failing files, the same import-error paths, the same DAG ids. The version's own semantics decide (.airflowignore
 * syntax, example DAGs, what each Airflow can import), so verdicts may differ between majors, never from the
 * reference.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runParse, type ParseReport } from '../../../src/parse/index.js';
import { generateBenchProject } from '../../../fixtures/parse/generate-bench-project.mjs';
import { airflowMajors, copyFixture, referenceDagBag, removeTempDirs, tempDir, type ReferenceResult } from './helpers.js';

const cacheDir = tempDir('astro-parse-cache-');
afterAll(removeTempDirs);

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

/** Import errors inside a zip archive are keyed by member (`dags/x.zip/mod.py`); our files are the archives. */
function fileOf(errorPath: string, files: string[]): string {
  return files.find((f) => errorPath === f || errorPath.startsWith(`${f}/`)) ?? errorPath;
}

/** What differs between our report and the reference run (empty: the same verdicts). */
function verdictDifferences(ours: ParseReport, reference: ReferenceResult): string[] {
  const differences: string[] = [];
  if (reference.aborted) {
    // No per-file verdicts to compare: the run must fail, on the file that ended the reference run.
    const failing = ours.files.filter((f) => f.status === 'error').map((f) => f.path);
    if (ours.summary.passed) differences.push('reference run aborted, ours passed');
    if (reference.abortedBy == null || !failing.includes(reference.abortedBy)) {
      differences.push(`reference aborted by ${reference.abortedBy}, ours failing ${JSON.stringify(failing)}`);
    }
    return differences;
  }
  const same = (what: string, a: string[], b: string[]) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) differences.push(`${what}: ours ${JSON.stringify(a)}, reference ${JSON.stringify(b)}`);
  };
  const paths = ours.files.map((f) => f.path);
  same(
    'failing files',
    ours.files
      .filter((f) => f.status === 'error')
      .map((f) => f.path)
      .sort(),
    [...new Set(reference.failing.map((p) => fileOf(p, paths)))].sort(),
  );
  same('import-error paths', ours.files.flatMap((f) => f.errors.map((e) => e.path)).sort(), Object.keys(reference.importErrors).sort());
  same('DAG ids', [...new Set(ours.files.flatMap((f) => f.dagIds))].sort(), reference.dagIds);
  if (ours.summary.passed !== (reference.failing.length === 0)) differences.push(`passed: ours ${ours.summary.passed}`);
  return differences;
}

const FIXTURES = [
  'clean',
  'broken',
  // Airflow 2's DagBag lets sys.exit() end the whole run, so `broken` compares only that; this copy without the
  // file compares every other verdict on Airflow 2 too.
  'broken-no-exit',
  'ignore-regexp',
  'ignore-default',
  'cross-file',
  'layout',
  'containment',
  'generated',
] as const;

function project(name: (typeof FIXTURES)[number], major: 2 | 3): string {
  if (name === 'broken-no-exit') {
    const dir = copyFixture('broken');
    fs.rmSync(`${dir}/dags/system_exit.py`);
    return dir;
  }
  if (name !== 'generated') return copyFixture(name);
  const dir = tempDir('astro-parse-generated-');
  generateBenchProject(dir, 12, 1, major);
  return dir;
}

afterAll(() => fs.rmSync('/var/tmp/astro-parse-containment.txt', { force: true }));

describe.each(airflowMajors)('Airflow $major: verdicts equal a direct integrity-test run', ({ major, python }) => {
  const reports = new Map<string, ParseReport>();

  it.each(FIXTURES)('%s', async (name) => {
    const projectDir = project(name, major);
    const before = listTree(projectDir);
    const ours = await runParse({ projectDir, python: python(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
    expect(ours.summary.airflowVersion.startsWith(`${major}.`)).toBe(true);
    // The parse leaves the project as it was: no __pycache__, logs, airflow.cfg or database.
    expect(listTree(projectDir)).toEqual(before);
    const reference = await referenceDagBag(projectDir, {}, python());
    expect(verdictDifferences(ours, reference)).toEqual([]);
    reports.set(name, ours);
  });

  it('the version decides: .airflowignore syntax and no example DAGs; containment changes no verdict', () => {
    const ignoreDefault = reports.get('ignore-default');
    expect(ignoreDefault).toBeDefined();
    const status = (report: ParseReport, file: string) => report.files.find((f) => f.path === file)?.status;
    // schedule_interval: deprecated on 2, removed on 3.
    expect(status(reports.get('broken-no-exit')!, 'dags/schedule_interval.py')).toBe(major === 3 ? 'error' : 'ok');
    // glob on 3 ignores legacy_*.py; as a regexp on 2 the same line does not match it.
    expect(status(ignoreDefault!, 'dags/legacy_report.py')).toBe(major === 3 ? 'skipped' : 'error');
    expect(ignoreDefault!.files.some((f) => f.path.startsWith('dags/scratch/') && f.status !== 'skipped')).toBe(false);
    for (const report of reports.values()) {
      expect(report.files.every((f) => f.path.startsWith('dags/'))).toBe(true);
    }
    expect(reports.get('clean')!.summary.passed).toBe(true);
    expect(reports.get('layout')!.summary.failed).toBe(1);
    // Forks, threads, a multiprocessing pool, a subprocess, writes into the project and temp directories.
    const containment = reports.get('containment')!;
    expect(containment.files.map((f) => [f.path, f.status])).toEqual(containment.files.map((f) => [f.path, 'ok']));
    expect(containment.summary.dags).toBe(8);
    expect(containment.summary.sandbox).toMatchObject({ network: 'none', projectView: 'overlay', projectReadOnly: true });
  });
});

describe('the comparison can fail', () => {
  it('a reference without the project root on PYTHONPATH disagrees on the include/ layout', async () => {
    const projectDir = copyFixture('layout');
    const python = airflowMajors[1].python();
    const ours = await runParse({ projectDir, python, hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
    // `python -c` with another working directory, and no PYTHONPATH: include/ cannot be imported.
    const reference = await referenceDagBag(projectDir, { PYTHONPATH: '/nonexistent' }, python, { cwd: tempDir('astro-parse-elsewhere-') });
    expect(verdictDifferences(ours, reference)).not.toEqual([]);
  });
});
