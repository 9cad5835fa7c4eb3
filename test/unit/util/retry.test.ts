import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../../../src/errors.js';
import { AttemptTimeoutError, backoffDelay, parseRetryAfter, retry, sleep } from '../../../src/util/retry.js';

const fast = { attempts: 4, baseDelayMs: 1, maxDelayMs: 4 };
const retryAll = () => ({ retry: true as const, reason: 'boom' });

describe('backoffDelay', () => {
  it('doubles from the base delay, jitters within [50%, 100%], and caps at the maximum', () => {
    const policy = { baseDelayMs: 1000, maxDelayMs: 15_000 };
    expect(backoffDelay(policy, 1, () => 0)).toBe(500);
    expect(backoffDelay(policy, 1, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 3, () => 1)).toBe(4000);
    expect(backoffDelay(policy, 10, () => 1)).toBe(15_000);
  });
});

describe('retry', () => {
  it('retries what classify calls retryable, reporting each wait, until the work succeeds', async () => {
    const seen: number[] = [];
    const waits: { attempt: number; reason: string }[] = [];
    const value = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      { policy: fast, classify: (e) => ({ retry: true, reason: (e as Error).message }), onRetry: ({ attempt, reason }) => waits.push({ attempt, reason }) },
    );
    expect(value).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
    expect(waits).toEqual([
      { attempt: 2, reason: 'fail 1' },
      { attempt: 3, reason: 'fail 2' },
    ]);
  });

  it('throws the last error as it was once the attempts run out, and at once when classify says no', async () => {
    let calls = 0;
    const last = new Error('last');
    await expect(
      retry(
        async () => {
          calls++;
          throw last;
        },
        { policy: fast, classify: retryAll },
      ),
    ).rejects.toBe(last);
    expect(calls).toBe(4);
    calls = 0;
    const fatal = new Error('fatal');
    await expect(
      retry(
        async () => {
          calls++;
          throw fatal;
        },
        { policy: fast, classify: () => ({ retry: false }) },
      ),
    ).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });

  it('waits at least what Retry-After asks (bounded), even above the backoff', async () => {
    const delays: number[] = [];
    let n = 0;
    await retry(
      async () => {
        if (n++ === 0) throw new Error('429');
        return 1;
      },
      {
        policy: fast,
        classify: () => ({ retry: true, reason: '429', retryAfterMs: 40 }),
        onRetry: ({ delayMs }) => delays.push(delayMs),
      },
    );
    expect(delays).toEqual([40]);
  });

  it('abandons an attempt past its own deadline and reports it as a timeout', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const value = await retry(
      (_attempt, signal) =>
        n++ === 0 ? new Promise<string>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))) : Promise.resolve('second'),
      {
        policy: { ...fast, attemptTimeoutMs: 20 },
        classify: (e) => {
          errors.push(e);
          return { retry: true, reason: 't' };
        },
      },
    );
    expect(value).toBe('second');
    expect(errors[0]).toBeInstanceOf(AttemptTimeoutError);
    expect((errors[0] as Error).message).toBe('no answer within 20 ms');
  });

  it('ends with an InterruptedError naming the signal that stopped it, during an attempt or a wait', async () => {
    const controller = new AbortController();
    const during = retry(
      async () => {
        controller.abort('SIGTERM');
        throw new Error('cut');
      },
      { policy: { ...fast, baseDelayMs: 10_000, maxDelayMs: 10_000 }, signal: controller.signal, classify: retryAll },
    );
    await expect(during).rejects.toMatchObject({ signal: 'SIGTERM' });

    const second = new AbortController();
    const waiting = retry(
      async () => {
        throw new Error('x');
      },
      {
        policy: { ...fast, baseDelayMs: 10_000, maxDelayMs: 10_000 },
        signal: second.signal,
        classify: retryAll,
        onRetry: () => setTimeout(() => second.abort('SIGINT'), 5),
        interruptedMessage: 'stopped while waiting',
      },
    );
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error).toMatchObject({ signal: 'SIGINT', message: 'stopped while waiting' });
  });
});

describe('sleep', () => {
  it('rejects with the signal name when aborted before or during the wait', async () => {
    const controller = new AbortController();
    controller.abort('SIGTERM');
    await expect(sleep(10, controller.signal)).rejects.toMatchObject({ signal: 'SIGTERM' });
    const later = new AbortController();
    const pending = sleep(10_000, later.signal);
    later.abort('SIGINT');
    await expect(pending).rejects.toMatchObject({ signal: 'SIGINT' });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and ignores what it cannot read', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), () => 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
