/**
 * A small client for Houston, the GraphQL API of Astronomer Software. graphql-request is loaded only when a
 * Software command runs, so Astro commands never pay for it.
 */
import type * as z from 'zod';
import { ApiError, DEFAULT_RETRY, nodeFetch, type FetchPort } from '../http.js';
import { isRetryableNetworkError, isRetryableStatus, networkErrorCode, parseRetryAfter, retry, type RetryPolicy } from '../../util/retry.js';
import { CHECKED_ONCE } from '../../util/checked-once.js';

export class HoustonError extends ApiError {
  override readonly kind = 'houston';
}

const PERMISSION_ERRORS = ['You do not have the appropriate permissions for that', 'AUTH_TOKEN_REFRESH_FAILED'];

/** Houston's error texts, turned into the messages users of Astronomer's CLI know. */
export function houstonErrorMessage(message: string): string {
  if (PERMISSION_ERRORS.some((known) => message.includes(known))) {
    return 'you do not have the appropriate permissions for that: Your token has expired. Please log in again';
  }
  if (message.includes('Cannot query field')) {
    return `Some fields requested by the CLI are not available in the server schema.: ${message}`;
  }
  return message;
}

export interface HoustonClientOptions {
  url: string;
  /** The raw Houston token (no `Bearer`); omitted for unauthenticated queries such as authConfig. */
  token?: string;
  fetch?: FetchPort;
  retry?: RetryPolicy;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

export interface HoustonClient {
  request<T>(query: string, variables: Record<string, unknown> | undefined, schema: z.ZodType<T>, signal?: AbortSignal): Promise<T>;
}

/**
 * graphql-request's fetch, sent through the API clients' node:http fetch (nodeFetch): the global fetch compiles undici
 * in the process that first calls it (a bare process's first request: 52 ms through fetch, 37 through node:http).
 * graphql-request hands over its headers as a Headers object and reads `ok` from the answer.
 */
function graphqlFetch(port: FetchPort): typeof fetch {
  const send = async (input: string | URL | Request, init: RequestInit = {}) => {
    const answer = await port(String(input), { ...init, headers: Object.fromEntries(new Headers(init.headers).entries()) });
    return { status: answer.status, ok: answer.status >= 200 && answer.status < 300, headers: answer.headers, text: () => answer.text() };
  };
  return send as unknown as typeof fetch;
}

export function createHoustonClient(options: HoustonClientOptions): HoustonClient {
  return {
    async request(query, variables, schema, signal) {
      const { GraphQLClient, ClientError } = await import('graphql-request');
      const client = new GraphQLClient(options.url, {
        fetch: graphqlFetch(options.fetch ?? nodeFetch),
        headers: { accept: 'application/json', ...(options.token ? { authorization: options.token } : {}) },
      });
      // A query can be asked again; a mutation only when it surely did not arrive or the server said "not now".
      const idempotent = !/^\s*mutation\b/.test(query);
      let data: unknown;
      try {
        const answer = await retry(() => client.rawRequest({ query, variables, signal }), {
          policy: options.retry ?? DEFAULT_RETRY,
          signal,
          classify: (error) => {
            if (error instanceof ClientError) {
              const status = error.response.status;
              const retryable = isRetryableStatus(status) && (idempotent || status === 429 || status === 503) && !error.response.errors?.length;
              return retryable
                ? { retry: true, reason: `HTTP ${status}`, retryAfterMs: parseRetryAfter(headerOf(error.response, 'retry-after')) }
                : { retry: false };
            }
            const refused = networkErrorCode(error) === 'ECONNREFUSED';
            return (idempotent || refused) && isRetryableNetworkError(error)
              ? { retry: true, reason: `network error: ${(error as Error).message}` }
              : { retry: false };
          },
          onRetry: options.onRetry,
        });
        data = answer.data;
      } catch (error) {
        if (signal?.aborted) throw error;
        // ClientError's own message embeds the request variables (passwords): build ours from its parts only.
        if (error instanceof ClientError) {
          const { status, errors, body } = error.response as { status: number; errors?: { message?: string }[]; body?: string };
          const first = errors?.[0]?.message;
          if (first) throw new HoustonError(houstonErrorMessage(first), status);
          throw new HoustonError(`API error (${status}): ${typeof body === 'string' ? body.slice(0, 500) : ''}`.trimEnd(), status);
        }
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        if (error instanceof TypeError && cause) {
          throw new HoustonError(`Could not reach Houston at ${new URL(options.url).origin}: ${cause.code ?? cause.message ?? error.message}`, undefined, {
            nextStep: 'Check the domain you logged in to and your network connection.',
          });
        }
        throw new HoustonError(`Houston at ${new URL(options.url).origin} did not answer with a GraphQL response: ${(error as Error).message}`, undefined);
      }
      const parsed = schema.safeParse(data, CHECKED_ONCE);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new HoustonError(`Houston answered in an unexpected shape (${issue?.path.join('.') || 'data'}: ${issue?.message}).`, 200);
      }
      return parsed.data;
    },
  };
}

function headerOf(response: { headers?: unknown }, name: string): string | null {
  const headers = response.headers as { get?: (n: string) => string | null } | undefined;
  return typeof headers?.get === 'function' ? headers.get(name) : null;
}
