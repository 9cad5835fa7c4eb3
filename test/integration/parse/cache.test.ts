/**
 * The parse cache: a file's verdict is reused until the file, something its import read, the environment or the
 * interpreter changes; with nothing changed no Python is started at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runParse, type ParseOptions, type ParseProgressEvent } from '../../../src/parse/index.js';
import { airflowPython, copyFixture, expectValidReport, removeTempDirs, tempDir } from './helpers.js';

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
