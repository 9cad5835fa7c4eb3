/**
 * The parse cache: a file's verdict is reused until the file, something its import read, the environment or the
 * interpreter changes; with nothing changed no Python is started at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runParse, type ParseOptions, type ParseProgressEvent } from '../../../src/parse/index.js';
import { airflowMajors, airflowPython, copyFixture, expectValidReport, removeTempDirs, tempDir } from './helpers.js';

const cacheDir = tempDir('astro-parse-cache-');
let projectDir: string;

async function parse(extra: Partial<ParseOptions> = {}) {
  const events: ParseProgressEvent[] = [];
  const report = await runParse({
    projectDir,
    python: airflowPython(),
    hostEnv: { PATH: process.env.PATH },
    cacheDir,
    onProgress: (event) => events.push(event),
    ...extra,
  });
  expectValidReport(report);
  const startedPython = events.some((e) => e.type === 'airflow-ready');
  const cachedPaths = report.files.filter((f) => f.cached).map((f) => f.path);
  return { report, events, startedPython, cachedPaths };
}

function edit(rel: string, change: (text: string) => string) {
  const file = path.join(projectDir, rel);
  fs.writeFileSync(file, change(fs.readFileSync(file, 'utf8')));
}

beforeAll(() => {
  projectDir = copyFixture('clean');
});
afterAll(removeTempDirs);

describe('parse cache', () => {
  it('a cold run parses every file; an unchanged project is answered without starting Python', async () => {
    const cold = await parse();
    expect(cold.startedPython).toBe(true);
    expect(cold.cachedPaths).toEqual([]);
    expect(cold.report.summary.passed).toBe(true);

    const warm = await parse();
    expect(warm.startedPython).toBe(false);
    expect(warm.report.summary.cached).toBe(cold.report.summary.files);
    expect(warm.report.files.map((f) => [f.path, f.status, f.dagIds])).toEqual(cold.report.files.map((f) => [f.path, f.status, f.dagIds]));
  });

  it('an edited DAG file is parsed again, the others are reused', async () => {
    edit('dags/etl_orders.py', (text) => `${text}\n# edited\n`);
    const run = await parse();
    expect(run.startedPython).toBe(true);
    expect(run.report.files.find((f) => f.path === 'dags/etl_orders.py')?.cached).toBe(false);
    expect(run.report.summary.cached).toBe(run.report.summary.files - 1);
  });

  it('a changed file that a DAG read at parse time invalidates that DAG only', async () => {
    edit('include/report_settings.json', (text) => text.replace('configured_report', 'renamed_report'));
    const run = await parse();
    const configured = run.report.files.find((f) => f.path === 'dags/configured_from_include.py');
    expect(configured).toMatchObject({ cached: false, dagIds: ['renamed_report'] });
    expect(run.report.summary.cached).toBe(run.report.summary.files - 1);
  });

  it('a broken edit is reported, and fixing it is noticed', async () => {
    edit('dags/uses_connection.py', (text) => text.replace('def _load(**context):', 'def _load(**context)'));
    const broken = await parse();
    expect(broken.report.files.find((f) => f.path === 'dags/uses_connection.py')?.status).toBe('error');
    const cachedBroken = await parse();
    expect(cachedBroken.startedPython).toBe(false);
    expect(cachedBroken.report.summary.passed).toBe(false);
    edit('dags/uses_connection.py', (text) => text.replace('def _load(**context)', 'def _load(**context):'));
    const fixed = await parse();
    expect(fixed.report.summary.passed).toBe(true);
  });

  it('--no-cache parses everything again', async () => {
    const run = await parse({ noCache: true });
    expect(run.startedPython).toBe(true);
    expect(run.cachedPaths).toEqual([]);
  });

  it('a change to the env file or to what Airflow reads at start-up invalidates every file', async () => {
    edit('.env', (text) => `${text}EXTRA_SETTING=1\n`);
    const envChanged = await parse();
    expect(envChanged.cachedPaths).toEqual([]);
    expect((await parse()).startedPython).toBe(false);

    // Airflow looks its local settings module up on sys.path (config/ and plugins/) while it starts.
    fs.writeFileSync(path.join(projectDir, 'plugins', 'airflow_local_settings.py'), '# cluster policies would go here\n');
    const settingsAdded = await parse();
    expect(settingsAdded.cachedPaths).toEqual([]);
  });
});

// The project root is on sys.path (and, on Airflow 2, the DAG folder too), so Airflow's start and every import look
// names up in them: only the names an import looked for count, not the folder's listing as a whole.
describe.each(airflowMajors)('parse cache and new files, Airflow $major', ({ python }) => {
  const ownCache = tempDir('astro-parse-cache-new-files-');
  let project: string;
  const run = async () => {
    const report = await runParse({ projectDir: project, python: python(), hostEnv: { PATH: process.env.PATH }, cacheDir: ownCache });
    expectValidReport(report);
    return { report, cached: report.files.filter((f) => f.cached).map((f) => f.path), file: (p: string) => report.files.find((f) => f.path === p) };
  };

  beforeAll(() => {
    project = copyFixture('clean');
  });

  it('a new DAG file is parsed alone, every other verdict is reused', async () => {
    const cold = await run();
    expect(cold.cached).toEqual([]);
    const parsedBefore = cold.report.files.filter((f) => f.status !== 'skipped').map((f) => f.path);
    fs.writeFileSync(path.join(project, 'dags', 'needs_later.py'), 'from airflow import DAG  # a DAG file\nimport later_helpers\n');
    const added = await run();
    expect(added.file('dags/needs_later.py')).toMatchObject({ status: 'error', cached: false });
    expect(added.file('dags/needs_later.py')?.errors[0]?.message).toContain("No module named 'later_helpers'");
    expect(added.cached.sort()).toEqual(parsedBefore.sort());
  });

  it('a module by the name a failed import looked for is noticed: that file is parsed again, and imports it', async () => {
    fs.writeFileSync(path.join(project, 'later_helpers.py'), 'VALUE = 1\n');
    const helped = await run();
    expect(helped.file('dags/needs_later.py')).toMatchObject({ status: 'ok', cached: false });
    expect(helped.cached).not.toContain('dags/needs_later.py');
    expect(helped.cached.length).toBeGreaterThan(0);
    // Gone again: the import fails again.
    fs.rmSync(path.join(project, 'later_helpers.py'));
    expect((await run()).file('dags/needs_later.py')).toMatchObject({ status: 'error', cached: false });
  });

  it('a package by that name counts too', async () => {
    fs.mkdirSync(path.join(project, 'later_helpers'));
    fs.writeFileSync(path.join(project, 'later_helpers', '__init__.py'), '');
    expect((await run()).file('dags/needs_later.py')).toMatchObject({ status: 'ok', cached: false });
  });
});
