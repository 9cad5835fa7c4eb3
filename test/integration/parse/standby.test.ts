/**
 * Standbys (src/parse/standby.ts): a run started ahead answers the next run with the verdicts a harness of its own
 * would give; it is retired when what Airflow read at its start changed; anything wrong with it means a harness of
 * the run's own; it ends by itself when nobody comes; nothing of it is left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runParse, type ParseOptions, type ParseProgressEvent } from '../../../src/parse/index.js';
import { retire, standbyFolder, standbysSettled, stopStandbys, type StandbyRecord } from '../../../src/parse/standby.js';
import { processAlive } from '../../../src/util/process.js';
import { airflow2Python, airflowPython, copyFixture, expectValidReport, processGone, removeTempDirs, tempDir } from './helpers.js';

const cacheDirs: string[] = [];
afterEach(async () => {
  for (const dir of cacheDirs.splice(0)) await stopStandbys(path.join(dir, 'parse'));
});
afterAll(removeTempDirs);

function newCache(): string {
  const dir = tempDir('astro-parse-standby-cache-');
  cacheDirs.push(dir);
  return dir;
}

async function parse(projectDir: string, cacheDir: string, extra: Partial<ParseOptions> = {}) {
  const events: ParseProgressEvent[] = [];
  const report = await runParse({
    projectDir,
    python: airflow2Python(),
    hostEnv: { PATH: process.env.PATH },
    cacheDir,
    keepWarm: true,
    onProgress: (event) => events.push(event),
    ...extra,
  });
  expectValidReport(report);
  const harness = events.find((e) => e.type === 'harness');
  return { report, standby: harness?.type === 'harness' ? harness.standby : undefined };
}

/** The standby recorded under this cache, once it is ready. */
async function readyStandby(cacheDir: string): Promise<StandbyRecord> {
  const root = path.join(cacheDir, 'parse');
  await standbysSettled(root);
  const names = fs.readdirSync(standbyFolder(root)).filter((n) => n.endsWith('.json'));
  expect(names).toHaveLength(1);
  const record = JSON.parse(fs.readFileSync(path.join(standbyFolder(root), names[0]!), 'utf8')) as StandbyRecord;
  expect(fs.existsSync(record.readyFile)).toBe(true);
  return record;
}

const verdicts = (report: Awaited<ReturnType<typeof parse>>['report']) =>
  report.files.map((f) => ({ path: f.path, status: f.status, dagIds: [...f.dagIds].sort(), errors: f.errors.map((e) => e.message.split('\n')[0]) }));

