/**
 * The browser half of the Astro login: the authorize URL, and a one-shot callback server on 127.0.0.1 that
 * receives the authorization code (or the refusal) when the browser is redirected back.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.js';
import type { AuthConfig } from '../platform/astro/schemas.js';

/** Astronomer's CLI always listens here, and Astro's login service expects this redirect URI. */
export const DEFAULT_CALLBACK_PORT = 12345;
export const DEFAULT_CALLBACK_TIMEOUT_MS = 300_000;
const CALLBACK_PATH = '/callback';

export interface AuthorizeUrlParams {
  authConfig: AuthConfig;
  redirectUri: string;
  codeChallenge: string;
  state: string;
}

export function authorizeUrl({ authConfig, redirectUri, codeChallenge, state }: AuthorizeUrlParams): string {
  const query = new URLSearchParams({
    prompt: 'login',
    audience: authConfig.audience,
    client_id: authConfig.clientId,
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    response_type: 'code',
    response_mode: 'query',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
  });
  // URLSearchParams writes spaces as "+"; "%20" is what authorization servers reliably decode as a space.
  return `${authConfig.domainUrl}authorize?${query.toString().replaceAll('+', '%20')}`;
}

export class LoginTimeoutError extends UserError {
  override readonly kind = 'login-timeout';
}

export class LoginDeniedError extends UserError {
  override readonly kind = 'login-denied';
}

export interface CallbackServerOptions {
  /** 0 picks any free port. */
  port: number;
  /** The `state` sent in the authorize URL; callbacks without it are refused. */
  state: string;
  /** Where to send the browser after a successful login (else a small page of our own). */
  successRedirect?: string;
  /** Where to send the browser after a refused login (else a small page of our own). */
  deniedRedirect?: string;
}

export interface CallbackServer {
  port: number;
  /** `http://localhost:<port>/callback`: the form Astronomer's CLI registers with Astro. */
  redirectUri: string;
  /** Resolves with the authorization code; rejects on a refusal, the timeout, or the signal. Closes the server. */
  waitForCode(timeoutMs: number, signal?: AbortSignal): Promise<string>;
  close(): Promise<void>;
}

type Outcome = { code: string } | { error: UserError };

export async function startCallbackServer(options: CallbackServerOptions): Promise<CallbackServer> {
  let settle: ((outcome: Outcome) => void) | undefined;
  let early: Outcome | undefined;
  let done = false;

  const finish = (outcome: Outcome): void => {
    done = true;
    if (settle) settle(outcome);
    else early = outcome;
  };

  const server = createServer((req, res) => handle(req, res));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== CALLBACK_PATH) return page(res, 404, 'Not found', 'This address only receives the astro login callback.');
    if (req.method !== 'GET') return page(res, 405, 'Method not allowed', 'The login callback must be a GET request.');
    if (done) return page(res, 410, 'Login already finished', 'This astro login has already finished. You can close this tab.');
    if (url.searchParams.get('state') !== options.state) {
      // Not ours (stale tab, forged link): refuse it but keep waiting for the real callback.
      return page(res, 400, 'Unknown login attempt', 'This login link does not belong to the astro login that is running. Start again from the terminal.');
    }
    const error = url.searchParams.get('error');
    if (error !== null) {
      const description = url.searchParams.get('error_description');
      redirectOrPage(res, options.deniedRedirect, 'Login refused', 'astro was not authorized. You can close this tab.');
      return finish({
        error: new LoginDeniedError(`Could not authorize your device: ${error}${description ? `: ${description}` : ''}`, {
          nextStep: 'Run astro login again and allow access in the browser.',
        }),
      });
    }
    const code = url.searchParams.get('code');
    if (!code) return page(res, 400, 'Missing code', 'The login callback carried neither a code nor an error.');
    redirectOrPage(res, options.successRedirect, 'Logged in', 'astro is now logged in. You can close this tab and return to the terminal.');
    finish({ code });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new UserError(`Port ${options.port} on 127.0.0.1 is already in use, so astro cannot receive the login callback.`, {
            cause: error,
            nextStep:
              'Another astro login may still be running: finish or stop it. To use another port: astro config set login.callback_port <port> (0 = any free port; Astro itself expects 12345).',
          }),
        );
      } else {
        reject(new UserError(`Cannot start the login callback server: ${error.message}`, { cause: error }));
      }
    });
    server.listen(options.port, '127.0.0.1', () => resolve());
  });

  const port = (server.address() as AddressInfo).port;

  const close = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    port,
    redirectUri: `http://localhost:${port}${CALLBACK_PATH}`,
    close,
    async waitForCode(timeoutMs, signal) {
      try {
        const outcome =
          early ??
          (await new Promise<Outcome>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                resolve({
                  error: new LoginTimeoutError('the operation has timed out', {
                    nextStep: `No login arrived from the browser within ${Math.round(timeoutMs / 1000)} s. Run astro login again.`,
                  }),
                }),
              timeoutMs,
            );
            const onAbort = (): void => {
              clearTimeout(timer);
              reject(signal?.reason instanceof Error ? signal.reason : new UserError('The login was cancelled.'));
            };
            if (signal?.aborted) return onAbort();
            signal?.addEventListener('abort', onAbort, { once: true });
            settle = (o) => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', onAbort);
              resolve(o);
            };
          }));
        if ('error' in outcome) throw outcome.error;
        return outcome.code;
      } finally {
        done = true;
        await close();
      }
    },
  };
}

function redirectOrPage(res: ServerResponse, location: string | undefined, title: string, text: string): void {
  if (location) {
    res.writeHead(302, { location, connection: 'close', 'cache-control': 'no-store' });
    res.end();
  } else {
    page(res, 200, title, text);
  }
}

function page(res: ServerResponse, status: number, title: string, text: string): void {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>astro: ${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', connection: 'close', 'cache-control': 'no-store' });
  res.end(body);
}
