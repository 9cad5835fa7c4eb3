/**
 * A small JSON-over-HTTP client on top of fetch: answers are sorted into ok / retryable / unauthorized /
 * client error, retryable ones are retried with backoff, and every error becomes an ApiError with the
 * server's message.
 */
import http from 'node:http';
import https from 'node:https';
import type * as z from 'zod';
import { UserError } from '../errors.js';
import { usingPreconnected } from '../util/preconnect.js';
import { isRetryableNetworkError, isRetryableStatus, networkErrorCode, parseRetryAfter, retry, type RetryPolicy, type RetryVerdict } from '../util/retry.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

/** API calls: five attempts, from a quarter second up to eight. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000 };

/** What the clients read of an answer; fetch's Response is one. */
export interface FetchAnswer {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export type FetchPort = (input: string, init: RequestInit) => Promise<FetchAnswer>;

// Kept-alive connections: a deploy's API calls go to one host, and each new connection costs a round trip (two
// with TLS). Idle sockets do not keep the process alive (the agent unrefs them), and are closed after 4 s (undici's
// default too), before a server with Node's default keep-alive timeout (5 s) closes one under a request: a POST on a
// socket closed under it could not be sent again safely.
// A connection opened early (util/preconnect.ts: the registry's, while a deploy's reads start) is taken first.
// Each is made on its first request (node:https loads only for an https origin).
const agents: { http?: http.Agent; https?: https.Agent } = {};
/** The kept-alive agent of every request this process makes with nodeFetch (and of a push's registry relay). */
export const keptAliveAgent = (secure: boolean): http.Agent =>
  secure
    ? (agents.https ??= usingPreconnected(new https.Agent({ keepAlive: true, timeout: 4_000 }), 'https:'))
    : (agents.http ??= usingPreconnected(new http.Agent({ keepAlive: true, timeout: 4_000 }), 'http:'));

/** undici's wording for a connection closed before the answer, which the clients' messages and retries know. */
function closedEarly(error: NodeJS.ErrnoException): Error {
  return error.code === 'ECONNRESET' && error.message === 'socket hang up'
    ? Object.assign(new Error('other side closed', { cause: error }), { code: 'UND_ERR_SOCKET' })
    : error;
}

/**
 * fetch's contract (a TypeError "fetch failed" with the socket error as cause; a broken body rejects text()) on
 * node:http, whose modules Node has already loaded: global fetch first compiles undici, 25-35 ms of every command.
 */
export const nodeFetch: FetchPort = (input, init) =>
  new Promise<FetchAnswer>((resolve, reject) => {
    const url = new URL(input);
    const secure = url.protocol === 'https:';
    const failed = (error: Error) => (init.signal?.aborted ? (init.signal.reason ?? error) : new TypeError('fetch failed', { cause: closedEarly(error) }));
    const body = typeof init.body === 'string' ? init.body : undefined;
    const headers: Record<string, string> = { accept: '*/*', ...(init.headers as Record<string, string> | undefined) };
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const request = (secure ? https : http).request(
      url,
      { method: init.method ?? 'GET', headers, agent: keptAliveAgent(secure), signal: init.signal ?? undefined },
      (response) => {
        const text = new Promise<string>((done, broke) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
          response.on('error', (error) => broke(new TypeError('terminated', { cause: error })));
          const cut = () => broke(new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }));
          response.on('aborted', cut);
          // A connection cut in the middle of the answer may end the stream with neither 'end' nor 'error'.
          response.on('close', () => {
            if (!response.complete) cut();
          });
        });
        text.catch(() => undefined);
        resolve({
          status: response.statusCode ?? 0,
          headers: {
            get: (name) => {
              const value = response.headers[name.toLowerCase()];
              return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
            },
          },
          text: () => text,
        });
      },
    );
    request.on('error', (error) => reject(failed(error)));
    request.end(body);
  });

export class ApiError extends UserError {
  override readonly kind: string = 'api';
  constructor(
    message: string,
    readonly status: number | undefined,
    options: { nextStep?: string; cause?: unknown; requestId?: string } = {},
  ) {
    super(message, options);
    this.requestId = options.requestId;
  }
  readonly requestId?: string;
}

export class UnauthorizedError extends ApiError {
  override readonly kind = 'unauthorized';
}

