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
  isRequest(argv: string[]): boolean;
  plainOutput(fd: number): boolean;
  print(fd: number, text: string, rest: (bytes: Buffer) => void, writeSync?: (fd: number, bytes: Buffer, at: number, length: number) => number): void;
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

describe('printing a recorded help without the stdout stream', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-help-print-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is what a help request with a record takes: the same words as helpKey', () => {
    expect(helpText.isRequest(['deploy', '--help'])).toBe(true);
    expect(helpText.isRequest(['help'])).toBe(true);
    expect(helpText.isRequest(['deploy'])).toBe(false);
    expect(helpText.isRequest(['deploy', '--dags', '--help'])).toBe(false);
  });

  it('takes files and the null device as plain outputs, never another character device', () => {
    const file = fs.openSync(path.join(dir, 'out.txt'), 'w');
    const devNull = fs.openSync('/dev/null', 'w');
    const devZero = fs.openSync('/dev/zero', 'w');
    try {
      expect(helpText.plainOutput(file)).toBe(true);
      expect(helpText.plainOutput(devNull)).toBe(true);
      // A terminal is a character device: its text goes through process.stdout, which knows its width.
      expect(helpText.plainOutput(devZero)).toBe(false);
    } finally {
      for (const fd of [file, devNull, devZero]) fs.closeSync(fd);
    }
    // A descriptor that is not open cannot be looked at. (Not the one just closed: another thread of this worker may
    // open a file and be given its number in between.)
    expect(helpText.plainOutput(2 ** 30)).toBe(false);
  });

  it('writes the whole text, however many writes it takes', () => {
    const target = path.join(dir, 'out.txt');
    const fd = fs.openSync(target, 'w');
    const text = `Usage: astro — ${'x'.repeat(100_000)}\n`;
    const sizes: number[] = [];
    try {
      // Short writes: at most 4 KiB each, as a pipe may take.
      helpText.print(
        fd,
        text,
        () => expect.unreachable('no rest'),
        (out, bytes, at, length) => {
          sizes.push(length);
          return fs.writeSync(out, bytes, at, Math.min(length, 4096));
        },
      );
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(target, 'utf8')).toBe(text);
    expect(sizes.length).toBeGreaterThan(20);
  });

  it('ends quietly when the reader closed the pipe, and hands what a full non-blocking pipe did not take to the stream', () => {
    const fail = (code: string, after: number) => {
      let calls = 0;
      return (_fd: number, _bytes: Buffer, _at: number, length: number) => {
        calls += 1;
        if (calls > 1) throw Object.assign(new Error(code), { code });
        return Math.min(length, after);
      };
    };
    const rests: Buffer[] = [];
    expect(() => helpText.print(1, 'Usage: astro\n', (rest) => rests.push(rest), fail('EPIPE', 3))).not.toThrow();
    expect(rests).toEqual([]);
    helpText.print(1, 'Usage: astro\n', (rest) => rests.push(rest), fail('EAGAIN', 3));
    expect(rests.map((rest) => rest.toString())).toEqual(['ge: astro\n']);
    // Anything else is a real failure (a full disk), not something to hide.
    expect(() => helpText.print(1, 'Usage: astro\n', () => undefined, fail('ENOSPC', 3))).toThrow('ENOSPC');
  });
});
