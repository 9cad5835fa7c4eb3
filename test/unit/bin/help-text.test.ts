import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

interface HelpText {
  helpKey(
    argv: string[],
    env: Record<string, string | undefined>,
    stdout: { isTTY?: boolean; columns?: number },
    bundle: { size: number; mtimeMs: number },
  ): string | undefined;
  read(dir: string, key: string): string | undefined;
  recorder(dir: string, key: string, stdout: Writable, stderr: Writable): { finish(exitCode: number): void };
}
const helpText = createRequire(import.meta.url)('../../../bin/help-text.js') as HelpText;

const bundle = { size: 1000, mtimeMs: 1_700_000_000_000.5 };
const pipe = { isTTY: false };

describe('which commands are help requests', () => {
  it('takes command words with --help or -h, or help first', () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['help', 'deploy'], ['deploy', '--help'], ['dev', 'parse', '-h'], ['deploy', 'abc-123', '--help']]) {
      expect(helpText.helpKey(argv, {}, pipe, bundle), argv.join(' ')).toBeDefined();
    }
  });

  it('leaves everything else to the CLI: no help word, other options, values, too many words', () => {
    for (const argv of [
      [],
      ['deploy'],
      ['deploy', '--dags', '--help'],
      ['--json', '--help'],
      ['deploy', 'ABC', '--help'],
      ['deploy', '--help=x'],
      ['a', 'b', 'c', 'd', '--help'],
      ['deploy', '../x', '-h'],
    ]) {
      expect(helpText.helpKey(argv, {}, pipe, bundle), argv.join(' ')).toBeUndefined();
    }
  });

  it('gives a new key for another build, width or colour setting', () => {
    const key = helpText.helpKey(['--help'], {}, pipe, bundle);
    expect(helpText.helpKey(['--help'], {}, pipe, { ...bundle, size: 1001 })).not.toBe(key);
    expect(helpText.helpKey(['--help'], {}, pipe, { ...bundle, mtimeMs: bundle.mtimeMs + 1000 })).not.toBe(key);
    expect(helpText.helpKey(['--help'], {}, { isTTY: true, columns: 120 }, bundle)).not.toBe(key);
    expect(helpText.helpKey(['--help'], {}, { isTTY: true, columns: 120 }, bundle)).not.toBe(
      helpText.helpKey(['--help'], {}, { isTTY: true, columns: 100 }, bundle),
    );
    expect(helpText.helpKey(['--help'], { NO_COLOR: '1' }, pipe, bundle)).not.toBe(key);
    expect(helpText.helpKey(['--help'], { FORCE_COLOR: '1' }, pipe, bundle)).not.toBe(key);
    expect(helpText.helpKey(['-h'], {}, pipe, bundle)).not.toBe(key);
    expect(helpText.helpKey(['--help'], { ASTRO_HOME: '/x' }, pipe, bundle)).toBe(key);
  });
});

describe('recording a help text', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-help-text-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const sink = () => new Writable({ write: (_chunk, _encoding, done) => done() });

  it('keeps what was written on stdout when the command exited 0 with nothing on stderr', () => {
    const stdout = sink();
    const stderr = sink();
    const recording = helpText.recorder(dir, 'k1', stdout, stderr);
    stdout.write('Usage: ');
    stdout.write('astro\n');
    recording.finish(0);
    expect(helpText.read(dir, 'k1')).toBe('Usage: astro\n');
    expect(helpText.read(dir, 'k2')).toBeUndefined();
    expect(fs.readdirSync(dir)).toHaveLength(1);
  });

  it('keeps nothing after a failure, a word on stderr, or no output', () => {
    for (const [key, run] of [
      ['failed', (out: Writable, _err: Writable) => (out.write('Usage'), 2)],
      ['stderr', (out: Writable, err: Writable) => (out.write('Usage'), err.write('warning'), 0)],
      ['empty', () => 0],
    ] as const) {
      const stdout = sink();
      const stderr = sink();
      const recording = helpText.recorder(dir, key, stdout, stderr);
      recording.finish(run(stdout, stderr));
      expect(helpText.read(dir, key), key).toBeUndefined();
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('gives the streams their own write back', () => {
    const stdout = sink();
    const stderr = sink();
    const writes = [stdout.write, stderr.write];
    helpText.recorder(dir, 'k', stdout, stderr).finish(0);
    expect([stdout.write, stderr.write]).toEqual(writes);
  });
});
