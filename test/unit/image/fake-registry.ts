/**
 * A registry server for unit tests, behind a token realm at `/token` as docker-registry is: the realm takes the
 * Basic credentials `cli:secret` and answers the token `tokenFor(scope)`; every other request goes to `handle`.
 * Every request is recorded in `seen` (`GET /token?<scope>` for the realm's).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  seen: string[];
  close(): Promise<void>;
}

export async function startFakeRegistry(
  tokenFor: (scope: string) => string,
  handle: (req: http.IncomingMessage, res: http.ServerResponse, url: URL, host: string) => void,
): Promise<FakeRegistry> {
  const seen: string[] = [];
  let host = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push(`${req.method} ${url.pathname}${url.pathname === '/token' ? `?${url.searchParams.get('scope')}` : ''}`);
    if (url.pathname !== '/token') return handle(req, res, url, host);
    const ok = req.headers.authorization === `Basic ${Buffer.from('cli:secret').toString('base64')}`;
    res
      .writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
      .end(ok ? JSON.stringify({ token: tokenFor(url.searchParams.get('scope') ?? '') }) : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
