/**
 * Minimal HTTP plumbing shared by every listener of the local platform: a router with `:param` segments,
 * a typed error that each listener renders in its own wire format, bounded body reading, and the request log
 * that tests read back through `/_platform/requests`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FieldError {
  code: string;
  field: string;
  message: string;
}

/** An error with an HTTP status; the listener's formatter decides what the body looks like. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: { fieldErrors?: FieldError[]; headers?: Record<string, string>; code?: string } = {},
  ) {
    super(message);
  }
}

export type ListenerName = 'platform' | 'houston' | 'blob-proxy' | 'view';

export interface RequestLogEntry {
  seq: number;
  listener: ListenerName;
  requestId: string;
  at: string;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string | string[]>;
  body?: unknown;
  status?: number;
  durationMs?: number;
  /** When the request arrived and when its answer was sent (epoch ms, sub-millisecond): how long the platform was busy with it. */
  startedAtMs?: number;
  finishedAtMs?: number;
  error?: string;
}

const redactedHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
const redactedFields = new Set(['password', 'client_secret', 'code', 'code_verifier', 'refresh_token', 'access_token', 'token', 'sig']);

export function redactHeaders(headers: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = redactedHeaders.has(name) ? redactAuthorization(value) : value;
  }
  return out;
}

/** Keeps the scheme (`Bearer`, `Basic`) so tests can still see which kind of credential was sent. */
function redactAuthorization(value: string | string[]): string {
  const text = Array.isArray(value) ? value.join(', ') : value;
  const space = text.indexOf(' ');
  return space > 0 && space < 10 ? `${text.slice(0, space)} [redacted]` : '[redacted]';
}

export function redactQuery(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key).map((v) => (redactedFields.has(key) ? '[redacted]' : v));
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

export function redactBody(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactBody(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactedFields.has(k) ? '[redacted]' : redactBody(v, depth + 1);
  return out;
}

export class RequestLog {
  private entries: RequestLogEntry[] = [];
  private seq = 0;
  constructor(private readonly max = 20_000) {}

  start(listener: ListenerName, req: IncomingMessage, url: URL, record = true): RequestLogEntry {
    const entry: RequestLogEntry = {
      seq: ++this.seq,
      listener,
      requestId: newRequestId(),
      at: new Date().toISOString(),
      startedAtMs: performance.timeOrigin + performance.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: redactQuery(url.searchParams),
      headers: redactHeaders(req.headers),
    };
    if (!record) return entry;
    this.entries.push(entry);
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
    return entry;
  }

  list(filter: { since?: number; listener?: string; pathPrefix?: string; method?: string } = {}): RequestLogEntry[] {
    return this.entries.filter(
      (e) =>
        (filter.since === undefined || e.seq > filter.since) &&
        (filter.listener === undefined || e.listener === filter.listener) &&
        (filter.pathPrefix === undefined || e.path.startsWith(filter.pathPrefix)) &&
        (filter.method === undefined || e.method === filter.method.toUpperCase()),
    );
  }

  get lastSeq(): number {
    return this.seq;
  }

  clear(): void {
    this.entries = [];
  }
}

export function newRequestId(): string {
  return `req_${randomBytes(9).toString('base64url')}`;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  log: RequestLogEntry;
  /** Raw body, read once and cached; bounded so a runaway client cannot exhaust memory. */
  body(limitBytes?: number): Promise<Buffer>;
  /** Body parsed as JSON; an empty body is `undefined`. Invalid JSON is a 400. */
  json(): Promise<unknown>;
  /** Body parsed as `application/x-www-form-urlencoded` (or JSON object, as OAuth servers commonly accept). */
  form(): Promise<Record<string, string>>;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

export class Router {
  private routes: Route[] = [];

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method: method.toUpperCase(), segments: splitPath(pattern), handler });
    return this;
  }

  /** Finds the handler; a path that exists under another method is a 405 with `Allow`. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } | { allow: string[] } | undefined {
    const parts = splitPath(pathname);
    const allow: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { handler: route.handler, params };
      allow.push(route.method);
    }
    return allow.length > 0 ? { allow: [...new Set(allow)] } : undefined;
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    let value: string;
    try {
      value = decodeURIComponent(parts[i]!);
    } catch {
      return undefined;
    }
    if (p.startsWith(':')) params[p.slice(1)] = value;
    else if (p !== value) return undefined;
  }
  return params;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), ...headers });
  res.end(html);
}

export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limitBytes) {
        failed = true;
        reject(new HttpError(413, `request body exceeds ${limitBytes} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => failed || resolve(Buffer.concat(chunks)));
    req.on('error', (error) => failed || reject(error));
  });
}

export type ErrorFormatter = (error: HttpError, ctx: RequestContext) => { body: unknown; headers?: Record<string, string> };

export interface ListenerOptions {
  name: ListenerName;
  router: Router;
  requests: RequestLog;
  formatError: ErrorFormatter;
  /** Requests not to record (e.g. tests reading the log itself). */
  skipLog?: (method: string, path: string) => boolean;
  /** Called for paths no route matches, before the 404; lets a listener add prefix-based handlers. */
  fallback?: Handler;
  onBug?: (error: unknown) => void;
}

