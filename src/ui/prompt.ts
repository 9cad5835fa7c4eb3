/**
 * Prompts exist only on a terminal. Without one, a prompt becomes a NeedsInputError naming the flags that
 * would have answered it: never a silent default.
 */
import { createInterface } from 'node:readline/promises';
import { NeedsInputError, UserError } from '../errors.js';
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
  choices.forEach((c, i) => out.info(`  ${String(i + 1).padStart(2)}  ${c.label}`));
  const answer = await ask(out, '> ', signal);
  const index = Number.parseInt(answer, 10);
  const choice = Number.isInteger(index) && String(index) === answer ? choices[index - 1] : undefined;
  if (!choice) throw new UserError(`"${answer}" is not one of the choices 1-${choices.length}.`);
  return choice.value;
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
