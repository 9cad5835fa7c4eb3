// What `npm install -g .` / `npx astro` get: the package must carry the built CLI and the parse harness.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { harnessVersion } from '../../../src/parse/harness.js';

describe('the npm package', () => {
  it('contains the entry point, the build and the Python harness, and the bin runs', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as {
      files: { path: string }[];
    }[];
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['bin/astro.js', 'dist/bundle/main.cjs', 'python/astro_parse/supervisor.py', 'package.json']));
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
    const version = execFileSync(process.execPath, ['bin/astro.js', 'version'], { encoding: 'utf8' });
    expect(version).toMatch(/^Astro CLI Version: \d+\.\d+\.\d+/);
    // The run above left its code cache beside the bundle; it is this machine's, not the package's.
    const cached = readdirSync('dist/bundle/code-cache');
    expect(cached.some((f) => f.startsWith('version-'))).toBe(true);
    const again = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as { files: { path: string }[] }[];
    expect(again[0]!.files.filter((f) => f.path.includes('code-cache'))).toEqual([]);
  });

  it('the bundle carries the version of the parse harness it ships beside', () => {
    // harnessVersion() here hashes python/astro_parse as it is now; the bundle was built from the same files.
    const bundle = readFileSync('dist/bundle/main.cjs', 'latin1');
    expect(bundle).toContain(JSON.stringify(harnessVersion()));
    expect(bundle).not.toContain('__ASTRO_HARNESS_VERSION__');
  });
});
