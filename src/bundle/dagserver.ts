/**
 * DAG-only deploys to Astronomer Software: the DAG bundle goes to the Deployment's DAG server as a multipart
 * upload (`file` + `description`), authorised with the raw Houston token.
 *
 * Retries follow Astronomer's CLI: up to 8 attempts, the delay doubling from 1 s; a 4xx answer stops at
 * once (retrying cannot fix a bad token or a refused bundle), anything else that is not exactly 200 is retried.
 */
import { UserError } from '../errors.js';
import { AttemptTimeoutError, retry } from '../util/retry.js';
import type { FetchAnswer, FetchPort } from '../platform/http.js';

export type DagServerEvent = { type: 'attempt'; attempt: number; maxAttempts: number } | { type: 'retry'; attempt: number; delayMs: number; reason: string };

export interface UploadToDagServerOptions {
  url: string;
  /** The raw Houston token, sent as `authorization`. */
  token: string;
  /** The gzip-compressed tar of the DAGs. */
  data: Buffer;
  description: string;
  /** Name of the file part; the server only records it. */
  filename?: string;
  fetch?: FetchPort;
  maxAttempts?: number;
  /** Delay before the first retry; doubles each retry. Default 1000 ms. */
  baseDelayMs?: number;
  /** Per-attempt limit, so a server that never answers cannot hang a deploy. Default 10 minutes. */
  attemptTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (event: DagServerEvent) => void;
  /** Jitter source in [0, 1); injectable for tests. */
  random?: () => number;
}

export interface DagServerUpload {
  attempts: number;
  /** The server's answer body (JSON when it sent JSON). */
  response: unknown;
}

export const DAG_SERVER_MAX_ATTEMPTS = 8;

export async function uploadToDagServer(options: UploadToDagServerOptions): Promise<DagServerUpload> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? DAG_SERVER_MAX_ATTEMPTS);
  const baseDelayMs = options.baseDelayMs ?? 1000;
  const emit = options.onProgress ?? (() => undefined);
  let attempts = 0;
  try {
    const body = await retry(
      async (attempt, signal) => {
        attempts = attempt;
        emit({ type: 'attempt', attempt, maxAttempts });
        return attemptUpload(options, signal);
      },
      {
        policy: {
          attempts: maxAttempts,
          baseDelayMs,
          maxDelayMs: baseDelayMs * 2 ** (maxAttempts - 1),
          attemptTimeoutMs: options.attemptTimeoutMs ?? 10 * 60_000,
        },
        signal: options.signal,
        // Astronomer's schedule exactly (1 s, 2 s, 4 s, …) unless a test injects jitter.
        random: options.random ?? (() => 1),
        interruptedMessage: 'The DAG upload was interrupted.',
        classify: (error) => {
          const failed = asFailure(error);
          return failed?.kind === 'retryable' ? { retry: true, reason: failed.reason } : { retry: false };
        },
        onRetry: ({ attempt, delayMs, reason }) => emit({ type: 'retry', attempt, delayMs, reason }),
      },
    );
    return { attempts, response: parseBody(body) };
  } catch (error) {
    const failed = asFailure(error);
    if (!failed) throw error;
    if (failed.kind === 'refused' || failed.status !== undefined) {
      throw new UserError(`file upload failed. Status code: ${failed.status} and Message: ${cleanErrorBody(failed.body ?? '')}`, {
        nextStep: nextStepFor(failed.status!),
      });
    }
    throw new UserError(`file upload failed: ${failed.reason}`, {
      nextStep: `The DAG server at ${new URL(options.url).origin} could not be reached after ${attempts} attempts. Check the network and deploy again.`,
    });
  }
}

type Failed = { kind: 'refused'; status: number; body: string } | { kind: 'retryable'; status?: number; body?: string; reason: string };

class DagServerFailure extends Error {
  constructor(readonly failed: Failed) {
    super(failed.kind === 'refused' ? `status ${failed.status}` : failed.reason);
  }
}

function asFailure(error: unknown): Failed | undefined {
  if (error instanceof DagServerFailure) return error.failed;
  if (error instanceof AttemptTimeoutError) return { kind: 'retryable', reason: 'the DAG server did not answer in time' };
  return undefined;
}

/** One POST; resolves with the body of a 200, throws a DagServerFailure otherwise. */
async function attemptUpload(options: UploadToDagServerOptions, signal: AbortSignal): Promise<string> {
  const doFetch = options.fetch ?? fetch;
  const form = new FormData();
  form.append('file', new Blob([options.data], { type: 'application/gzip' }), options.filename ?? 'dags.tar.gz');
  form.append('description', options.description);
  let response: FetchAnswer;
  try {
    response = await doFetch(options.url, { method: 'POST', headers: { authorization: options.token }, body: form, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new DagServerFailure({ kind: 'retryable', reason: cause?.code ?? cause?.message ?? (error as Error).message });
  }
  const body = await response.text().catch(() => '');
  if (response.status === 200) return body;
  if (response.status >= 400 && response.status < 500) throw new DagServerFailure({ kind: 'refused', status: response.status, body });
  throw new DagServerFailure({ kind: 'retryable', status: response.status, body, reason: `status ${response.status}` });
}

const NOISY_KEYS = ['exceptions', 'args', 'path', 'status'];

/** The server's error body without the stack-trace-like keys it adds. */
export function cleanErrorBody(body: string): string {
  try {
    const json: unknown = JSON.parse(body);
    if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
      const copy = { ...(json as Record<string, unknown>) };
      for (const key of NOISY_KEYS) delete copy[key];
      return JSON.stringify(copy);
    }
  } catch {
    // Not JSON: shown as it came.
  }
  return body.trim();
}

function nextStepFor(status: number): string | undefined {
  if (status === 401 || status === 403) return 'The DAG server refused your token: run astro login again, or check your access to this Deployment.';
  if (status === 404) return 'The Deployment has no DAG server: check that its DAG deployment type is dag_deploy.';
  if (status === 413) return 'The DAG bundle is too large for the DAG server: move data files out of dags/ (e.g. into include/).';
  if (status >= 500) return 'The DAG server kept failing. Try again in a few minutes.';
  return undefined;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
