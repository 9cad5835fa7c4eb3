// bin/astro.js compiles the bundle with a V8 code cache per command, kept beside the bundle. It must never change
// what a command does: not on the first run (no cache), not with a cache, not with a damaged one, and not where the
// cache cannot be written. Run against a private copy of the built package, so the worktree's cache is left alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let pkg: string;
let cacheDir: string;

beforeAll(async () => {
  pkg = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-code-cache-'));
  await fs.mkdir(path.join(pkg, 'bin'));
  await fs.mkdir(path.join(pkg, 'dist', 'bundle'), { recursive: true });
  // bin/package.json makes bin/astro.js CommonJS in a package whose own package.json says ES modules.
  await fs.cp(path.resolve('bin'), path.join(pkg, 'bin'), { recursive: true });
  await fs.copyFile(path.resolve('dist/bundle/main.cjs'), path.join(pkg, 'dist', 'bundle', 'main.cjs'));
  await fs.copyFile(path.resolve('package.json'), path.join(pkg, 'package.json'));
  for (const link of ['node_modules', 'python']) await fs.symlink(path.resolve(link), path.join(pkg, link));
  cacheDir = path.join(pkg, 'dist', 'bundle', 'code-cache');
});
afterAll(() => fs.rm(pkg, { recursive: true, force: true }));

function astro(...args: string[]) {
  const run = spawnSync(process.execPath, [path.join(pkg, 'bin', 'astro.js'), ...args], {
    cwd: pkg,
    env: { PATH: process.env.PATH, HOME: pkg, ASTRO_HOME: pkg, NO_COLOR: '1' },
    encoding: 'utf8',
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the code cache of bin/astro.js', () => {
  it('is written per command after the first run and gives the same output after', async () => {
    const first = astro('version');
    expect(first.code).toBe(0);
    const files = await fs.readdir(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^version-${process.version.replace(/\./g, '\\.')}-${process.arch}-\\d+-\\d+\\.v8$`));
    expect(astro('version')).toEqual(first);
    expect(astro('--help').code).toBe(0);
    expect((await fs.readdir(cacheDir)).sort()).toEqual([files[0], files[0]!.replace(/^version-/, 'help-')].sort());
  });

  it('a damaged cache is rejected by V8 and written again; the command runs as without one', async () => {
    const expected = astro('version');
    const file = path.join(
      cacheDir,
      (await fs.readdir(cacheDir)).find((f) => f.startsWith('version-'))!,
    );
    await fs.writeFile(file, 'not a code cache');
    expect(astro('version')).toEqual(expected);
    expect((await fs.stat(file)).size).toBeGreaterThan(1000);
    await fs.writeFile(file, '');
    expect(astro('version')).toEqual(expected);
  });

  it('a place it cannot write to means no cache, and no message', async () => {
    await fs.rm(cacheDir, { recursive: true });
    await fs.writeFile(cacheDir, 'a file where the folder would go');
    const run = astro('--json', 'config', 'get', 'nonexistent.key');
    const again = astro('--json', 'config', 'get', 'nonexistent.key');
    expect(again).toEqual(run);
    expect(run.stderr).not.toMatch(/code-cache|ENOTDIR|EEXIST/);
    await fs.rm(cacheDir);
  });

  it('a new build (other size or time) does not use the old cache', async () => {
    astro('version');
    const before = await fs.readdir(cacheDir);
    const bundle = path.join(pkg, 'dist', 'bundle', 'main.cjs');
    await fs.utimes(bundle, new Date(), new Date(Date.now() + 5_000));
    expect(astro('version').code).toBe(0);
    const after = await fs.readdir(cacheDir);
    expect(after.filter((f) => !before.includes(f))).toHaveLength(1);
  });
});
