// `astro dev parse` and `astro dev pytest` as a user runs them, on the host with the provisioned Airflow.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

let cache: string;
beforeAll(async () => {
  cache = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-dev-cache-'));
});
afterAll(() => fs.rm(cache, { recursive: true, force: true }));

const env = () => ({ ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON, ASTRO_CACHE_DIR: cache, ASTRO_API_TOKEN: 'secret-token-that-must-not-leak' });

describe('astro dev parse', () => {
  it('passes the example project with the summary users know', async () => {
    const run = await runCli(['dev', 'parse'], { cwd: path.resolve('fixtures/example-project'), env: env() });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^No errors detected in your DAGs \(2 DAG files, 2 DAGs/m);
  });

  it('fails a broken project with exit 1, a line per failing file, and a JSON report with --json', async () => {
    const cwd = path.resolve('fixtures/parse/broken');
    const text = await runCli(['dev', 'parse'], { cwd, env: env() });
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('dags/syntax_error.py:4: SyntaxError');
    expect(text.stderr).toContain('See above for errors detected in your DAGs');
    const json = await runCli(['dev', 'parse', '--json'], { cwd, env: env() });
    expect(json.code).toBe(1);
    // One document on stdout: the report, with the error beside it.
    const report = JSON.parse(json.stdout);
    expect(report.error).toMatchObject({ exitCode: 1 });
    expect(report.summary.passed).toBe(false);
    expect(report.files.find((f: { path: string }) => f.path === 'dags/syntax_error.py').status).toBe('error');
    expect(json.stdout + json.stderr).not.toContain('secret-token-that-must-not-leak');
  });

  it('reads the config only when it may name the interpreter', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-dev-home-'));
    try {
      await fs.mkdir(path.join(home, '.astro'));
      const configFile = path.join(home, '.astro', 'config.yaml');
      await fs.writeFile(configFile, 'contexts: [this is: not valid\n');
      const cwd = path.resolve('fixtures/example-project');
      // ASTRO_PARSE_PYTHON (or --python) names it: a config file the command does not use cannot stop it.
      const named = await runCli(['dev', 'parse'], { cwd, env: { ...env(), ASTRO_HOME: home } });
      expect(named.code, named.stderr).toBe(0);
      const flag = await runCli(['dev', 'parse', '--python', provisioned().AIRFLOW_PYTHON], { cwd, env: { ASTRO_CACHE_DIR: cache, ASTRO_HOME: home } });
      expect(flag.code, flag.stderr).toBe(0);
      // Otherwise the config is read: a broken one says so, a good one's parse.python is used.
      const unnamed = await runCli(['dev', 'parse'], { cwd, env: { ASTRO_CACHE_DIR: cache, ASTRO_HOME: home } });
      expect(unnamed.code).not.toBe(0);
      expect(unnamed.stderr).toContain(`The config file ${configFile} cannot be used`);
      await fs.writeFile(configFile, `parse:\n  python: ${provisioned().AIRFLOW_PYTHON}\n`);
      const configured = await runCli(['dev', 'parse'], { cwd, env: { ASTRO_CACHE_DIR: cache, ASTRO_HOME: home } });
      expect(configured.code, configured.stderr).toBe(0);
      expect(configured.stdout).toMatch(/^No errors detected in your DAGs/m);
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });
});

describe('astro dev pytest', () => {
  it('passes the example project and fails a failing test with exit 1', async () => {
    const ok = await runCli(['dev', 'pytest'], { cwd: path.resolve('fixtures/example-project'), env: env() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/2 passed/);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-pytest-'));
    await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'tests', 'test_fail.py'), 'def test_fail():\n    assert False\n');
    const failed = await runCli(['dev', 'pytest', '--args', '-q'], { cwd: dir, env: env() });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('at least 1 pytest in your tests directory failed');
    await fs.rm(dir, { recursive: true, force: true });
  });
});

describe('--env', () => {
  it('refuses an env file that does not exist, but not a missing default .env', async () => {
    const cwd = path.resolve('fixtures/example-project');
    const missing = await runCli(['dev', 'parse', '--env', 'nope.env'], { cwd, env: env() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Env file path is incorrect:  nope.env');
    const deploy = await runCli(['deploy', 'dep-1', '--env', 'nope.env'], { cwd, env: env() });
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain('Env file path is incorrect:  nope.env');
  });
});
