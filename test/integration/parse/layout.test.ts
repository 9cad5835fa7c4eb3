/**
 * The project layout of the Runtime image, on both Airflow majors and inside the image: the project root is
 * AIRFLOW_HOME, the working directory and importable (`from include.util import x`), plugins/ modules import by
 * name, the project's .env is applied. Verdicts are compared with a direct DagBag run set up the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createDockerEngine } from '../../../src/image/engine.js';
import { afterAll, describe, expect, it } from 'vitest';
import { runParse } from '../../../src/parse/index.js';
import { airflowMajors, copyFixture, dockerSocket, referenceDagBag, removeTempDirs, runtimeImage, tempDir } from './helpers.js';

const cacheDir = tempDir('astro-parse-cache-');
afterAll(removeTempDirs);

const verdicts = (files: { path: string; status: string; dagIds: string[] }[]) =>
  Object.fromEntries(files.map((f) => [f.path, [f.status, ...f.dagIds.sort()].join(' ')]));

const expected = {
  'dags/from_include.py': 'ok from_include',
  'dags/from_plugins.py': 'ok from_plugins',
  'dags/reads_include_file.py': 'ok reads_include_file',
  'dags/missing_include.py': 'error',
};

describe.each(airflowMajors)('include/ and plugins/ imports on Airflow $major (host mode)', ({ major, python }) => {
  it('parse clean, like a DagBag run with the Runtime layout; a missing include module fails on both', async () => {
    const projectDir = copyFixture('layout');
    const report = await runParse({ projectDir, python: python(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
    expect(report.summary.airflowVersion.startsWith(`${major}.`)).toBe(true);
    expect(verdicts(report.files)).toEqual(expected);
    expect(report.files.find((f) => f.path === 'dags/missing_include.py')?.errors[0]?.message).toMatch(
      /ModuleNotFoundError: No module named 'include.not_there'/,
    );
    const reference = await referenceDagBag(projectDir, {}, python());
    expect(report.files.filter((f) => f.status === 'error').map((f) => f.path)).toEqual(reference.failing);
    expect([...new Set(report.files.flatMap((f) => f.dagIds))].sort()).toEqual(reference.dagIds);
  });
});

describe('include/ and plugins/ imports in the Runtime image', () => {
  it('parse clean with --image-name too', async () => {
    const projectDir = copyFixture('layout');
    const report = await runParse(
      { projectDir, image: runtimeImage(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true },
      { docker: createDockerEngine({ socketPath: dockerSocket() }) },
    );
    expect(report.summary.mode).toBe('image');
    expect(verdicts(report.files)).toEqual(expected);
  });
});

describe('a DAG file that cannot be read', () => {
  it('fails the parse with its reason instead of being passed over', async () => {
    const projectDir = copyFixture('layout');
    const locked = path.join(projectDir, 'dags', 'locked.py');
    fs.writeFileSync(locked, 'from airflow import DAG  # noqa: F401\n');
    fs.chmodSync(locked, 0o000);
    const report = await runParse({ projectDir, python: airflowMajors[1].python(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
    expect(report.summary.passed).toBe(false);
    expect(report.files.find((f) => f.path === 'dags/locked.py')).toMatchObject({
      status: 'error',
      errors: [{ kind: 'unreadable', message: expect.stringMatching(/Permission denied/) }],
    });
  });
});