export interface RequestOptions<T> {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  schema: z.ZodType<T>;
  /** POSTs that create things are retried only when the request surely did not arrive. */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export interface HttpClientOptions {
  baseUrl: string;
  headers: () => Record<string, string>;
  fetch?: FetchPort;
  retry?: RetryPolicy;
  /** Describes the service in errors, e.g. "the Astro API". */
  service: string;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

/** Query keys sorted, arrays as repeated keys, as Astronomer's generated client sends them. */
export function buildQuery(query: RequestOptions<unknown>['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** A failed attempt, kept apart from the error users see until the retries are over. */
class AttemptFailure extends Error {
  constructor(readonly failure: { kind: 'unreachable' | 'cut-off'; error: unknown } | { kind: 'status'; status: number; body: string; retryAfterMs?: number }) {
    super(failure.kind);
  }
}

export class HttpClient {
  constructor(private readonly options: HttpClientOptions) {}

  async request<T>(req: RequestOptions<T>): Promise<T> {
    const method = req.method ?? 'GET';
    const idempotent = req.idempotent ?? (method === 'GET' || method === 'PUT' || method === 'DELETE');
    const url = `${this.options.baseUrl.replace(/\/$/, '')}/${req.path.replace(/^\//, '')}${buildQuery(req.query)}`;
    const doFetch = this.options.fetch ?? nodeFetch;
    let answer: { text: string; status: number };
    try {
      answer = await retry(
        async () => {
          let response: FetchAnswer;
          try {
            response = await doFetch(url, {
              method,
              headers: { ...this.options.headers(), ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
              body: req.body === undefined ? undefined : JSON.stringify(req.body),
              signal: req.signal,
            });
          } catch (error) {
            throw new AttemptFailure({ kind: 'unreachable', error });
          }
          if (response.status === 200 || response.status === 204) {
            // The body can still break after the status arrived (a connection reset mid-answer): that is a transport
            // failure like any other, retried when the request is safe to repeat.
            try {
              return { text: await response.text(), status: response.status };
            } catch (error) {
              throw new AttemptFailure({ kind: 'cut-off', error });
            }
          }
          const body = await response.text().catch(() => '');
          throw new AttemptFailure({ kind: 'status', status: response.status, body, retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) });
        },
        {
          policy: this.options.retry ?? DEFAULT_RETRY,
          signal: req.signal,
          classify: (error) => classifyAttempt(error, idempotent),
          onRetry: ({ attempt, delayMs, reason }) => this.options.onRetry?.({ attempt: attempt - 1, delayMs, reason }),
        },
      );
    } catch (error) {
      if (!(error instanceof AttemptFailure)) throw error;
      const { failure } = error;
      if (failure.kind === 'status') throw this.errorFor(failure.status, failure.body);
      if (failure.kind === 'cut-off') {
        throw new ApiError(
          `The connection to ${this.options.service} broke while its answer to ${new URL(url).pathname} was read: ${describeNetworkError(failure.error)}`,
          undefined,
          { cause: failure.error, nextStep: 'Check your network connection and try again.' },
        );
      }
      throw new ApiError(`Could not reach ${this.options.service} at ${new URL(url).origin}: ${describeNetworkError(failure.error)}`, undefined, {
        cause: failure.error,
        nextStep: 'Check your network connection and the domain of your current context (astro context list).',
      });
    }
    return this.decode(answer.text, answer.status, req.schema, url);
  }

  private decode<T>(text: string, status: number, schema: z.ZodType<T>, url: string): T {
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch (error) {
      throw new ApiError(`${this.options.service} answered ${new URL(url).pathname} with something that is not JSON.`, status, { cause: error });
    }
    const parsed = schema.safeParse(json, CHECKED_ONCE);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(
        `${this.options.service} answered ${new URL(url).pathname} in an unexpected shape (${issue?.path.join('.') || 'body'}: ${issue?.message}).`,
        status,
        { cause: parsed.error, nextStep: 'This usually means astro and the platform disagree on the API version; update astro.' },
      );
    }
    return parsed.data;
  }

  private errorFor(status: number, body: string): ApiError {
    let message: string | undefined;
    let requestId: string | undefined;
    try {
      const json = JSON.parse(body) as { message?: unknown; requestId?: unknown };
      if (typeof json.message === 'string') message = json.message;
      if (typeof json.requestId === 'string') requestId = json.requestId;
    } catch {
      // Not JSON: fall through to the generic message.
    }
    const text = message ?? `failed to perform request, status ${status}`;
    if (status === 401) {
      return new UnauthorizedError(text, status, {
        requestId,
        nextStep: 'Your session is not valid any more. Run astro login (or check ASTRO_API_TOKEN) and try again.',
      });
    }
    if (status === 403) {
      return new ApiError(text, status, {
        requestId,
        nextStep: 'Your user or API token has no access to this. Check the organization and workspace of your context.',
      });
    }
    return new ApiError(text, status, { requestId });
  }
}

/** A request that surely did not arrive (refused) is safe to repeat even when it creates something. */
function classifyAttempt(error: unknown, idempotent: boolean): RetryVerdict {
  if (!(error instanceof AttemptFailure)) return { retry: false };
  const { failure } = error;
  if (failure.kind === 'status') {
    const retryable = isRetryableStatus(failure.status) && (idempotent || failure.status === 429 || failure.status === 503);
    return retryable ? { retry: true, reason: `HTTP ${failure.status}`, retryAfterMs: failure.retryAfterMs } : { retry: false };
  }
  if (failure.kind === 'cut-off') return idempotent ? { retry: true, reason: `answer cut off: ${describeNetworkError(failure.error)}` } : { retry: false };
  const refused = networkErrorCode(failure.error) === 'ECONNREFUSED';
  return (idempotent || refused) && isRetryableNetworkError(failure.error)
    ? { retry: true, reason: `network error: ${(failure.error as Error).message}` }
    : { retry: false };
}

const NETWORK_ERROR_TEXT: Record<string, string> = {
  UND_ERR_SOCKET: 'the connection closed before the answer was complete',
  ECONNRESET: 'the connection was reset',
  ECONNREFUSED: 'the connection was refused',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer arrived in time',
  UND_ERR_BODY_TIMEOUT: 'the answer stalled',
  ENOTFOUND: 'the host name could not be resolved',
  EAI_AGAIN: 'the host name could not be resolved (DNS is not answering)',
};

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code) return NETWORK_ERROR_TEXT[code] ? `${NETWORK_ERROR_TEXT[code]} (${code})` : code;
  return cause?.message ?? (error as Error).message;
}
