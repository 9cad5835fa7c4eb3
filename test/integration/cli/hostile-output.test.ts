// Hostile file names and exception messages from DAG code, shown by `astro dev parse`: escaped, never acted on.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

let project: string;
let cache: string;
const EVIL_NAME = 'evil\u001b[31mRED\u202e\nfake ok line.py';

beforeAll(async () => {
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-hostile-'));
  cache = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-hostile-cache-'));
  await fs.mkdir(path.join(project, 'dags'));
  await fs.mkdir(path.join(project, '.astro'));
  await fs.writeFile(path.join(project, '.astro', 'config.yaml'), 'project:\n  name: hostile\n');
  await fs.writeFile(path.join(project, 'Dockerfile'), 'FROM astrocrpublic.azurecr.io/runtime:3.1-8\n');
  await fs.writeFile(path.join(project, 'dags', EVIL_NAME), 'from airflow import DAG\nraise RuntimeError("boom \\x1b[2J\\x9b2J")\n');
});
afterAll(async () => {
  await fs.rm(project, { recursive: true, force: true });
  await fs.rm(cache, { recursive: true, force: true });
});

const env = () => ({ ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON, ASTRO_CACHE_DIR: cache });
/** What a terminal would act on; newlines are fine only as astro's own line ends. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('astro dev parse on a hostile DAG file', () => {
  it('prints no raw escape and no forged line, with the file and the message still readable', async () => {
    const run = await runCli(['dev', 'parse'], { cwd: project, env: env() });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout + run.stderr).not.toMatch(CONTROL);
    // The name is one line of the report, with its escape sequence, bidi override and newline shown.
    const line = run.stdout.split('\n').find((l) => l.includes('fake ok line.py'));
    expect(line).toBe('✘ dags/evil\\x1b[31mRED\\u202e\\nfake ok line.py:2: RuntimeError: boom \\x1b[2J\\x9b2J');
    expect(run.stdout.split('\n').some((l) => l.startsWith('fake ok line'))).toBe(false);
    expect(run.stderr).toContain('See above for errors detected in your DAGs');
  });

  it('keeps the true name in --json, JSON-escaped, and still one document', async () => {
    const run = await runCli(['dev', 'parse', '--json'], { cwd: project, env: env() });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout + run.stderr).not.toMatch(CONTROL);
    const report = JSON.parse(run.stdout) as { files: { path: string; errors: { message: string }[] }[]; error: { exitCode: number } };
    expect(report.error.exitCode).toBe(1);
    const file = report.files.find((f) => f.path === `dags/${EVIL_NAME}`);
    expect(file?.errors[0]?.message).toContain('boom \u001b[2J\u009b2J');
  });
});
