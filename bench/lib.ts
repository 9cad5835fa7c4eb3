/**
 * Benchmarks compare a candidate with a baseline measured in the same run, interleaved so that machine noise
 * hits both alike. They report ratios against targets; they never fail the test suite.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';

export interface Timed {
  label: string;
  command: string;
  args: string[];
  options?: SpawnSyncOptions;
  /** Runs before each timed run, untimed (e.g. to reset a cache). */
  before?: () => void;
}

export interface Comparison {
  name: string;
  baseline: { label: string; medianMs: number; samples: number[] };
  candidate: { label: string; medianMs: number; samples: number[] };
  ratio: number;
  target: number;
  met: boolean;
  /** Extra lines printed under the ratio (e.g. per-phase timings, request counts). */
  details?: string[];
}

/**
 * The environment the benches run astro (and Node's bare start) in: this process's, less NODE_EXTRA_CA_CERTS. When
 * it is set, Node 20 builds its TLS root store while it starts, before any code runs: about 38 ms of every start on
 * the machines these benches ran on, where it named the system CA bundle. Most users do not set it, and nothing the
 * benches run uses TLS. The peer bench times Node's bare start with it as well, so what it costs stays visible.
 */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * How long a server was busy answering one run's requests (the local platform logs when each arrived and was answered): each
 * request from its arrival to its answer, overlapping ones counted once. No CLI can finish sooner than its own start
 * plus this, whatever its code does, as long as it needs those requests.
 */
export function platformBusyMs(requests: readonly { startedAtMs?: number; finishedAtMs?: number }[]): number {
  const spans = requests
    .flatMap((r) => (r.startedAtMs !== undefined && r.finishedAtMs !== undefined ? [[r.startedAtMs, r.finishedAtMs] as const] : []))
    .sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let end = -Infinity;
  for (const [from, to] of spans) {
    if (to <= end) continue;
    busy += to - Math.max(from, end);
    end = to;
  }
  return busy;
}

function timeOnce(t: Timed): number {
  t.before?.();
  const start = process.hrtime.bigint();
  const result = spawnSync(t.command, t.args, { stdio: 'ignore', ...t.options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${t.label} exited with ${result.status ?? result.signal}`);
  return ms;
}

export function compare(name: string, baseline: Timed, candidate: Timed, options: { runs: number; warmup?: number; target: number }): Comparison {
  for (let i = 0; i < (options.warmup ?? 2); i++) {
    timeOnce(baseline);
    timeOnce(candidate);
  }
  const b: number[] = [];
  const c: number[] = [];
  for (let i = 0; i < options.runs; i++) {
    b.push(timeOnce(baseline));
    c.push(timeOnce(candidate));
  }
  const ratio = median(c) / median(b);
  return {
    name,
    baseline: { label: baseline.label, medianMs: median(b), samples: b },
    candidate: { label: candidate.label, medianMs: median(c), samples: c },
    ratio,
    target: options.target,
    met: ratio <= options.target,
  };
}

export function report(result: Comparison): string {
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  return [
    `${result.name}`,
    `  baseline  ${result.baseline.label}: median ${fmt(result.baseline.medianMs)} (${result.baseline.samples.length} runs)`,
    `  candidate ${result.candidate.label}: median ${fmt(result.candidate.medianMs)}`,
    `  ratio ${result.ratio.toFixed(2)}x (target <= ${result.target}x): ${result.met ? 'met' : 'NOT met'}`,
    ...(result.details ?? []).map((line) => `  ${line}`),
  ].join('\n');
}
