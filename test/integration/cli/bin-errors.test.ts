// The built CLI (bin/astro.js) as a shell runs it, in the situations where a raw Node error used to escape:
// a working directory deleted under the shell, and --json with commander's own parse errors.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = path.resolve('bin/astro.js');
let root: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-bin-errors-'));
});
afterAll(() => fs.rm(root, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH, HOME: root, ASTRO_HOME: root, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the CLI from a directory that the shell deletes after entering it and before starting the CLI. */
async function inDeletedDirectory(args: string[]): Promise<Run> {
  const dir = await fs.mkdtemp(path.join(root, 'gone-'));
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return run('sh', ['-c', `cd "$1" && rmdir "$1" && exec ${quoted}`, 'sh', dir], root);
}

/** Signs of a raw Node error instead of an astro message. */
const STACK = /uv_cwd|\n\s+at |node:internal|Unexpected error/;

describe('a deleted working directory', () => {
  it('is a clear refusal with exit 1, not a stack trace', async () => {
    const result = await inDeletedDirectory(['deploy', 'dep-1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: The current directory no longer exists (it was deleted or moved).\ncd to an existing directory, e.g. your Astro project, and run the command again.\n',
    );
    expect(result.stdout).toBe('');
  });

  it('is one JSON error document with --json', async () => {
    const result = await inDeletedDirectory(['--json', 'dev', 'parse']);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toMatch(STACK);
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { kind: 'user', exitCode: 1, message: expect.stringContaining('no longer exists') } });
  });

  it('still shows the help', async () => {
    const result = await inDeletedDirectory(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: astro/);
  });
});

describe('--json with a command line commander refuses', () => {
  it.each([[['--json', 'deploy', '--bogus']], [['deploy', '--bogus', '--json']], [['--json', 'no-such-command']]])(
    '%j: one document on stdout, exit 2',
    async (args) => {
      const result = await run(process.execPath, [BIN, ...args], root);
      expect(result.code).toBe(2);
      expect(JSON.parse(result.stdout)).toMatchObject({ error: { kind: 'usage', exitCode: 2 } });
      expect(result.stderr).not.toMatch(STACK);
    },
  );
});

describe('an error that escapes every handler', () => {
  it('is reported once as a bug with exit 1, escaped, without a raw stack trace', async () => {
    // A preloaded module throws once the CLI has started (its handlers are in place, whatever the machine's load),
    // as an 'error' event nobody listens to would.
    const preload = path.join(root, 'throw-later.mjs');
    await fs.writeFile(
      preload,
      'const t = setInterval(() => { if (process.listenerCount("uncaughtException") > 0) { clearInterval(t); throw new Error("boom \\u001b[2J"); } }, 5);\n',
    );
    const result = await run(process.execPath, ['--import', preload, BIN, 'version'], root);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('Error: Unexpected error: boom \\x1b[2J\nThis is a bug in astro. Rerun with --verbose and report the output.\n');
  });
});

describe('a command whose work stops unfinished', () => {
  it('is reported as a bug with exit 1, never as a success', async () => {
    // bin/astro.js over a bundle whose main() waits on a promise nothing settles, with nothing else to wait for: an
    // ES-module entry point ended such a run with exit 13, a CommonJS one would end it with 0.
    const install = await fs.mkdtemp(path.join(root, 'stub-'));
    await fs.mkdir(path.join(install, 'dist', 'bundle'), { recursive: true });
    await fs.cp(path.resolve('bin'), path.join(install, 'bin'), { recursive: true });
    await fs.writeFile(
      path.join(install, 'dist', 'bundle', 'main.cjs'),
      'exports.main = () => new Promise(() => {});\nexports.reportCrash = (error) => { process.stderr.write(`bug: ${error.message}\\n`); return 1; };\n',
    );
    const result = await run(process.execPath, [path.join(install, 'bin', 'astro.js'), 'deploy'], root);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('bug: the command stopped before it finished: nothing was left to wait for\n');

    // The same bin over a main() that finishes: its own code, nothing reported.
    await fs.writeFile(path.join(install, 'dist', 'bundle', 'main.cjs'), 'exports.main = async () => 4;\nexports.reportCrash = () => 99;\n');
    const done = await run(process.execPath, [path.join(install, 'bin', 'astro.js'), 'deploy'], root);
    expect(done).toEqual({ code: 4, stdout: '', stderr: '' });
  });
});
