/**
 * The one retry helper: attempts, exponential backoff with jitter, Retry-After, a per-try timeout, and abort
 * handling that always ends in an InterruptedError naming the signal that stopped us. Every network call that is
 * safe to repeat goes through `retry()`: the Astro REST client, Houston, the registry push, the blob upload and the
 * DAG server upload. What counts as retryable is the caller's `classify`, since only it can read its answers.
 */
import { InterruptedError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Delay before the first retry; doubles per retry, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** An attempt that has not settled by then is abandoned (its signal aborts) and counts as a timeout. */
  attemptTimeoutMs?: number;
}

export type RetryVerdict = { retry: false } | { retry: true; reason: string; retryAfterMs?: number };

export interface RetryOptions {
  policy: RetryPolicy;
  /** Decides, from a failed attempt's error, whether another attempt may help. */
  classify: (error: unknown) => RetryVerdict;
  signal?: AbortSignal;
  /** Called before each wait: `attempt` is the number of the attempt about to be made. */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; error: unknown }) => void;
  /** What the InterruptedError says when the signal stops the work. */
  interruptedMessage?: string;
  random?: () => number;
}

/** A server's Retry-After is honoured up to this; beyond it the user is better served by a clear failure. */
const MAX_RETRY_AFTER_MS = 30_000;

/** The attempt's own deadline passed (not the caller's signal). */
export class AttemptTimeoutError extends Error {
  override readonly name = 'AttemptTimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`no answer within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`, options);
  }
}

/** Exponential backoff with "equal jitter": half the step fixed, half random, so parallel retries spread out. */
export function backoffDelay(policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, failedAttempts: number, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempts - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** bin/ aborts with the signal's name; an InterruptedError as the reason names its own. */
export function signalName(signal: AbortSignal): 'SIGINT' | 'SIGTERM' {
  const reason: unknown = signal.reason;
  if (reason instanceof InterruptedError) return reason.signal;
  return reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
}

export function interruptedBy(signal: AbortSignal, message?: string, cause?: unknown): InterruptedError {
  return new InterruptedError(signalName(signal), message, cause === undefined ? undefined : { cause });
}

export function throwIfAborted(signal: AbortSignal | undefined, message?: string): void {
  if (signal?.aborted) throw interruptedBy(signal, message);
}

/** Waits `ms`; an abort ends the wait at once with an InterruptedError naming the signal. */
export function sleep(ms: number, signal?: AbortSignal, message?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interruptedBy(signal, message));
    const onAbort = () => {
      clearTimeout(timer);
      reject(interruptedBy(signal!, message));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `work` until it succeeds, `classify` says another try cannot help, or the attempts run out; then the last
 * error is thrown as it was (callers turn it into the message users see). `work` gets the attempt number and a
 * signal that aborts on the caller's signal and on the per-try timeout.
 */
export async function retry<T>(work: (attempt: number, signal: AbortSignal) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, signal: outer } = options;
  const attempts = Math.max(1, policy.attempts);
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(outer, options.interruptedMessage);
    const deadline = policy.attemptTimeoutMs === undefined ? undefined : AbortSignal.timeout(policy.attemptTimeoutMs);
    const signals = [outer, deadline].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 1 ? signals[0]! : signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);
    try {
      return await work(attempt, signal);
    } catch (raw) {
      throwIfAborted(outer, options.interruptedMessage);
      const error = deadline?.aborted ? new AttemptTimeoutError(policy.attemptTimeoutMs!, { cause: raw }) : raw;
      const verdict = options.classify(error);
      if (!verdict.retry || attempt >= attempts) throw error;
      const floor = Math.min(verdict.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS);
      const delayMs = Math.max(floor, backoffDelay(policy, attempt, options.random));
      options.onRetry?.({ attempt: attempt + 1, delayMs, reason: verdict.reason, error });
      await sleep(delayMs, outer, options.interruptedMessage);
    }
  }
}

/** HTTP statuses worth another try: timeouts, throttling and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** The transport-level code of an error or of one of its causes (ECONNRESET, UND_ERR_SOCKET, …). */
export function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True for transport failures (reset, refused, timed out) rather than answers. */
export function isRetryableNetworkError(error: unknown): boolean {
  return networkErrorCode(error) !== undefined || (error instanceof TypeError && error.message === 'fetch failed');
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: () => number = Date.now): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now());
}
