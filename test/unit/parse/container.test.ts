import { describe, expect, it } from 'vitest';
import { containerPathToHost, hostPathToContainer, imageLayoutDefaults } from '../../../src/parse/container.js';

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
