/**
 * Prompts exist only on a terminal. Without one, a prompt becomes a NeedsInputError naming the flags that
 * would have answered it: never a silent default.
 */
import { createInterface } from 'node:readline/promises';
import { InterruptedError, NeedsInputError, UserError } from '../errors.js';
import { escapeLine } from './escape.js';
import type { Output } from './output.js';

export interface Choice<T> {
  label: string;
  value: T;
}

async function ask(out: Output, question: string, signal?: AbortSignal): Promise<string> {
  const { stdin } = out.streams;
  if (!stdin) throw new NeedsInputError(question, []);
  const rl = createInterface({ input: stdin, output: out.streams.stderr, terminal: false });
  try {
    return (await rl.question(question, { signal })).trim();
  } finally {
    rl.close();
  }
}

/** Numbered choice. `flags` names what answers it without a terminal, e.g. ['<deployment-id>', '--deployment-name']. */
export async function select<T>(out: Output, title: string, choices: Choice<T>[], flags: string[], signal?: AbortSignal): Promise<T> {
  if (!out.interactive) throw new NeedsInputError(`${title}: astro needs a choice but there is no terminal to ask on.`, flags);
  if (choices.length === 0) throw new UserError(`${title}: there is nothing to choose from.`);
  out.info(title);
  // Labels come from the platform or the config (Deployment names): one line each, whatever they contain.
  choices.forEach((c, i) => out.info(`  ${String(i + 1).padStart(2)}  ${escapeLine(c.label)}`));
  // A typo asks again rather than ending the command; only the end of the input (or Ctrl-C) stops asking.
  return withLines(out, signal, async (nextLine) => {
    for (;;) {
      const answer = await nextLine('> ');
      if (answer === undefined) throw new UserError(`${title}: no choice was made (the input ended).`);
      const index = Number.parseInt(answer, 10);
      const choice = Number.isInteger(index) && String(index) === answer ? choices[index - 1] : undefined;
      if (choice) return choice.value;
      out.warn(`"${answer}" is not one of the choices 1-${choices.length}. Type a number from 1 to ${choices.length}.`);
    }
  });
}

/**
 * One reader for several answers: lines typed ahead (or pasted) wait in the iterator's queue instead of being
 * dropped between two questions. `nextLine` resolves to undefined when the input ends.
 */
async function withLines<T>(
  out: Output,
  signal: AbortSignal | undefined,
  use: (nextLine: (question: string) => Promise<string | undefined>) => Promise<T>,
): Promise<T> {
  const { stdin } = out.streams;
  if (!stdin) throw new NeedsInputError('astro needs an answer but there is no input to read it from.', []);
  const rl = createInterface({ input: stdin, output: out.streams.stderr, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new InterruptedError(signal?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT'));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    return await use(async (question) => {
      out.streams.stderr.write(question);
      const next = await Promise.race([lines.next(), aborted]);
      return next.done ? undefined : String(next.value).trim();
    });
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    rl.close();
  }
}

export async function confirm(out: Output, question: string, flags: string[], signal?: AbortSignal): Promise<boolean> {
  if (!out.interactive) throw new NeedsInputError(`${question} astro needs an answer but there is no terminal to ask on.`, flags);
  const answer = (await ask(out, `${question} (y/N) `, signal)).toLowerCase();
  return answer === 'y' || answer === 'yes';
}

/** Waits for Enter (used before opening a browser). Returns immediately without a terminal. */
export async function waitForEnter(out: Output, message: string, signal?: AbortSignal): Promise<void> {
  if (!out.interactive) return;
  await ask(out, message, signal);
}
