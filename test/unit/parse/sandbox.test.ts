import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hiddenDirectories, sandboxSpec } from '../../../src/parse/sandbox.js';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-sandbox-unit-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

function dir(name: string): string {
  const p = path.join(base, name);
  fs.mkdirSync(p, { recursive: true });
  return p;
}

describe('hiddenDirectories', () => {
  it('hides the home directories, ASTRO_HOME, DOCKER_CONFIG, XDG and astro cache directories that exist', () => {
    const home = dir('home');
    const astroHome = dir('astro-home');
    const docker = dir('docker');
    const cache = dir('cache');
    const hidden = hiddenDirectories({
      hostEnv: { HOME: home, ASTRO_HOME: astroHome, DOCKER_CONFIG: docker, XDG_CONFIG_HOME: path.join(base, 'missing') },
      homeDir: home,
      cacheDir: cache,
      scratch: path.join(base, 'scratch'),
    });
    expect(hidden).toEqual(expect.arrayContaining([home, astroHome, docker, cache]));
    expect(hidden).not.toContain(path.join(base, 'missing'));
    expect(new Set(hidden).size).toBe(hidden.length);
  });

  it('never hides / or a directory holding the scratch directory, nor relative paths', () => {
    const scratchParent = dir('tmp');
    const hidden = hiddenDirectories({
      hostEnv: { HOME: '/', ASTRO_HOME: 'relative/dir', DOCKER_CONFIG: scratchParent },
      homeDir: '/',
      cacheDir: '',
      scratch: path.join(scratchParent, 'astro-parse-x'),
    });
    expect(hidden).toEqual([]);
  });

  it('follows symlinks, hiding both the link and its target', () => {
    const target = dir('real-home');
    const link = path.join(base, 'linked-home');
    fs.symlinkSync(target, link);
    const hidden = hiddenDirectories({ hostEnv: { HOME: link }, homeDir: '/nonexistent', cacheDir: '', scratch: path.join(base, 's') });
    expect(hidden).toEqual([link, target]);
  });
});

describe('sandboxSpec', () => {
  it('never shows again a directory that holds a hidden one', () => {
    const home = dir('spec-home');
    const venv = dir('spec-home/venvs/airflow');
    const dirs = { scratch: dir('spec-scratch'), shared: dir('spec-scratch/run'), stateDir: '', homeDir: '' };
    const spec = sandboxSpec({ projectDir: dir('spec-project'), dirs, reveal: [venv, home, base, 'relative'], hostEnv: { HOME: home } });
    expect(spec.hide).toContain(home);
    expect(spec.reveal).toEqual([venv]);
  });
});
