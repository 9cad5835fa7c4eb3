import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectPathMapper } from '../../../src/parse/runners.js';

/** The mapping without the prefix test: path.relative decides (out of the project means a leading `..` segment). */
function byRelative(projectDir: string, p: string): string | null {
  const rel = path.relative(projectDir, p);
  return rel.split(path.sep)[0] === '..' || path.isAbsolute(rel) ? null : p;
}

const PATHS = [
  '/work/proj',
  '/work/proj/',
  '/work/proj/dags/a.py',
  '/work/proj/include/util/__init__.py',
  '/work/proj2/dags/a.py',
  '/work/pro',
  '/work/projx',
  '/work',
  '/',
  '/etc/passwd',
  '/work/proj/../proj2/dags/a.py',
  '/work/proj/dags/../../etc/passwd',
  '/work/proj/./dags/a.py',
  '/work/proj//dags/a.py',
  '/work/proj/dags/',
  '/work/proj/.env',
  '/work/proj/..hidden/x.py',
  '/work/proj/..',
  '/work/proj/dags/..x',
  '/work/proj/dags/.airflowignore',
  'dags/a.py',
  '../proj/dags/a.py',
  '',
];

describe('projectPathMapper (host mode: harness path -> host path)', () => {
  it('keeps a path inside the project and maps anything outside to null', () => {
    const inProject = projectPathMapper('/work/proj');
    expect(inProject('/work/proj/dags/a.py')).toBe('/work/proj/dags/a.py');
    expect(inProject('/work/proj')).toBe('/work/proj');
    expect(inProject('/work/projx/dags/a.py')).toBeNull();
    expect(inProject('/work/proj2')).toBeNull();
    expect(inProject('/work/proj/dags/../../etc/passwd')).toBeNull();
    expect(inProject('/etc/passwd')).toBeNull();
    // A name that starts with two dots is inside (a file in a folder named ..data).
    expect(inProject('/work/proj/..data/x.py')).toBe('/work/proj/..data/x.py');
  });

  it('agrees with path.relative on every path, for a project anywhere (the root included)', () => {
    for (const projectDir of ['/work/proj', '/', '/work']) {
      const inProject = projectPathMapper(projectDir);
      for (const p of PATHS) expect([projectDir, p, inProject(p)]).toEqual([projectDir, p, byRelative(projectDir, p)]);
    }
  });
});
