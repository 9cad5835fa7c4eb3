// bin/astro.js compiles the bundle with a V8 code cache per command, kept beside the bundle. It must never change
// what a command does: not on the first run (no cache), not with a cache, not with a damaged one, and not where the
// cache cannot be written. Run against a private copy of the built package, so the worktree's cache is left alone.
import { spawnSync } from 'node:child_process';
import fsSync from 'node:fs';
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
  return astroWith({}, ...args);
}

function astroWith(env: Record<string, string>, ...args: string[]) {
  const run = spawnSync(process.execPath, [path.join(pkg, 'bin', 'astro.js'), ...args], {
    cwd: pkg,
    env: { PATH: process.env.PATH, HOME: pkg, ASTRO_HOME: pkg, NO_COLOR: '1', ...env },
    encoding: 'utf8',
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const helpTexts = async () => (await fs.readdir(cacheDir).catch(() => [] as string[])).filter((f) => f.startsWith('help-text-')).sort();

describe('the code cache of bin/astro.js', () => {
  it('is written per command after the first run and gives the same output after', async () => {
    const first = astro('version');
    expect(first.code).toBe(0);
    const files = await fs.readdir(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^version-${process.version.replace(/\./g, '\\.')}-${process.arch}-\\d+-\\d+\\.v8$`));
    expect(astro('version')).toEqual(first);
    expect(astro('--help').code).toBe(0);
    const codeCaches = (await fs.readdir(cacheDir)).filter((f) => f.endsWith('.v8'));
    expect(codeCaches.sort()).toEqual([files[0], files[0]!.replace(/^version-/, 'help-')].sort());
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

  it('a DAG-only deploy has its own cache, apart from the one other deploys make', async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
    const version = process.version.replace(/\./g, '\\.');
    // Outside a project both stop early; what they compiled is kept all the same, each under its own name.
    const dagsOnly = astro('deploy', 'some-deployment', '--dags');
    const full = astro('deploy', 'some-deployment');
    expect(dagsOnly.code).not.toBe(0);
    expect(full.code).not.toBe(0);
    const caches = (await fs.readdir(cacheDir)).filter((f) => f.endsWith('.v8')).sort();
    expect(caches).toHaveLength(2);
    expect(caches[0]).toMatch(new RegExp(`^deploy-dags-${version}-`));
    expect(caches[1]).toMatch(new RegExp(`^deploy-${version}-`));
    expect(astro('deploy', 'some-deployment', '--dags')).toEqual(dagsOnly);
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

// bin/help-text.js: a help text is recorded once per build, width and colour settings, then printed without the CLI.
describe('the recorded help texts of bin/astro.js', () => {
  it('records a help once and prints the record after, without loading the CLI', async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
    const first = astro('deploy', '--help');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Usage: astro deploy/);
    const records = await helpTexts();
    expect(records).toHaveLength(1);
    expect(astro('deploy', '--help')).toEqual(first);
    // The record is what the next run prints: a marked text proves the CLI was not asked.
    const file = path.join(cacheDir, records[0]!);
    const record = JSON.parse(await fs.readFile(file, 'utf8')) as { key: string; text: string };
    expect(record.text).toBe(first.stdout);
    await fs.writeFile(file, JSON.stringify({ ...record, text: 'RECORDED\n' }));
    expect(astro('deploy', '--help')).toEqual({ code: 0, stdout: 'RECORDED\n', stderr: '' });
    // Another request, or other colour settings, are other records.
    expect(astro('deploy', '-h').stdout).toBe(first.stdout);
    expect(astroWith({ FORCE_COLOR: '1' }, 'deploy', '--help').stdout).toBe(first.stdout);
    expect(await helpTexts()).toHaveLength(3);
  });

  it('does not use a damaged record or one of another build', async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
    const first = astro('--help');
    const [record] = await helpTexts();
    const file = path.join(cacheDir, record!);
    await fs.writeFile(file, '{"key": "damag');
    expect(astro('--help')).toEqual(first);
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toMatchObject({ text: first.stdout });
    const marked = JSON.stringify({ ...JSON.parse(await fs.readFile(file, 'utf8')), text: 'RECORDED\n' });
    await fs.writeFile(file, marked);
    const bundle = path.join(pkg, 'dist', 'bundle', 'main.cjs');
    await fs.utimes(bundle, new Date(), new Date(Date.now() + 9_000));
    expect(astro('--help')).toEqual(first);
  });

  it('prints a record alike to a pipe, a file, the null device and a terminal, and stops quietly at a closed pipe', async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
    const env = { PATH: process.env.PATH, HOME: pkg, ASTRO_HOME: pkg, NO_COLOR: '1' };
    const bin = path.join(pkg, 'bin', 'astro.js');
    const piped = astro('--help');
    expect(piped.code).toBe(0);
    expect(await helpTexts()).toHaveLength(1);
    expect(astro('--help')).toEqual(piped);
    // A file and the null device take the record as a pipe does (one write, no stream).
    const out = path.join(pkg, 'help.txt');
    for (const target of [out, '/dev/null']) {
      const fd = fsSync.openSync(target, 'w');
      try {
        const run = spawnSync(process.execPath, [bin, '--help'], { cwd: pkg, env, stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
        expect([run.status, run.stderr], target).toEqual([0, '']);
      } finally {
        fsSync.closeSync(fd);
      }
    }
    expect(await fs.readFile(out, 'utf8')).toBe(piped.stdout);
    // A pipe whose reader is gone before anything is written: exit 0 and no word on stderr, as `astro --help | true`.
    const closed = python(
      'import os, subprocess, sys\nr, w = os.pipe()\nos.close(r)\np = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)\nprint(p.returncode, p.stderr.decode())',
      [process.execPath, bin, '--help'],
    );
    expect(closed).toBe('0 \n');
    // A terminal goes through process.stdout (its width is part of the key): its own record, printed the same way.
    const terminal = () =>
      python(
        'import os, pty, sys\npid, fd = pty.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\nout = b""\nwhile True:\n    try:\n        chunk = os.read(fd, 65536)\n    except OSError:\n        break\n    if not chunk:\n        break\n    out += chunk\nos.waitpid(pid, 0)\nsys.stdout.write(out.decode())',
        [process.execPath, bin, '--help'],
      ).replace(/\r\n/g, '\n');
    const onTerminal = terminal();
    expect(onTerminal).toMatch(/^Usage: astro /);
    expect(terminal()).toBe(onTerminal);
    const records = await helpTexts();
    expect(records).toHaveLength(2);
    for (const record of records) {
      const file = path.join(cacheDir, record);
      await fs.writeFile(file, JSON.stringify({ ...JSON.parse(await fs.readFile(file, 'utf8')), text: `RECORDED ${record}\n` }));
    }
    const printed = terminal();
    expect(records.map((record) => `RECORDED ${record}\n`)).toContain(printed);
    expect(astro('--help').stdout).not.toBe(printed);

    function python(code: string, args: string[]) {
      const run = spawnSync('python3', ['-c', code, ...args], { cwd: pkg, env, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      return run.stdout;
    }
  });

  it('records nothing but a clean help: not a help on stderr, not JSON', async () => {
    await fs.rm(cacheDir, { recursive: true, force: true });
    const unknown = astro('help', 'nosuchcommand');
    const json = astro('--json', '--help');
    expect(unknown.stderr).toMatch(/Usage: astro/);
    expect(JSON.parse(json.stdout)).toHaveProperty('help');
    expect(await helpTexts()).toEqual([]);
    expect(astro('help', 'nosuchcommand')).toEqual(unknown);
  });
});
