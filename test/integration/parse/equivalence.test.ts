/**
 * Our verdicts against one direct DagBag() call in the same venv, with the default integrity test's mocks, on
 * every fixture project: the same failing files, the same import-error paths, the same DAG ids.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runParse } from '../../../src/parse/index.js';
import { generateBenchProject } from '../../../fixtures/parse/generate-bench-project.mjs';
import { airflowPython, copyFixture, expectValidReport, referenceDagBag, removeTempDirs, tempDir } from './helpers.js';

const cacheDir = tempDir('astro-parse-cache-');
afterAll(removeTempDirs);

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

async function compare(projectDir: string) {
  const before = listTree(projectDir);
  const ours = await runParse({ projectDir, python: airflowPython(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
  expectValidReport(ours);
  // The parse writes nothing into the project: no __pycache__, no Airflow logs or database.
  expect(listTree(projectDir)).toEqual(before);
  const reference = await referenceDagBag(projectDir);
  const failing = ours.files
    .filter((f) => f.status === 'error')
    .map((f) => f.path)
    .sort();
  const errorPaths = ours.files.flatMap((f) => f.errors.map((e) => e.path)).sort();
  // A DAG object shared by two files is one DagBag entry; each of our files lists what it exposes.
  const dagIds = [...new Set(ours.files.flatMap((f) => f.dagIds))].sort();
  const referenceFailingFiles = [
    ...new Set(
      reference.failing.map((p) =>
        fileOf(
          p,
          ours.files.map((f) => f.path),
        ),
      ),
    ),
  ].sort();
  expect(failing).toEqual(referenceFailingFiles);
  expect(errorPaths).toEqual(Object.keys(reference.importErrors).sort());
  expect(dagIds).toEqual(reference.dagIds);
  expect(ours.summary.passed).toBe(reference.failing.length === 0);
  return { ours, reference };
}

/** Import errors inside a zip archive are keyed by member (`dags/x.zip/mod.py`); our files are the archives. */
function fileOf(errorPath: string, files: string[]): string {
  return files.find((f) => errorPath === f || errorPath.startsWith(`${f}/`)) ?? errorPath;
}

describe('verdicts match a direct DagBag run', () => {
  it('clean project: passes, like DagBag', async () => {
    const { ours } = await compare(copyFixture('clean'));
    expect(ours.summary.passed).toBe(true);
    expect(ours.files.find((f) => f.path === 'dags/helpers_without_dags.py')?.skipReason).toBe('no-dag-heuristic');
  });

  it('broken project: every kind of import error, duplicates, exemptions, .airflowignore (glob)', async () => {
    const { ours, reference } = await compare(copyFixture('broken'));
    expect(reference.failing.length).toBeGreaterThan(5);
    const byPath = new Map(ours.files.map((f) => [f.path, f]));
    expect(byPath.get('dags/syntax_error.py')?.errors[0]?.line).toBe(4);
    expect(byPath.get('dags/cycle.py')?.errors[0]?.message).toMatch(/Cycle detected/);
    expect(byPath.get('dags/exempted_broken.py')).toMatchObject({ status: 'ok', exempted: true });
    expect(byPath.get('dags/mocks_pass.py')).toMatchObject({ status: 'ok', dagIds: ['mocks_pass'] });
    expect(byPath.get('dags/variable_default_keyword.py')?.status).toBe('error');
    // An ignored directory is not walked at all (it may be a virtualenv), so its files are not listed.
    expect(byPath.has('dags/ignored/broken_but_ignored.py')).toBe(false);
    expect(byPath.get('dags/wip_draft.py')?.skipReason).toBe('airflowignore');
    expect(byPath.get('dags/no_heuristic_match.py')?.skipReason).toBe('no-dag-heuristic');
    // The duplicate is reported on whichever file DagBag bagged second, with DagBag's own message.
    const duplicate = ours.files.flatMap((f) => f.errors).find((e) => e.kind === 'duplicate');
    expect(duplicate).toBeDefined();
    expect(reference.importErrors[duplicate!.path]).toBe(duplicate!.message);
  });

  it('regexp .airflowignore syntax selected through .env', async () => {
    const { ours } = await compare(copyFixture('ignore-regexp'));
    expect(ours.files.filter((f) => f.status === 'error').map((f) => f.path)).toEqual(['dags/legacy.py']);
  });

  it('cross-file cases: a DAG object shared through a module, a factory clash, sys.path tricks', async () => {
    const { ours } = await compare(copyFixture('cross-file'));
    expect(ours.files.flatMap((f) => f.errors).map((e) => e.kind)).toEqual(['duplicate']);
  });

  it('generated project (the benchmark shapes)', async () => {
    const dir = tempDir('astro-parse-generated-');
    generateBenchProject(dir, 24);
    const { ours } = await compare(dir);
    expect(ours.summary.dags).toBe(24);
  });
});
