/**
 * Questions whose answers are typed, not chosen: a line, a secret (not echoed), or a password piped on stdin.
 * Like prompt.ts, they exist only on a terminal and become a NeedsInputError without one.
 */
import { createInterface } from 'node:readline/promises';
import { InterruptedError, NeedsInputError, UserError } from '../errors.js';
import type { Output } from './output.js';

export async function askLine(out: Output, question: string, flags: string[], signal: AbortSignal): Promise<string> {
  const { stdin } = out.streams;
  if (!out.interactive || !stdin)
    throw new NeedsInputError(`${question.replace(/[:\s]+$/, '')}: astro needs an answer but there is no terminal to ask on.`, flags);
  const rl = createInterface({ input: stdin, output: out.streams.stderr, terminal: false });
  try {
    return (await rl.question(question, { signal })).trim();
  } finally {
    rl.close();
  }
}

/** Reads a secret from the terminal without echoing it; `flags` answer it when there is no terminal. */
export async function askHidden(out: Output, question: string, flags: string[], signal: AbortSignal): Promise<string> {
  const stdin = out.streams.stdin as (NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void }) | undefined;
  if (!out.interactive || !stdin)
    throw new NeedsInputError(`${question.replace(/[:\s]+$/, '')}: astro needs an answer but there is no terminal to ask on.`, flags);
  if (typeof stdin.setRawMode !== 'function') {
    // Not a terminal stream (e.g. the in-memory streams of tests): nothing echoes what is typed anyway.
    return askLine(out, question, flags, signal);
  }
  const setRawMode = stdin.setRawMode.bind(stdin);
  out.streams.stderr.write(question);
  setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const finish = (settle: () => void): void => {
        signal.removeEventListener('abort', onAbort);
        stdin.removeListener('data', onData);
        settle();
      };
      const onAbort = (): void => finish(() => reject(new InterruptedError('SIGINT')));
      const onData = (chunk: Buffer | string): void => {
        for (const ch of chunk.toString()) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(() => resolve(value));
          // Raw mode turns ^C into a character instead of a signal.
          if (ch === '\u0003') return finish(() => reject(new InterruptedError('SIGINT')));
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stdin.on('data', onData);
    });
  } finally {
    setRawMode(false);
    stdin.pause();
    out.streams.stderr.write('\n');
  }
}

/** Reads a password piped on stdin (`--password-stdin`), without its final newline. */
export async function readPassword(out: Output, flag: string): Promise<string> {
  const { stdin } = out.streams;
  if (!stdin) throw new UserError(`${flag}: there is no standard input to read the password from.`);
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  out.addSecret(password);
  if (password === '') throw new UserError(`${flag}: standard input was empty.`);
  return password;
}
