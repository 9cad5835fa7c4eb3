import { describe, expect, it } from 'vitest';
import { airflowStateEnvironment, buildDagEnvironment, isAstroCredential, runtimeLayoutDefaults } from '../../../src/parse/sandboxEnv.js';

const hostEnv = {
  PATH: '/usr/bin',
  LANG: 'en_US.UTF-8',
  HOME: '/root',
  ASTRO_API_TOKEN: 'token',
  ASTRONOMER_KEY_ID: 'id',
  ASTRONOMER_KEY_SECRET: 'secret',
  AWS_SECRET_ACCESS_KEY: 'aws',
  GITHUB_TOKEN: 'gh',
  PYTHONPATH: '/somewhere',
};

describe('buildDagEnvironment', () => {
  it('host mode keeps only the allowlist of the caller environment', () => {
    expect(buildDagEnvironment({ mode: 'host', hostEnv, envFile: [] })).toEqual({ PATH: '/usr/bin', LANG: 'en_US.UTF-8' });
  });

  it('host mode supplies PATH and LANG when the caller has none', () => {
    expect(buildDagEnvironment({ mode: 'host', hostEnv: {}, envFile: [] })).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' });
  });

  it('image mode adds nothing from the caller: the image has its own environment', () => {
    expect(buildDagEnvironment({ mode: 'image', hostEnv, envFile: [] })).toEqual({});
  });

  it('the env file comes last and may set anything except astro credentials', () => {
    const env = buildDagEnvironment({
      mode: 'host',
      hostEnv,
      envFile: [
        { name: 'LANG', value: 'C.UTF-8', inherited: false },
        { name: 'AIRFLOW_CONN_DB', value: 'postgres://u:p@h/db', inherited: false },
        { name: 'ASTRO_API_TOKEN', value: 'token', inherited: true },
        { name: 'ASTRONOMER_KEY_SECRET', value: 'secret', inherited: false },
      ],
    });
    expect(env).toEqual({ PATH: '/usr/bin', LANG: 'C.UTF-8', AIRFLOW_CONN_DB: 'postgres://u:p@h/db' });
  });

  it('recognises astro credentials', () => {
    expect(['ASTRO_API_TOKEN', 'ASTRONOMER_KEY_ID', 'ASTRONOMER_KEY_SECRET', 'ASTRONOMER_KEY_ANYTHING'].every(isAstroCredential)).toBe(true);
    expect(isAstroCredential('AIRFLOW_VAR_TOKEN')).toBe(false);
  });

  it('keeps Airflow state out of the project', () => {
    const env = airflowStateEnvironment('/tmp/x/state', '/tmp/x/home');
    expect(env.HOME).toBe('/tmp/x/home');
    expect(env.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN).toBe('sqlite:////tmp/x/state/airflow.db');
    expect(env.AIRFLOW__LOGGING__BASE_LOG_FOLDER).toBe('/tmp/x/state/logs');
    expect(env.PYTHONDONTWRITEBYTECODE).toBe('1');
  });

  it('moves the processor logs of both Airflow majors and a missing airflow.cfg out of the project', () => {
    const env = airflowStateEnvironment('/tmp/x/state', '/tmp/x/home', '/tmp/x/airflow.cfg');
    expect(env.AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY).toBe('/tmp/x/state/logs/scheduler');
    expect(env.AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY).toBe('/tmp/x/state/logs/dag-processor');
    expect(env.AIRFLOW__LOGGING__DAG_PROCESSOR_MANAGER_LOG_LOCATION).toMatch(/^\/tmp\/x\/state\/logs\//);
    expect(env.AIRFLOW_CONFIG).toBe('/tmp/x/airflow.cfg');
    expect(airflowStateEnvironment('/s', '/h')).not.toHaveProperty('AIRFLOW_CONFIG');
  });
});

describe('runtimeLayoutDefaults', () => {
  it('makes the project root AIRFLOW_HOME and importable, without example DAGs', () => {
    expect(runtimeLayoutDefaults({ PATH: '/bin' }, '/p')).toEqual({
      PATH: '/bin',
      AIRFLOW_HOME: '/p',
      PYTHONPATH: '/p',
      AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    });
  });

  it('lets the env file decide each of them', () => {
    const env = { AIRFLOW_HOME: '/h', PYTHONPATH: '/lib', AIRFLOW__CORE__LOAD_EXAMPLES: 'True' };
    expect(runtimeLayoutDefaults(env, '/p')).toEqual(env);
  });
});