export function createContext(req: IncomingMessage, res: ServerResponse, url: URL, log: RequestLogEntry): RequestContext {
  let cached: Promise<Buffer> | undefined;
  const ctx: RequestContext = {
    req,
    res,
    url,
    params: {},
    log,
    body(limitBytes = 10 * 1024 * 1024) {
      cached ??= readBody(req, limitBytes);
      return cached;
    },
    async json() {
      const raw = await ctx.body();
      if (raw.length === 0) return undefined;
      try {
        const value: unknown = JSON.parse(raw.toString('utf8'));
        log.body = redactBody(value);
        return value;
      } catch (error) {
        throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`);
      }
    },
    async form() {
      const raw = (await ctx.body()).toString('utf8');
      const type = String(req.headers['content-type'] ?? '');
      let fields: Record<string, string> = {};
      if (type.includes('application/json')) {
        const value = await ctx.json();
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
        for (const [k, v] of Object.entries(value)) if (typeof v === 'string' || typeof v === 'number') fields[k] = String(v);
      } else {
        fields = Object.fromEntries(new URLSearchParams(raw));
      }
      log.body = redactBody(fields);
      return fields;
    },
  };
  return ctx;
}

export function createListener(options: ListenerOptions): Server {
  const server = createServer((req, res) => {
    const started = performance.now();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const log = options.requests.start(options.name, req, url, !options.skipLog?.(method, url.pathname));
    const ctx = createContext(req, res, url, log);
    res.setHeader('x-request-id', log.requestId);
    res.on('finish', () => {
      log.status = res.statusCode;
      log.durationMs = Math.round(performance.now() - started);
      log.finishedAtMs = performance.timeOrigin + performance.now();
    });

    const run = async () => {
      const found = options.router.match(method, url.pathname);
      if (found && 'handler' in found) {
        ctx.params = found.params;
        await found.handler(ctx);
      } else if (found) {
        throw new HttpError(405, `method ${method} is not allowed on ${url.pathname}; allowed: ${found.allow.join(', ')}`, {
          headers: { allow: found.allow.join(', ') },
        });
      } else if (options.fallback) {
        await options.fallback(ctx);
      } else {
        throw new HttpError(404, `no route for ${method} ${url.pathname}`);
      }
    };
    run().catch((error: unknown) => {
      let httpError: HttpError;
      if (error instanceof HttpError) {
        httpError = error;
      } else {
        options.onBug?.(error);
        httpError = new HttpError(500, `internal error in the local platform: ${(error as Error)?.message ?? String(error)}`);
      }
      log.error = httpError.message;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const { body, headers } = options.formatError(httpError, ctx);
      // The rest of an unread body must be drained, or keep-alive clients see a broken connection.
      req.resume();
      sendJson(res, httpError.status, body, { ...httpError.extra.headers, ...headers });
    });
  });
  server.keepAliveTimeout = 5_000;
  return server;
}

export async function listen(server: NetServer, port: number, what: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`${what}: port ${port} on 127.0.0.1 is already in use (another local platform running? stop it, or pick other ports)`)
          : error,
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, '127.0.0.1');
  });
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/**
 * One port for plain HTTP and TLS: the first byte of a connection tells them apart (0x16 starts a TLS handshake), and
 * both end in the same request handler. Returns the front server to listen on and a close that ends every connection.
 */
export function dualProtocol(plain: Server, tls: { key: Buffer; cert: Buffer }): { front: NetServer; close(): Promise<void> } {
  const secure = createTlsServer(tls, (req, res) => plain.emit('request', req, res));
  const front = createNetServer((socket) => {
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      (chunk[0] === 0x16 ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
    socket.on('error', () => socket.destroy());
  });
  return {
    front,
    close: () =>
      new Promise<void>((resolve) => {
        if (!front.listening) return resolve();
        front.close(() => resolve());
        plain.closeAllConnections();
        secure.closeAllConnections();
      }),
  };
}
