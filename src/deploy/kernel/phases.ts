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

/** Work started early by `PhaseRunner.early`, until the deploy knows whether it needs it. */
export interface EarlyPhase<T> {
  /** Needed: reported done (or failed, rethrowing) once it settles; its result. */
  adopt(): Promise<T>;
  /** Not needed: aborted if still running, reported skipped; its result or failure is dropped. */
  drop(): void;
}

export class PhaseRunner {
  readonly timings: Timings = {};
  /** Phases running now, counted (a dropped early phase may wind down while the same phase runs again). */
  private readonly inFlight = new Map<Phase, number>();
  private lastStarted: Phase = 'select';
  private atAbort: Phase[] | undefined;
  /** Early phases neither adopted nor dropped yet (see `early`). */
  private readonly pending = new Set<() => void>();
  /** Local clean-ups left to finish beside later phases (see `trail`). */
  private readonly trailing: Promise<unknown>[] = [];

  constructor(
    private readonly emit: (event: DeployEvent) => void,
    private readonly signal: AbortSignal,
    private readonly now: () => number = Date.now,
  ) {
    const snapshot = () => {
      this.atAbort = this.running();
    };
    if (signal.aborted) snapshot();
    else signal.addEventListener('abort', snapshot, { once: true });
  }

  async run<T>(name: Phase, work: () => Promise<T>, label?: string): Promise<T> {
    throwIfAborted(this.signal);
    const release = this.enter(name);
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
      release();
    }
  }

  /** Marks a phase in flight; the returned function ends that (once). */
  private enter(name: Phase): () => void {
    this.inFlight.set(name, (this.inFlight.get(name) ?? 0) + 1);
    this.lastStarted = name;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(name) ?? 1) - 1;
      if (left > 0) this.inFlight.set(name, left);
      else this.inFlight.delete(name);
    };
  }

  private running(): Phase[] {
    return this.inFlight.size > 0 ? [...this.inFlight.keys()] : [this.lastStarted];
  }

  /**
   * Starts local work before it is known to be needed (the DAG bundle while the Deployment is looked up). It is
   * reported as started at once and counts as in flight while it runs; what it came to is reported only once the
   * deploy decides: `adopt` reports it done (or failed, rethrowing) and returns its result, `drop` aborts it and
   * reports it skipped, swallowing its failure. Its timing counts only when adopted, and is the work's own duration.
   */
  early<T>(name: Phase, work: (signal: AbortSignal) => Promise<T>, label?: string): EarlyPhase<T> {
    throwIfAborted(this.signal);
    const own = new AbortController();
    const signal = AbortSignal.any([this.signal, own.signal]);
    const release = this.enter(name);
    const start = this.now();
    this.emit({ type: 'phase', phase: name, state: 'start', ...(label ? { label } : {}) });
    let tookMs = 0;
    const settled: Promise<{ ok: true; value: T } | { ok: false; error: unknown }> = (async () => {
      try {
        return { ok: true as const, value: await work(signal) };
      } catch (error) {
        return { ok: false as const, error };
      } finally {
        tookMs = this.now() - start;
        release();
      }
    })();
    let decided = false;
    // Dropped work is no longer part of the deploy: skipped at once, while its abort winds it down.
    const drop = () => {
      if (decided) return;
      decided = true;
      own.abort();
      release();
      this.emit({ type: 'phase', phase: name, state: 'skipped' });
    };
    this.pending.add(drop);
    return {
      adopt: async () => {
        if (decided) throw new Error(`the early ${name} phase was already adopted or dropped`);
        decided = true;
        this.pending.delete(drop);
        const outcome = await settled;
        this.timings[name] = (this.timings[name] ?? 0) + tookMs;
        this.emit({ type: 'phase', phase: name, state: outcome.ok ? 'done' : 'failed' });
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      },
      drop: () => {
        this.pending.delete(drop);
        drop();
      },
    };
  }

  /**
   * Work a phase started that need not hold up the next one (removing the pushed name from the local engine while
   * the deploy is finalized); `finish` waits for it, so the command never ends with it half done. It must not fail.
   */
  trail(work: Promise<unknown>): void {
    this.trailing.push(work.catch(() => undefined));
  }

  /** The deploy ended (or failed): early phases not adopted are dropped, trailing work is waited for. */
  async finish(): Promise<void> {
    this.dropEarly();
    await Promise.all(this.trailing);
  }

  /** Drops every early phase not adopted yet: the deploy ended (or failed) without needing them. */
  dropEarly(): void {
    for (const drop of [...this.pending]) drop();
    this.pending.clear();
  }

  /** The phases running when the signal fired (the last one started, if none was): what an interruption names. */
  interruptedDuring(): Phase[] {
    return this.atAbort ?? this.running();
  }
}

/** Waits for both; the first failure wins, but only after the other settled (no half-finished work in flight). */
export async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}