describe('standbys', () => {
  it('a standby answers the next run with the verdicts of a fresh harness, and ends with its job', async () => {
    const projectDir = copyFixture('broken');
    const cacheDir = newCache();
    const first = await parse(projectDir, cacheDir);
    expect(first.standby).toBe(false);
    const record = await readyStandby(cacheDir);

    // Every file again, one changed: the standby parses them all.
    fs.appendFileSync(path.join(projectDir, 'dags', 'good.py'), '\n# edited\n');
    const second = await parse(projectDir, cacheDir, { noCache: true });
    expect(second.standby).toBe(true);
    expect(await processGone(record.pid)).toBe(true);
    expect(fs.existsSync(record.scratch)).toBe(false);
    expect(second.report.summary.sandbox).toEqual(first.report.summary.sandbox);

    // The same project through a harness of its own (another cache: no standby there).
    const fresh = await parse(projectDir, newCache(), { noCache: true, keepWarm: false });
    expect(fresh.standby).toBe(false);
    expect(verdicts(second.report)).toEqual(verdicts(fresh.report));
    expect(second.report.summary.passed).toBe(false);

    // The next one is waiting already, for the next run.
    const next = await readyStandby(cacheDir);
    expect(next.pid).not.toBe(record.pid);
  });

  it('sees a DAG file replaced since it started, and a new DAG file; a module by a name Airflow looked up at its start retires it', async () => {
    const projectDir = copyFixture('clean');
    const cacheDir = newCache();
    await parse(projectDir, cacheDir);
    await readyStandby(cacheDir);
    // Replaced by a rename (as many editors save), now with an error in it.
    const file = path.join(projectDir, 'dags', 'etl_orders.py');
    fs.writeFileSync(`${file}.new`, 'raise RuntimeError("replaced while the standby waited")\n# airflow DAG\n');
    fs.renameSync(`${file}.new`, file);
    const run = await parse(projectDir, cacheDir);
    expect(run.standby).toBe(true);
    const errors = run.report.files.filter((f) => f.status === 'error').map((f) => [f.path, f.errors[0]?.message]);
    expect(errors).toEqual([['dags/etl_orders.py', expect.stringContaining('replaced while the standby waited')]]);

    // A new DAG file: no name Airflow looked up while starting, so the standby takes the run and parses it alone.
    await readyStandby(cacheDir);
    fs.writeFileSync(path.join(projectDir, 'dags', 'added.py'), 'from airflow import DAG\nraise ValueError("added while the standby waited")\n');
    const added = await parse(projectDir, cacheDir);
    expect(added.standby).toBe(true);
    expect(added.report.files.find((f) => f.path === 'dags/added.py')).toMatchObject({ cached: false });
    expect(added.report.files.find((f) => f.path === 'dags/added.py')?.errors[0]?.message).toContain('added while the standby waited');
    expect(added.report.files.filter((f) => f.cached).length).toBeGreaterThan(0);

    // Airflow looks its local settings module up on sys.path while it starts: one by that name retires the standby.
    const next = await readyStandby(cacheDir);
    fs.writeFileSync(path.join(projectDir, 'plugins', 'airflow_local_settings.py'), '# cluster policies would go here\n');
    const settings = await parse(projectDir, cacheDir);
    expect(settings.standby).toBe(false);
    expect(await processGone(next.pid)).toBe(true);
    expect(settings.report.files.filter((f) => f.cached)).toEqual([]);
  });

  it('is retired when what Airflow read at its start changed, and the run starts its own harness', async () => {
    const projectDir = copyFixture('clean');
    const cacheDir = newCache();
    await parse(projectDir, cacheDir);
    const record = await readyStandby(cacheDir);
    // airflow.cfg in the project (AIRFLOW_HOME): Airflow reads it when it starts.
    fs.writeFileSync(path.join(projectDir, 'airflow.cfg'), '[core]\nload_examples = False\n');
    const run = await parse(projectDir, cacheDir, { noCache: true });
    expect(run.standby).toBe(false);
    expect(await processGone(record.pid)).toBe(true);
    expect(fs.existsSync(record.scratch)).toBe(false);
    expect(run.report.summary.passed).toBe(true);
  });

  it('a standby that is gone, or a damaged record, means a harness of the run own', async () => {
    const projectDir = copyFixture('clean');
    const cacheDir = newCache();
    await parse(projectDir, cacheDir);
    const record = await readyStandby(cacheDir);
    process.kill(-record.pid, 'SIGKILL');
    const afterKill = await parse(projectDir, cacheDir, { noCache: true });
    expect(afterKill.standby).toBe(false);
    expect(afterKill.report.summary.passed).toBe(true);
    expect(fs.existsSync(record.scratch)).toBe(false);

    const next = await readyStandby(cacheDir);
    const file = fs.readdirSync(standbyFolder(path.join(cacheDir, 'parse'))).find((n) => n.endsWith('.json'))!;
    fs.writeFileSync(path.join(standbyFolder(path.join(cacheDir, 'parse')), file), '{"format": 1, "pid"');
    const afterDamage = await parse(projectDir, cacheDir, { noCache: true, keepWarm: false });
    expect(afterDamage.standby).toBe(false);
    // The damaged record's standby still runs: only its own idle exit or stopStandbys ends it.
    expect(processAlive(next.pid)).toBe(true);
    await retire(next);
    expect(await processGone(next.pid)).toBe(true);
  });

  it('ends by itself when no run comes, and leaves nothing but its folder for the next run to clear', async () => {
    const projectDir = copyFixture('clean');
    const cacheDir = newCache();
    await parse(projectDir, cacheDir, { standbyIdleSeconds: 1 });
    const record = await readyStandby(cacheDir);
    expect(await processGone(record.pid, 15_000)).toBe(true);
    const run = await parse(projectDir, cacheDir, { noCache: true, keepWarm: false });
    expect(run.standby).toBe(false);
    expect(fs.existsSync(record.scratch)).toBe(false);
  });

  it('runs on Airflow 3 too', async () => {
    const projectDir = copyFixture('clean');
    const cacheDir = newCache();
    await parse(projectDir, cacheDir, { python: airflowPython() });
    await readyStandby(cacheDir);
    const run = await parse(projectDir, cacheDir, { python: airflowPython(), noCache: true });
    expect(run.standby).toBe(true);
    expect(run.report.summary.passed).toBe(true);
    expect(run.report.summary.airflowVersion).toMatch(/^3\./);
  });
});
