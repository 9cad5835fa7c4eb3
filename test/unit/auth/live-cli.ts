/** Runs the CLI in-process like test/helpers/cli.ts, but lets a test react to output while the command runs. */
import { PassThrough } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import type { CliRun, RunOptions } from '../../helpers/cli.js';

export interface LiveCli {
  /** Resolves with the first match of `pattern` in everything written to stderr so far or later. */
  stderrMatch(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Types into stdin (kept open until `endInput` unless `input` was given). */
  type(text: string): void;
  endInput(): void;
  /** Every setRawMode call made on stdin (only with `rawMode`). */
  rawModeCalls: boolean[];
  done: Promise<CliRun>;
}

export interface LiveOptions extends RunOptions {
  /** Give stdin a setRawMode, like a real terminal. */
  rawMode?: boolean;
}

export function startCli(argv: string[], options: LiveOptions = {}): LiveCli {
  const text = { stdout: '', stderr: '' };
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const stream = (name: 'stdout' | 'stderr', isTTY: boolean) => {
    const s = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number; [k: string]: unknown };
    s.isTTY = isTTY;
    if (isTTY) {
      // What spinners need from a terminal stream.
      s.columns = 100;
      for (const m of ['cursorTo', 'moveCursor', 'clearLine', 'clearScreenDown']) {
        s[m] = (...args: unknown[]) => {
          const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
          cb?.();
          return true;
        };
      }
    }
    s.on('data', (chunk: Buffer) => {
      text[name] += chunk.toString('utf8');
      if (name !== 'stderr') return;
      for (const w of [...waiters]) {
        const m = text.stderr.match(w.pattern);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    return s;
  };
  const stdout = stream('stdout', false);
  const stderr = stream('stderr', options.tty === true);
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  stdin.isTTY = options.tty === true;
  const rawModeCalls: boolean[] = [];
  if (options.rawMode) stdin.setRawMode = (raw) => void rawModeCalls.push(raw);
  if (options.input !== undefined) stdin.end(options.input);
  const done = main(argv, {
    streams: { stdout, stderr, stdin },
    env: { PATH: process.env.PATH, HOME: '/nonexistent-home', NO_COLOR: '1', ...options.env },
    cwd: options.cwd ?? process.cwd(),
    signal: options.signal,
  }).then(async (code) => {
    stdin.end();
    await new Promise((r) => setImmediate(r));
    return { code, stdout: text.stdout, stderr: text.stderr };
  });
  return {
    type: (t) => stdin.write(t),
    endInput: () => stdin.end(),
    rawModeCalls,
    done,
    stderrMatch: (pattern, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const now = text.stderr.match(pattern);
        if (now) return resolve(now);
        const timer = setTimeout(() => reject(new Error(`stderr never matched ${pattern}; got:\n${text.stderr}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      }),
  };
}
