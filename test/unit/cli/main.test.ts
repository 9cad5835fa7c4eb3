import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';

let home: string;
beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-cli-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.copyFile('fixtures/config/astronomer-config.yaml', path.join(home, '.astro', 'config.yaml'));
});
afterEach(() => fs.rm(home, { recursive: true, force: true }));

const env = () => ({ ASTRO_HOME: home });

describe('exit codes', () => {
  it('0 for success', async () => {
    const run = await runCli(['version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Astro CLI Version: \d+\.\d+\.\d+\n$/);
  });

  it('1 for a refused command, with the next step and nothing on stdout', async () => {
    const run = await runCli(['context', 'switch', 'nowhere.example.com'], { env: env(), cwd: home });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('There is no context for "nowhere.example.com"');
    expect(run.stderr).toContain('Known contexts: astronomer.io, localhost');
    expect(run.stdout).toBe('');
  });

  it('1 for deploy outside an Astro project', async () => {
    const elsewhere = path.join(home, 'not-a-project');
    await fs.mkdir(elsewhere);
    const run = await runCli(['deploy', 'dep-1'], { env: env(), cwd: elsewhere });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('this is not an Astro project directory');
  });

  it.each([[['--bogus']], [['nonsense-command']], [['deploy', '--wait-time']], [['context', 'delete']], [['version', 'extra']]])(
    '2 for usage errors: %j',
    async (argv) => {
      const run = await runCli(argv, { env: env() });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^Error: /);
      expect(run.stderr).toContain('astro --help');
    },
  );

  it('4 when a choice is needed and there is no terminal, naming the flag', async () => {
    const run = await runCli(['context', 'switch'], { env: env() });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('no terminal');
    expect(run.stderr).toContain('<domain>');
  });

  it('130 and 143 when interrupted by SIGINT or SIGTERM', async () => {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const controller = new AbortController();
      controller.abort(signal);
      const run = await runCli(['version'], { signal: controller.signal });
      expect(run.code).toBe(code);
      expect(run.stderr).toContain(`Interrupted by ${signal}`);
    }
  });

  it('--help succeeds and documents the exit codes, on every command', async () => {
    for (const argv of [['--help'], ['deploy', '--help'], ['dev', 'parse', '--help']]) {
      const run = await runCli(argv);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Exit codes:');
      expect(run.stdout).toMatch(/4 +input needed/);
    }
  });
});

describe('--json', () => {
  it('prints exactly one JSON document for a result', async () => {
    const run = await runCli(['--json', 'context', 'list'], { env: env() });
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.contexts).toEqual([
      { domain: 'astronomer.io', current: false, organization: 'clorg000000000000000001', workspace: 'clwsp0000000000000000001', user: 'dana@example.com' },
      { domain: 'localhost', current: true, organization: 'org-local', workspace: 'ws-local', user: '' },
    ]);
  });

  it('prints an error document with kind, message, exit code and missing flags', async () => {
    const run = await runCli(['context', 'switch', '--json'], { env: env() });
    expect(run.code).toBe(4);
    const doc = JSON.parse(run.stdout);
    expect(doc).toEqual({
      error: expect.objectContaining({ kind: 'needs-input', exitCode: 4, missingFlags: ['<domain>'], message: expect.any(String) }),
    });
  });

  it('prints an error document for a refused command', async () => {
    const run = await runCli(['--json', 'context', 'switch', 'nowhere.example.com'], { env: env(), cwd: home });
    expect(JSON.parse(run.stdout).error).toMatchObject({ kind: 'user', exitCode: 1, nextStep: expect.stringContaining('Known contexts') });
  });
});

describe('terminal and no terminal', () => {
  it('prompts on a terminal and uses the answer', async () => {
    const run = await runCli(['context', 'switch'], { env: env(), tty: true, input: '1\n' });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Choose a context');
    expect(run.stdout).toContain('Switched to astronomer.io');
  });

  it('never prompts in CI even on a terminal', async () => {
    const run = await runCli(['context', 'switch'], { env: { ...env(), CI: 'true' }, tty: true, input: '1\n' });
    expect(run.code).toBe(4);
  });

  it('asks again after an answer that is not a choice', async () => {
    const run = await runCli(['context', 'switch'], { env: env(), tty: true, input: '7\n2\n' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('"7" is not one of the choices 1-2');
    expect(run.stdout).toContain('Switched to localhost');
  });

  it('fails when the input ends before a valid choice', async () => {
    const run = await runCli(['context', 'switch'], { env: env(), tty: true, input: '7\n' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no choice was made (the input ended)');
  });

  it('does not colour output when NO_COLOR is set or there is no terminal', async () => {
    const argv = ['context', 'switch', 'nowhere.example.com'];
    const run = await runCli(argv, { env: { ...env(), NO_COLOR: '1' }, tty: true, cwd: home });
    expect(run.stderr).not.toMatch(/\u001b\[/);
    const plain = await runCli(argv, { env: { ...env(), NO_COLOR: '' }, cwd: home });
    expect(plain.stderr).not.toMatch(/\u001b\[/);
    const coloured = await runCli(argv, { env: { ...env(), NO_COLOR: '' }, tty: true, cwd: home });
    expect(coloured.stderr).toMatch(/\u001b\[31mError:/);
  });
});

describe('config and context commands', () => {
  it('sets and gets a global setting', async () => {
    expect((await runCli(['config', 'set', '-g', 'skip_parse', 'true'], { env: env(), cwd: home })).code).toBe(0);
    const run = await runCli(['--json', 'config', 'get', 'skip_parse'], { env: env(), cwd: home });
    expect(JSON.parse(run.stdout)).toEqual({ key: 'skip_parse', value: 'true', scope: 'effective' });
  });

  it('refuses unknown settings with the list of known ones', async () => {
    const run = await runCli(['config', 'set', '-g', 'no_such_key', '1'], { env: env() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('show_warnings');
  });

  it('names a corrupt config file in the error', async () => {
    await fs.writeFile(path.join(home, '.astro', 'config.yaml'), 'contexts: [\n');
    const run = await runCli(['context', 'list'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(path.join(home, '.astro', 'config.yaml'));
    expect(run.stderr).toContain('not valid YAML');
  });
});
