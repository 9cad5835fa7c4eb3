/**
 * Polls a Deployment until it runs what was just deployed. HEALTHY alone is not enough right after a deploy
 * (the status may not have moved yet), so when the API reports the deployed image tag or DAG bundle version
 * those must match too.
 */
import { UserError } from '../../errors.js';
import { ApiError } from '../../platform/http.js';
import { backoffDelay, sleep } from '../../util/retry.js';
import type { Deployment } from '../../platform/astro/schemas.js';

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
  /** What this deploy shipped; checked against the Deployment when it reports them. */
  expect: { imageTag?: string; dagTarballVersion?: string };
  /** What the Deployment ran before this deploy: anything else it runs later came from another deploy. */
  previous?: { imageTag?: string; dagTarballVersion?: string };
  signal?: AbortSignal;
  now?: () => number;
  onStatus?: (status: string) => void;
}

export type WaitOutcome = { status: 'HEALTHY' | 'HIBERNATING'; deployment: Deployment; waitedMs: number };

function runsThisDeploy(d: Deployment, expect: WaitOptions['expect']): boolean {
  if (expect.imageTag && d.imageTag !== undefined && d.imageTag !== expect.imageTag) return false;
  if (expect.dagTarballVersion && d.dagTarballVersion !== undefined && d.dagTarballVersion !== expect.dagTarballVersion) return false;
  return true;
}

/** The Deployment is rolling out (or failed to roll out) this deploy: its desired DAG version is ours. */
function triesThisDeploy(d: Deployment, expect: WaitOptions['expect']): boolean {
  if (runsThisDeploy(d, expect)) return true;
  return expect.dagTarballVersion !== undefined && d.desiredDagTarballVersion === expect.dagTarballVersion;
}

/** The Deployment runs (or rolls out) code that is neither this deploy's nor what it ran before: another deploy won. */
function replacedBy(d: Deployment, options: WaitOptions): string | undefined {
  const { expect, previous } = options;
  if (!previous) return undefined;
  const other = (value: string | undefined, ours: string | undefined, before: string | undefined) =>
    ours !== undefined && value !== undefined && value !== '' && value !== ours && value !== before;
  if (other(d.imageTag, expect.imageTag, previous.imageTag)) return `image tag ${d.imageTag}`;
  if (other(d.desiredDagTarballVersion ?? d.dagTarballVersion, expect.dagTarballVersion, previous.dagTarballVersion)) {
    return `DAG bundle ${d.desiredDagTarballVersion ?? d.dagTarballVersion}`;
  }
  return undefined;
}

/** A failure to read the Deployment that a later poll may get past: no answer, throttling, a server error. */
function isTransient(error: unknown): boolean {
  return error instanceof ApiError && (error.status === undefined || error.status === 429 || error.status >= 500);
}

export async function pollUntilHealthy(getDeployment: () => Promise<Deployment>, options: WaitOptions): Promise<WaitOutcome> {
  const now = options.now ?? Date.now;
  const start = now();
  let last: Deployment | undefined;
  let failures = 0;
  for (;;) {
    try {
      last = await getDeployment();
      failures = 0;
    } catch (error) {
      // The API being unreachable for a while says nothing about the Deployment: keep asking, within --wait-time.
      const elapsed = now() - start;
      if (!isTransient(error) || options.signal?.aborted || elapsed >= options.timeoutMs) throw error;
      failures++;
      options.onStatus?.(`(the Astro API did not answer: ${(error as Error).message}; asking again)`);
      const delay = Math.max(options.intervalMs, backoffDelay({ baseDelayMs: options.intervalMs, maxDelayMs: 30_000 }, failures));
      await sleep(Math.min(delay, Math.max(0, options.timeoutMs - elapsed)), options.signal);
      continue;
    }
    options.onStatus?.(last.status);
    const other = replacedBy(last, options);
    if (other) {
      throw new UserError(`Deployment ${last.name} now runs another deploy (${other}): this deploy was replaced before it became healthy.`, {
        nextStep: 'Another deploy to this Deployment finished after this one. Check the Deployment in the Astro UI to see which code it runs.',
      });
    }
    if ((last.status === 'HEALTHY' || last.status === 'HIBERNATING') && runsThisDeploy(last, options.expect)) {
      return { status: last.status, deployment: last, waitedMs: now() - start };
    }
    if (last.status === 'UNHEALTHY' && triesThisDeploy(last, options.expect)) {
      throw new UserError(`Deployment ${last.name} is UNHEALTHY after the deploy${last.statusReason ? `: ${last.statusReason}` : ''}`, {
        nextStep: 'Check the Deployment in the Astro UI for its logs; fix the cause and deploy again.',
      });
    }
    const elapsed = now() - start;
    if (elapsed >= options.timeoutMs) {
      throw new UserError(`timed out waiting for the Deployment to enter a Healthy state (last status ${last.status} after ${Math.round(elapsed / 1000)}s)`, {
        nextStep: 'The deploy was accepted; the Deployment may still become healthy. Check it in the Astro UI, or deploy with a longer --wait-time.',
      });
    }
    await sleep(Math.min(options.intervalMs, Math.max(0, options.timeoutMs - elapsed)), options.signal);
  }
}

/** `300s`, `5m`, `1h30m`, `90` (seconds), like Go's durations. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const m of trimmed.matchAll(re)) {
    if (m.index !== consumed) return undefined;
    consumed += m[0].length;
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
  }
  return consumed === trimmed.length && consumed > 0 ? Math.round(total) : undefined;
}
