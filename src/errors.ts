/**
 * One error hierarchy for the whole CLI. Every failure a user can meet is an AstroError with an exit code;
 * anything else that escapes is a bug and is reported as one.
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  needsInput: 4,
  interrupted: 130,
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface AstroErrorOptions {
  /** What the user can do about it, printed after the message. */
  nextStep?: string;
  cause?: unknown;
}

export abstract class AstroError extends Error {
  abstract readonly exitCode: ExitCode;
  /** A stable machine-readable kind, used in `--json` error documents. */
  abstract readonly kind: string;
  readonly nextStep?: string;

  constructor(message: string, options: AstroErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.nextStep = options.nextStep;
  }
}

/** Something the user can fix: bad input, a refused deploy, an unreachable service. */
export class UserError extends AstroError {
  readonly exitCode = ExitCode.failure;
  readonly kind: string = 'user';
}

/** The command line itself is wrong: unknown flag, conflicting flags, bad value. */
export class UsageError extends AstroError {
  readonly exitCode = ExitCode.usage;
  readonly kind = 'usage';
}

/** The command would have to prompt, but there is no terminal to prompt on. */
export class NeedsInputError extends AstroError {
  readonly exitCode = ExitCode.needsInput;
  readonly kind = 'needs-input';
  readonly missing: string[];

  constructor(message: string, missing: string[], options: AstroErrorOptions = {}) {
    super(message, {
      nextStep: options.nextStep ?? (missing.length > 0 ? `Pass ${missing.join(' or ')} when running without a terminal.` : undefined),
      cause: options.cause,
    });
    this.missing = missing;
  }
}

/** The user (or CI) stopped the command with a signal. */
export class InterruptedError extends AstroError {
  readonly exitCode: ExitCode;
  readonly kind = 'interrupted';
  readonly signal: 'SIGINT' | 'SIGTERM';

  constructor(signal: 'SIGINT' | 'SIGTERM', message?: string, options: AstroErrorOptions = {}) {
    super(message ?? `Interrupted by ${signal}.`, options);
    this.signal = signal;
    this.exitCode = signal === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated;
  }
}

/** An unexpected failure inside astro itself. */
export class BugError extends AstroError {
  readonly exitCode = ExitCode.failure;
  readonly kind = 'bug';
}

export function isAstroError(value: unknown): value is AstroError {
  return value instanceof AstroError;
}

/** Turns anything thrown into an AstroError; unknown errors become bugs that keep their cause. */
export function toAstroError(value: unknown): AstroError {
  if (isAstroError(value)) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new BugError(`Unexpected error: ${message}`, {
    cause: value,
    nextStep: 'This is a bug in astro. Rerun with --verbose and report the output.',
  });
}

export const exitCodeHelp = [
  'Exit codes:',
  '  0    success',
  '  1    failure (refused deploy, failed parse, unreachable service, ...)',
  '  2    usage error (unknown or conflicting flags, bad values)',
  '  4    input needed: the command would prompt, but there is no terminal; pass the flags it names',
  '  130  interrupted (SIGINT), 143 terminated (SIGTERM)',
].join('\n');
