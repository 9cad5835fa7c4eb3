// DAG-only deploy of a 1,000-DAG project: bundle + upload (astro's services, compiled) against `tar czf` + one
// `curl` PUT of the same folder to the same Azurite, through the same versioning proxy. Requires `npm run build`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { compare, type Comparison } from './lib.js';

const DAGS = 1000;

function dagSource(i: number): string {
  const team = `team_${i % 10}`;
  return `"""ETL for source ${i}, owned by ${team}."""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from common.settings import DEFAULT_ARGS, table_for


@dag(
    dag_id="${team}_source_${i}_etl",
    schedule="${i % 60} ${i % 24} * * *",
    start_date=pendulum.datetime(2024, 1, ${(i % 28) + 1}, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["${team}", "etl", "source-${i}"],
)
def ${team}_source_${i}_etl():
    @task
    def extract() -> list[dict]:
        return [{"id": n, "value": n * ${i}} for n in range(${(i % 7) + 3})]

    @task
    def transform(rows: list[dict]) -> list[dict]:
        return [{**row, "value": row["value"] + ${i % 13}} for row in rows if row["value"] % 2 == 0]

    @task
    def load(rows: list[dict]) -> int:
        print(f"loading {len(rows)} rows into {table_for(${i})}")
        return len(rows)

    load(transform(extract()))


${team}_source_${i}_etl()
`;
}

function generateProject(): string {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-bench-bundle-'));
  const dags = path.join(project, 'dags');
  fs.mkdirSync(path.join(dags, 'common'), { recursive: true });
  fs.writeFileSync(path.join(dags, 'common', '__init__.py'), '');
  fs.writeFileSync(
    path.join(dags, 'common', 'settings.py'),
    'from datetime import timedelta\n\nDEFAULT_ARGS = {"owner": "data", "retries": 2, "retry_delay": timedelta(minutes=5)}\n\n\ndef table_for(i: int) -> str:\n    return f"raw.source_{i}"\n',
  );
  for (let i = 0; i < DAGS; i++) {
    const dir = path.join(dags, `team_${i % 10}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `source_${i}_etl.py`), dagSource(i));
  }
  fs.writeFileSync(path.join(dags, '.airflowignore'), 'common/\n');
  return project;
}

async function startStorage(): Promise<{ sasUrl: string; stop: () => Promise<void> }> {
  const child = spawn(path.resolve('node_modules/.bin/tsx'), [path.resolve('bench/scripts/blob-stack-serve.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`blob stack exited with ${code}`)));
  });
  const { sasUrl } = JSON.parse(line) as { sasUrl: string };
  return {
    sasUrl,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin!.end();
      }),
  };
}

export default async function run(): Promise<Comparison[]> {
  const project = generateProject();
  const storage = await startStorage();
  const archive = path.join(os.tmpdir(), `astro-bench-bundle-${process.pid}.tar.gz`);
  try {
    const baselineScript = [
      'set -e',
      'tar czf "$2" -C "$1" dags',
      'curl -sSf -o /dev/null -X PUT -T "$2" -H "x-ms-blob-type: BlockBlob" -H "x-ms-version: 2025-01-05" "$3"',
    ].join('\n');
    const baseline = { label: 'tar czf + curl PUT', command: 'bash', args: ['-c', baselineScript, 'baseline', project, archive, storage.sasUrl] };
    return [
      compare(
        `DAG-only upload of ${DAGS} DAGs vs tar czf + curl PUT`,
        baseline,
        {
          label: 'createDagBundle + uploadDagBundle (node, compiled)',
          command: process.execPath,
          args: [path.resolve('bench/scripts/dag-upload.mjs'), path.join(project, 'dags'), storage.sasUrl],
        },
        { runs: 15, warmup: 2, target: 1.2 },
      ),
      // The floor any Node implementation starts from: a bare process against the same baseline.
      compare(
        'floor: bare node start-up vs tar czf + curl PUT',
        baseline,
        { label: 'node -e 0', command: process.execPath, args: ['-e', '0'] },
        { runs: 15, warmup: 2, target: 1.2 },
      ),
    ];
  } finally {
    await storage.stop();
    fs.rmSync(project, { recursive: true, force: true });
    fs.rmSync(archive, { force: true });
  }
}
