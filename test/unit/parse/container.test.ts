import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { EngineHttpError, type EngineContainer } from '../../../src/image/engine.js';
import { containerPathToHost, hostPathToContainer, imageLayoutDefaults, runSandboxedContainer, type DockerClient } from '../../../src/parse/container.js';

describe('project paths between host and container', () => {
  it('maps the mounted project directories both ways', () => {
    expect(containerPathToHost('/work/proj', '/usr/local/airflow/dags/a.py')).toBe('/work/proj/dags/a.py');
    expect(containerPathToHost('/work/proj', '/usr/local/airflow/include')).toBe('/work/proj/include');
    expect(hostPathToContainer('/work/proj', '/work/proj/dags/sub/a.py')).toBe('/usr/local/airflow/dags/sub/a.py');
  });

  it('leaves everything else unmapped (not a project path, or not mounted)', () => {
    expect(containerPathToHost('/work/proj', '/usr/local/airflow/airflow.cfg')).toBeNull();
    expect(containerPathToHost('/work/proj', '/usr/local/airflow/dagsother/x.py')).toBeNull();
    expect(containerPathToHost('/work/proj', '/etc/passwd')).toBeNull();
    expect(hostPathToContainer('/work/proj', '/work/proj/requirements.txt')).toBeNull();
    expect(hostPathToContainer('/work/proj', '/work/other/dags/a.py')).toBeNull();
  });

  it('puts the project root on PYTHONPATH unless the image or the env file already set one', () => {
    expect(imageLayoutDefaults({}, {})).toEqual({ PYTHONPATH: '/usr/local/airflow' });
    expect(imageLayoutDefaults({}, { PYTHONPATH: '/opt/lib' })).toEqual({});
    expect(imageLayoutDefaults({ PYTHONPATH: '/x' }, {})).toEqual({ PYTHONPATH: '/x' });
  });
});

describe('an engine that will not run the sandbox container', () => {
  const RLIMITS = 'preparing container 818e for attach: runc create failed: error setting rlimits for ready process: operation not permitted';

  function engine(fail: { at: 'create' | 'attach' | 'start'; error: Error }) {
    const removed: string[] = [];
    const container: EngineContainer = {
      id: 'c1',
      attach: async () => {
        if (fail.at === 'attach') throw fail.error;
        throw new Error('not reached in these tests');
      },
      start: async () => {
        throw fail.error;
      },
      wait: async () => ({ StatusCode: 0 }),
      kill: async () => undefined,
      remove: async () => void removed.push('c1'),
    };
    const docker: DockerClient = {
      where: 'unix:///run/podman/podman.sock',
      inspect: async () => undefined,
      createContainer: async () => {
        if (fail.at === 'create') throw fail.error;
        return container;
      },
    };
    return { docker, removed };
  }

  const run = (docker: DockerClient) =>
    runSandboxedContainer({ docker, image: 'my-project:latest', cmd: ['python'], env: {}, projectDir: '/work/proj', memoryBytes: 1 << 30 }).then(
      () => {
        throw new Error('expected the run to fail');
      },
      (error: unknown) => error as Error,
    );

  it.each(['create', 'attach'] as const)(
    'says which engine refused at %s, with its words, as a user error (not a crash), and removes what it created',
    async (at) => {
      const { docker, removed } = engine({ at, error: new EngineHttpError(500, RLIMITS) });
      const error = await run(docker);
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toBe(`The engine at unix:///run/podman/podman.sock could not start a container of my-project:latest: ${RLIMITS}`);
      expect((error as UserError).nextStep).toContain('docker run --rm my-project:latest true');
      expect(removed).toEqual(at === 'create' ? [] : ['c1']);
    },
  );

  it('lets other failures through unchanged (an unreachable engine is explained where the engine is chosen)', async () => {
    const unreachable = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const { docker } = engine({ at: 'create', error: unreachable });
    expect(await run(docker)).toBe(unreachable);
  });
});
