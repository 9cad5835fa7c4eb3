/**
 * A small JSON-over-HTTP client on top of fetch: answers are sorted into ok / retryable / unauthorized /
 * client error, retryable ones are retried with backoff, and every error becomes an ApiError with the
 * server's message.
 */
import type { z } from 'zod';
import { UserError } from '../errors.js';
import { backoffDelay, DEFAULT_RETRY, isRetryableNetworkError, isRetryableStatus, sleep, type RetryPolicy } from './retry.js';

export type FetchPort = (input: string, init: RequestInit) => Promise<Response>;

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

export class HttpClient {
  constructor(private readonly options: HttpClientOptions) {}

  async request<T>(req: RequestOptions<T>): Promise<T> {
    const method = req.method ?? 'GET';
    const idempotent = req.idempotent ?? (method === 'GET' || method === 'PUT' || method === 'DELETE');
    const url = `${this.options.baseUrl.replace(/\/$/, '')}/${req.path.replace(/^\//, '')}${buildQuery(req.query)}`;
    const policy = this.options.retry ?? DEFAULT_RETRY;
    const doFetch = this.options.fetch ?? fetch;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await doFetch(url, {
          method,
          headers: { ...this.options.headers(), ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
          signal: req.signal,
        });
      } catch (error) {
        if (req.signal?.aborted) throw error;
        const refused = (error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
        if ((idempotent || refused) && isRetryableNetworkError(error) && attempt < policy.attempts) {
          await this.wait(policy, attempt, `network error: ${(error as Error).message}`, req.signal);
          continue;
        }
        throw new ApiError(`Could not reach ${this.options.service} at ${new URL(url).origin}: ${describeNetworkError(error)}`, undefined, {
          cause: error,
          nextStep: 'Check your network connection and the domain of your current context (astro context list).',
        });
      }
      if (response.status === 200 || response.status === 204) {
        // The body can still break after the status arrived (a connection reset mid-answer): that is a transport
        // failure like any other, retried when the request is safe to repeat.
        let text: string;
        try {
          text = await response.text();
        } catch (error) {
          if (req.signal?.aborted) throw error;
          if (idempotent && attempt < policy.attempts) {
            await this.wait(policy, attempt, `answer cut off: ${describeNetworkError(error)}`, req.signal);
            continue;
          }
          throw new ApiError(`The connection to ${this.options.service} broke while its answer to ${new URL(url).pathname} was read: ${describeNetworkError(error)}`, undefined, {
            cause: error,
            nextStep: 'Check your network connection and try again.',
          });
        }
        return this.decode(text, response.status, req.schema, url);
      }
      const body = await response.text().catch(() => '');
      const retryableHere = isRetryableStatus(response.status) && (idempotent || response.status === 429 || response.status === 503);
      if (retryableHere && attempt < policy.attempts) {
        await this.wait(policy, attempt, `HTTP ${response.status}`, req.signal, retryAfterMs(response));
        continue;
      }
      throw this.errorFor(response.status, body);
    }
  }

  private async wait(policy: RetryPolicy, attempt: number, reason: string, signal?: AbortSignal, floorMs = 0): Promise<void> {
    const delayMs = Math.max(floorMs, backoffDelay(policy, attempt));
    this.options.onRetry?.({ attempt, delayMs, reason });
    await sleep(delayMs, signal);
  }

  private decode<T>(text: string, status: number, schema: z.ZodType<T>, url: string): T {
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch (error) {
      throw new ApiError(`${this.options.service} answered ${new URL(url).pathname} with something that is not JSON.`, status, { cause: error });
    }
    const parsed = schema.safeParse(json);
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
      return new UnauthorizedError(text, status, { requestId, nextStep: 'Your session is not valid any more. Run astro login (or check ASTRO_API_TOKEN) and try again.' });
    }
    if (status === 403) {
      return new ApiError(text, status, { requestId, nextStep: 'Your user or API token has no access to this. Check the organization and workspace of your context.' });
    }
    return new ApiError(text, status, { requestId });
  }
}

function retryAfterMs(response: Response): number {
  const header = response.headers.get('retry-after');
  if (!header) return 0;
  const seconds = Number(header);
  return Number.isFinite(seconds) ? Math.min(seconds * 1000, 30_000) : 0;
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
