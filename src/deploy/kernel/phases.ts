/**
 * The one phase runner of every deploy, Astro or Software. Each step runs as a named phase: timed, reported as
 * events (which the CLI turns into spinners, lines or nothing), and refused once the signal has fired. It also
 * remembers which phases were in flight when a signal arrived, so an interruption names all of them (push and
 * upload run together).
 */
import { throwIfAborted } from '../../util/retry.js';

export type Phase = 'select' | 'plan' | 'parse' | 'pytest' | 'bundle' | 'build' | 'create' | 'push' | 'upload' | 'finalize' | 'wait';

export type DeployEvent =
  | { type: 'notice'; message: string }
  | { type: 'warning'; message: string }
  /** `label`: the phase names itself (e.g. "Pushing image to configured registry") instead of its default label. */
  | { type: 'phase'; phase: Phase; state: 'start' | 'done' | 'skipped' | 'failed'; label?: string }
  | { type: 'progress'; phase: Phase; message?: string; bytesDone?: number; bytesTotal?: number };

export type Timings = Partial<Record<Phase, number>>;

export class PhaseRunner {
  readonly timings: Timings = {};
  private readonly inFlight = new Set<Phase>();
  private lastStarted: Phase = 'select';
  private atAbort: Phase[] | undefined;

  constructor(
    private readonly emit: (event: DeployEvent) => void,
    private readonly signal: AbortSignal,
    private readonly now: () => number = Date.now,
  ) {
    const snapshot = () => {
      this.atAbort = this.inFlight.size > 0 ? [...this.inFlight] : [this.lastStarted];
    };
    if (signal.aborted) snapshot();
    else signal.addEventListener('abort', snapshot, { once: true });
  }

  async run<T>(name: Phase, work: () => Promise<T>, label?: string): Promise<T> {
    throwIfAborted(this.signal);
    this.inFlight.add(name);
    this.lastStarted = name;
    const start = this.now();
    this.emit({ type: 'phase', phase: name, state: 'start', ...(label ? { label } : {}) });
    try {
      const value = await work();
      this.emit({ type: 'phase', phase: name, state: 'done' });
      return value;
    } catch (error) {
      this.emit({ type: 'phase', phase: name, state: 'failed' });
      throw error;
    } finally {
      this.timings[name] = (this.timings[name] ?? 0) + (this.now() - start);
      this.inFlight.delete(name);
    }
  }

  /** The phases running when the signal fired (the last one started, if none was): what an interruption names. */
  interruptedDuring(): Phase[] {
    return this.atAbort ?? (this.inFlight.size > 0 ? [...this.inFlight] : [this.lastStarted]);
  }
}

/** Waits for both; the first failure wins, but only after the other settled (no half-finished work in flight). */
export async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}
