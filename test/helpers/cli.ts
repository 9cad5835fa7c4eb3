/** Runs the CLI in-process with captured streams. */
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Pretend stdin and stderr are a terminal; `input` is what the user types. */
  tty?: boolean;
  input?: string;
  signal?: AbortSignal;
}

function capture(isTTY: boolean): PassThrough & { isTTY?: boolean; text(): string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; text(): string };
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.isTTY = isTTY;
  stream.text = () => Buffer.concat(chunks).toString('utf8');
  if (isTTY) {
    // What spinners (ora) call on a terminal stream.
    Object.assign(stream, {
      columns: 100,
      rows: 40,
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
      getColorDepth: () => 8,
      hasColors: () => true,
    });
  }
  return stream;
}

export async function runCli(argv: string[], options: RunOptions = {}): Promise<CliRun> {
  const stdout = capture(false);
  const stderr = capture(options.tty === true);
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  stdin.isTTY = options.tty === true;
  if (options.input !== undefined) stdin.end(options.input);
  const code = await main(argv, {
    streams: { stdout, stderr, stdin },
    env: { PATH: process.env.PATH, HOME: '/nonexistent-home', NO_COLOR: '1', ...options.env },
    cwd: options.cwd ?? process.cwd(),
    signal: options.signal,
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
