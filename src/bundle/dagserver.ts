/**
 * DAG-only deploys to Astronomer Software: the DAG bundle goes to the Deployment's DAG server as a multipart
 * upload (`file` + `description`), authorised with the raw Houston token.
 *
 * Retries follow Astronomer's CLI: up to 8 attempts, the delay doubling from 1 s; a 4xx answer stops at once
 * (retrying cannot fix a bad token or a refused bundle), anything else that is not exactly 200 is retried.
 */
import { InterruptedError, UserError } from '../errors.js';
import type { FetchPort } from '../platform/http.js';

export type DagServerEvent =
  | { type: 'attempt'; attempt: number; maxAttempts: number }
  | { type: 'retry'; attempt: number; delayMs: number; reason: string };

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
}

export interface DagServerUpload {
  attempts: number;
  /** The server's answer body (JSON when it sent JSON). */
  response: unknown;
}

export const DAG_SERVER_MAX_ATTEMPTS = 8;

type Attempt =
  | { kind: 'ok'; body: string }
  | { kind: 'refused'; status: number; body: string }
  | { kind: 'retryable'; status?: number; body?: string; reason: string };

export async function uploadToDagServer(options: UploadToDagServerOptions): Promise<DagServerUpload> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? DAG_SERVER_MAX_ATTEMPTS);
  const baseDelay = options.baseDelayMs ?? 1000;
  const emit = options.onProgress ?? (() => undefined);
  let last: Attempt | undefined;

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    throwIfAborted(options.signal);
    emit({ type: 'attempt', attempt, maxAttempts });
    last = await attemptUpload(options);
    if (last.kind === 'ok') return { attempts: attempt, response: parseBody(last.body) };
    if (last.kind === 'refused') break;
    if (attempt < maxAttempts) {
      const delayMs = baseDelay * 2 ** (attempt - 1);
      emit({ type: 'retry', attempt: attempt + 1, delayMs, reason: last.reason });
      await sleep(delayMs, options.signal);
    }
  }

  if (last?.kind === 'refused' || (last?.kind === 'retryable' && last.status !== undefined)) {
    const status = last.status!;
    throw new UserError(`file upload failed. Status code: ${status} and Message: ${cleanErrorBody(last.body ?? '')}`, {
      nextStep: nextStepFor(status),
    });
  }
  throw new UserError(`file upload failed: ${last?.kind === 'retryable' ? last.reason : 'no attempt was made'}`, {
    nextStep: `The DAG server at ${new URL(options.url).origin} could not be reached after ${maxAttempts} attempts. Check the network and deploy again.`,
  });
}

async function attemptUpload(options: UploadToDagServerOptions): Promise<Attempt> {
  const doFetch = options.fetch ?? fetch;
  const form = new FormData();
  form.append('file', new Blob([options.data], { type: 'application/gzip' }), options.filename ?? 'dags.tar.gz');
  form.append('description', options.description);
  const timeout = AbortSignal.timeout(options.attemptTimeoutMs ?? 10 * 60_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await doFetch(options.url, { method: 'POST', headers: { authorization: options.token }, body: form, signal });
  } catch (error) {
    throwIfAborted(options.signal);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = timeout.aborted ? 'the DAG server did not answer in time' : (cause?.code ?? cause?.message ?? (error as Error).message);
    return { kind: 'retryable', reason };
  }
  const body = await response.text().catch(() => '');
  if (response.status === 200) return { kind: 'ok', body };
  if (response.status >= 400 && response.status < 500) return { kind: 'refused', status: response.status, body };
  return { kind: 'retryable', status: response.status, body, reason: `status ${response.status}` };
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

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', 'The DAG upload was interrupted.');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', 'The DAG upload was interrupted.'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new InterruptedError(signal!.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', 'The DAG upload was interrupted.'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
