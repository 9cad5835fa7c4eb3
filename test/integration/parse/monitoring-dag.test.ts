/**
 * The Hybrid monitoring DAG astro adds to the bundle (src/bundle/monitoring.ts), loaded by real Airflow on both
 * majors, each with the Runtime version of that major: it imports without errors or deprecation warnings, and the
 * Deployment variables Astronomer documents for it (schedule, paused on creation) take effect.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { monitoringDag } from '../../../src/bundle/monitoring.js';
import { airflowMajors, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** Loads the folder with a DagBag and describes the monitoring DAG; warnings raised while importing are listed. */
const PROBE = `
import json, sys, warnings
from datetime import timedelta
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get("astronomer_monitoring_dag")
timetable = getattr(dag, "timetable", None)
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dagIds": sorted(bag.dags),
    "schedule": getattr(timetable, "summary", None) if dag else None,
    "paused": dag.is_paused_upon_creation if dag else None,
    "catchup": dag.catchup if dag else None,
    "timeout": dag.dagrun_timeout.total_seconds() if dag and dag.dagrun_timeout else None,
    "tags": sorted(dag.tags) if dag else None,
    "tasks": [{"id": t.task_id, "priority": t.priority_weight, "queue": t.queue, "type": type(t).__name__} for t in dag.tasks] if dag else None,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught if "monitoring" in str(w.filename)],
}))
`;

const runtimeOf = { 2: '12.5.0', 3: '3.1-8' } as const;

function load(python: string, folder: string, env: Record<string, string> = {}): Record<string, unknown> {
  const scratch = tempDir('astro-monitoring-airflow-');
  const result = spawnSync(python, ['-c', PROBE, folder], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: scratch,
      AIRFLOW_HOME: scratch,
      AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${scratch}/airflow.db`,
      PYTHONDONTWRITEBYTECODE: '1',
      ...env,
    },
    timeout: 120_000,
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe.each(airflowMajors)('the monitoring DAG on Airflow $major', ({ major, python }) => {
  const folder = tempDir(`astro-monitoring-dags-${major}-`);
  const file = monitoringDag(runtimeOf[major]);
  fs.writeFileSync(path.join(folder, file.rel), file.content);

  it('loads cleanly: every five minutes, not paused, no catch-up, one top-priority task on the default queue', () => {
    const dag = load(python(), folder);
    expect(dag).toMatchObject({
      errors: {},
      dagIds: ['astronomer_monitoring_dag'],
      schedule: '*/5 * * * *',
      paused: false,
      catchup: false,
      timeout: 1800,
      tags: ['monitoring'],
      tasks: [{ id: 'hello', priority: 2 ** 31 - 1, queue: 'default', type: 'BashOperator' }],
      warnings: [],
    });
  });

  it('takes its schedule and paused state from the Deployment variables', () => {
    const dag = load(python(), folder, { AIRFLOW_MONITORING_DAG_SCHEDULE_INTERVAL: '*/15 * * * *', PAUSE_ASTRONOMER_MONITORING_DAG: 'True' });
    expect(dag).toMatchObject({ errors: {}, schedule: '*/15 * * * *', paused: true });
  });
});
