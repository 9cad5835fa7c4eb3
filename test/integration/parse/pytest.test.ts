/** `astro dev pytest`: pytest in the same sandbox as the parse, on the host and in the image; only exit 0 passes. */
import { createDockerEngine } from '../../../src/image/engine.js';
import { afterAll, describe, expect, it } from 'vitest';
import { runPytest, type PytestOptions } from '../../../src/parse/index.js';
import { airflow2Python, airflowPython, copyFixture, dockerSocket, removeTempDirs, runtimeImage } from './helpers.js';

const projectDir = copyFixture('pytest');
afterAll(removeTempDirs);
const secrets = { ASTRO_API_TOKEN: 'astro-token-pytest-c4n4ry', AWS_SECRET_ACCESS_KEY: 'aws-pytest-c4n4ry' };

const WHERE = [
  { where: 'host', label: 'host mode, Airflow 3', python: airflowPython },
  { where: 'host', label: 'host mode, Airflow 2', python: airflow2Python },
  { where: 'image', label: 'image mode', python: airflowPython },
] as const;

async function pytest(where: 'host' | 'image', extra: Partial<PytestOptions>, python: () => string = airflowPython) {
  let output = '';
  const result = await runPytest(
    {
      projectDir,
      hostEnv: { PATH: process.env.PATH, ...secrets },
      onOutput: (chunk) => (output += chunk),
      ...(where === 'host' ? { python: python() } : { image: runtimeImage() }),
      ...extra,
    },
    { docker: createDockerEngine({ socketPath: dockerSocket() }) },
  );
  return { result, output };
}

describe.each(WHERE)('runPytest in $label', ({ where, python }) => {
  it('passing tests: exit 0, output streamed, .env applied, credentials withheld', async () => {
    const { result, output } = await pytest(where, { path: 'tests/test_passes.py' }, python);
    expect(result).toMatchObject({ exitCode: 0, passed: true, mode: where, network: 'none' });
    expect(output).toMatch(/3 passed/);
    for (const secret of Object.values(secrets)) expect(output).not.toContain(secret);
  });

  it('a failing test: exit 1, not passed', async () => {
    const { result, output } = await pytest(where, { path: 'tests/test_fails.py' }, python);
    expect(result).toMatchObject({ exitCode: 1, passed: false });
    expect(output).toMatch(/deliberately failing test/);
  });

  it('the default path runs all of tests/, and --args reach pytest', async () => {
    expect((await pytest(where, {}, python)).result.exitCode).toBe(1);
    const selected = await pytest(where, { args: ['-k', 'env_file or credentials'] }, python);
    expect(selected.result.exitCode).toBe(0);
    expect(selected.output).toMatch(/2 passed, 2 deselected/);
  });

  it('any other exit code is not a pass either (no tests collected: 4)', async () => {
    const { result } = await pytest(where, { path: 'tests/does_not_exist.py' }, python);
    expect(result.exitCode).toBe(4);
    expect(result.passed).toBe(false);
  });
});
