/**
 * A fault-injecting HTTP reverse proxy for tests. It sits between the CLI and one upstream (the platform API, the
 * registry, the blob store) and, by rule and by count, answers with an error status, resets the connection before,
 * during or after the body, cuts a stream after N bytes, throttles bandwidth, or holds a request or its answer until
 * the test releases it. Everything it does is counted, so a test gates on counts ("the 2nd Put Block was cut"),
 * never on sleeps.
 *
 * The Host header is passed on unchanged: a registry builds its upload `Location` URLs from it, so follow-up
 * requests come back through the proxy too.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type Readable } from 'node:stream';

/** How injected error answers look: each upstream kind has its own error body. */
export type Flavor = 'astro-api' | 'registry' | 'azure-blob' | 'plain';

export interface RequestInfo {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  host: string;
  headers: IncomingHttpHeaders;
}

export interface RuleMatch {
  method?: string;
  /** A regex (string or RegExp) tested against the path (without the query). */
  path?: RegExp | string;
  host?: string;
  /** Query parameters that must be present; a string or RegExp value must also match. */
  query?: Record<string, true | string | RegExp>;
  where?: (request: RequestInfo) => boolean;
}

export type RuleAction =
  /** Answer with this status without forwarding. `code` goes into the error body (and `x-ms-error-code` for blobs). */
  | { status: number; code?: string; message?: string; headers?: Record<string, string> }
  /**
   * `before`: drop the connection without forwarding. `mid-body`: forward half of the request body (or, for requests
   * without one, half of the answer) and drop both connections. `after`: forward, let the upstream apply it, and drop
   * the connection instead of answering.
   */
  | { reset: 'before' | 'mid-body' | 'after' }
  /** Let N bytes of the request body (or, without one, of the answer) through, then drop both connections. */
  | { cutAfterBytes: number; stream?: 'request' | 'response' }
  /** Both directions at this rate. */
  | { throttleBytesPerSec: number }
  /** Keep the request (`request`) or the upstream's answer (`response`) until `release()`; see `held()`. */
  | { hold: 'request' | 'response' }
  | { delayMs: number };

export interface FaultRule {
  /** Names the rule in counters, `held()` and `release()`. */
  name?: string;
  match?: RuleMatch;
  action: RuleAction;
  /** How many matching requests get the action. Default 1. */
  count?: number | 'always';
  /** Let this many matching requests through untouched first. Default 0. */
  after?: number;
}

export type FaultKind = 'status' | 'reset-before' | 'reset-mid-body' | 'reset-after' | 'cut' | 'throttle' | 'hold' | 'delay';

export interface ProxyLogEntry {
  seq: number;
  method: string;
  path: string;
  query: string;
  /** Status the client received; undefined when the connection was dropped or the client went away. */
  status?: number;
  upstreamStatus?: number;
  requestBytes: number;
  responseBytes: number;
  fault?: FaultKind;
  rule?: string;
  /** Whether the upstream received the whole request (so it may have applied it). */
  forwarded: boolean;
  outcome: 'pending' | 'answered' | 'dropped' | 'client-gone' | 'upstream-error';
}

interface RuleState {
  rule: FaultRule;
  name: string;
  seen: number;
  injected: number;
}

interface Held {
  rule: string;
  entry: ProxyLogEntry;
  release: () => void;
}

export interface FaultProxyOptions {
  /** Upstream base URL (http://host:port). May be set later with setUpstream(). */
  upstream?: string;
  flavor?: Flavor;
  /** Port to listen on (127.0.0.1). Default 0 = any free port. */
  port?: number;
  name?: string;
}

export class FaultProxy {
  readonly name: string;
  readonly flavor: Flavor;
  readonly log: ProxyLogEntry[] = [];
  private upstream: URL | undefined;
  private server: Server | undefined;
  private rules: RuleState[] = [];
  private readonly heldNow: Held[] = [];
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];
  private readonly sockets = new Set<Socket>();
  private seq = 0;
  private unnamed = 0;
  port = 0;

  constructor(options: FaultProxyOptions = {}) {
    this.name = options.name ?? 'proxy';
    this.flavor = options.flavor ?? 'plain';
    if (options.upstream) this.setUpstream(options.upstream);
    this.requestedPort = options.port ?? 0;
  }

  private readonly requestedPort: number;

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `127.0.0.1:<port>`, the form a registry host takes. */
  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  setUpstream(url: string): void {
    this.upstream = new URL(url);
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.requestedPort, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.release();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Adds a rule; rules are tried in the order they were added. Returns its name. */
  add(rule: FaultRule): string {
    const name = rule.name ?? `rule-${++this.unnamed}`;
    this.rules.push({ rule, name, seen: 0, injected: 0 });
    return name;
  }

  /** Removes every rule and releases anything held; counters of past rules stay in `totals()`. */
  clearRules(): void {
    this.retired.push(...this.rules);
    this.rules = [];
    this.release();
  }

  private readonly retired: RuleState[] = [];

  /** Faults injected by one rule (current or cleared) or by all. */
  injected(rule?: string): number {
    return [...this.retired, ...this.rules].filter((r) => rule === undefined || r.name === rule).reduce((n, r) => n + r.injected, 0);
  }

  /** Requests a rule has matched so far (including those it let through with `after`). */
  matched(rule: string): number {
    return [...this.retired, ...this.rules].filter((r) => r.name === rule).reduce((n, r) => n + r.seen, 0);
  }

  totals(): { requests: number; injected: number; byKind: Partial<Record<FaultKind, number>> } {
    const byKind: Partial<Record<FaultKind, number>> = {};
    for (const e of this.log) if (e.fault) byKind[e.fault] = (byKind[e.fault] ?? 0) + 1;
    return { requests: this.log.length, injected: this.log.filter((e) => e.fault).length, byKind };
  }

  /** Log entries from `since` (a seq number, e.g. `proxy.mark()`). */
  entries(since = 0): ProxyLogEntry[] {
    return this.log.filter((e) => e.seq > since);
  }

  /** The current sequence number, to look at "what happened after this point" later. */
  mark(): number {
    return this.seq;
  }

  /** Resolves once `count` requests are held by `rule` (or any rule) at the same time or in all. */
  held(rule?: string, count = 1): Promise<void> {
    return this.until(() => this.log.filter((e) => e.fault === 'hold' && (rule === undefined || e.rule === rule)).length >= count);
  }

  /** Releases held requests / answers of one rule, or all. */
  release(rule?: string): void {
    for (let i = this.heldNow.length - 1; i >= 0; i--) {
      const h = this.heldNow[i]!;
      if (rule === undefined || h.rule === rule) {
        this.heldNow.splice(i, 1);
        h.release();
      }
    }
  }

  /** Resolves when `count` logged requests satisfy `test` (counting the ones already seen). */
  waitForRequests(test: (e: ProxyLogEntry) => boolean, count = 1): Promise<void> {
    return this.until(() => this.log.filter(test).length >= count);
  }

  private until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  private notify(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.test()) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private pick(info: RequestInfo): RuleState | undefined {
    for (const state of this.rules) {
      const { rule } = state;
      if (!matches(rule.match, info)) continue;
      const count = rule.count ?? 1;
      const after = rule.after ?? 0;
      state.seen++;
      if (state.seen <= after) continue;
      if (count !== 'always' && state.injected >= count) continue;
      state.injected++;
      return state;
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const info: RequestInfo = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, host: req.headers.host ?? '', headers: req.headers };
    const entry: ProxyLogEntry = {
      seq: ++this.seq,
      method: info.method,
      path: url.pathname,
      query: url.search,
      requestBytes: 0,
      responseBytes: 0,
      forwarded: false,
      outcome: 'pending',
    };
    this.log.push(entry);
    const settle = (outcome: ProxyLogEntry['outcome'], status?: number) => {
      if (entry.outcome !== 'pending') return;
      entry.outcome = outcome;
      if (status !== undefined) entry.status = status;
      this.notify();
    };
    res.on('finish', () => settle('answered', res.statusCode));
    res.on('close', () => settle(res.writableFinished ? 'answered' : 'client-gone'));

    const state = this.pick(info);
    const action = state?.rule.action;
    if (state) entry.rule = state.name;
    const mark = (kind: FaultKind) => {
      entry.fault = kind;
      this.notify();
    };

    if (!action) return this.forward(req, res, entry, settle);
    if ('status' in action) {
      mark('status');
      req.resume();
      req.on('end', () => this.answerError(req, res, action));
      return;
    }
    if ('reset' in action) {
      if (action.reset === 'before') {
        mark('reset-before');
        req.socket.destroy();
        settle('dropped');
        return;
      }
      if (action.reset === 'after') {
        mark('reset-after');
        return this.forward(req, res, entry, settle, { dropAnswer: true });
      }
      mark('reset-mid-body');
      const length = Number(req.headers['content-length'] ?? 0);
      const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
      if (hasBody) return this.forward(req, res, entry, settle, { cutRequestAfter: length > 0 ? Math.floor(length / 2) : 32 * 1024 });
      return this.forward(req, res, entry, settle, { cutResponseAtHalf: true });
    }
    if ('cutAfterBytes' in action) {
      mark('cut');
      const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
      const stream = action.stream ?? (hasBody ? 'request' : 'response');
      return this.forward(
        req,
        res,
        entry,
        settle,
        stream === 'request' ? { cutRequestAfter: action.cutAfterBytes } : { cutResponseAfter: action.cutAfterBytes },
      );
    }
    if ('throttleBytesPerSec' in action) {
      mark('throttle');
      return this.forward(req, res, entry, settle, { throttle: action.throttleBytesPerSec });
    }
    if ('delayMs' in action) {
      mark('delay');
      const timer = setTimeout(() => this.forward(req, res, entry, settle), action.delayMs);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    // hold
    if (action.hold === 'request') {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        // The client gave up while held: like a request lost on the way, it never reaches the upstream.
        if (entry.outcome === 'pending' && !req.socket.destroyed) this.forward(req, res, entry, settle);
      };
      req.socket.once('close', () => {
        const i = this.heldNow.findIndex((h) => h.entry === entry);
        if (i >= 0) this.heldNow.splice(i, 1);
        settle('client-gone');
      });
      req.pause();
      this.heldNow.push({ rule: state!.name, entry, release });
      mark('hold');
      return;
    }
    // Marked as held only once the answer is in: the upstream has applied the request by then.
    return this.forward(req, res, entry, settle, { holdAnswer: state!.name });
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    entry: ProxyLogEntry,
    settle: (outcome: ProxyLogEntry['outcome'], status?: number) => void,
    how: {
      dropAnswer?: boolean;
      cutRequestAfter?: number;
      cutResponseAfter?: number;
      cutResponseAtHalf?: boolean;
      throttle?: number;
      holdAnswer?: string;
    } = {},
  ): void {
    const upstream = this.upstream;
    if (!upstream) {
      this.answerError(req, res, { status: 502, message: `${this.name}: no upstream configured` });
      return;
    }
    const dropClient = () => {
      req.socket.destroy();
      settle('dropped');
    };
    const upstreamReq = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    let cut = false;
    upstreamReq.on('error', (error) => {
      if (cut) return;
      if (!res.headersSent) this.answerError(req, res, { status: 502, message: `${this.name}: upstream failed: ${error.message}` });
      else res.destroy();
      settle('upstream-error');
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });

    upstreamReq.on('response', (answer) => {
      entry.upstreamStatus = answer.statusCode;
      if (cut) {
        answer.resume();
        return;
      }
      if (how.dropAnswer) {
        answer.resume();
        answer.on('end', dropClient);
        return;
      }
      const send = () => {
        if (res.destroyed) {
          answer.resume();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        let limit = how.cutResponseAfter;
        if (how.cutResponseAtHalf) {
          const length = Number(answer.headers['content-length'] ?? 0);
          limit = length > 1 ? Math.floor(length / 2) : 0;
        }
        let body: Readable = answer;
        if (how.throttle) body = body.pipe(throttle(how.throttle));
        body
          .pipe(
            countingCut(
              limit,
              (n) => (entry.responseBytes += n),
              () => {
                answer.destroy();
                dropClient();
              },
            ),
          )
          .pipe(res);
      };
      if (how.holdAnswer) {
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          send();
        };
        res.on('close', () => {
          const i = this.heldNow.findIndex((h) => h.entry === entry);
          if (i >= 0) this.heldNow.splice(i, 1);
        });
        answer.pause();
        this.heldNow.push({ rule: how.holdAnswer, entry, release });
        entry.fault = 'hold';
        this.notify();
        return;
      }
      send();
    });

    let body: Readable = req;
    if (how.throttle) body = body.pipe(throttle(how.throttle));
    // A cut drops both connections once the part before it has been written to the upstream. Dropped at once, a cut on
    // a new upstream connection (no kept-alive one in the agent's pool) only cancels the connect: the upstream never
    // sees the request, and a cut meant to come half-way is a reset before the request.
    const upstreamGone = new Promise<void>((resolve) => upstreamReq.once('close', () => resolve()));
    let lastWrite: Promise<void> = Promise.resolve();
    /** Resolves once every byte the sink let through is written to the upstream's socket, or the upstream is gone. */
    const allSent = (): Promise<void> =>
      Promise.race([upstreamGone, sink.readableLength > 0 ? new Promise<void>((resolve) => sink.once('data', () => resolve())).then(allSent) : lastWrite]);
    const sink: Transform = countingCut(
      how.cutRequestAfter,
      (n) => (entry.requestBytes += n),
      () => {
        cut = true;
        void allSent().then(() => {
          upstreamReq.destroy();
          dropClient();
        });
      },
    );
    body.pipe(sink);
    sink.on('data', (chunk: Buffer) => {
      lastWrite = new Promise<void>((resolve) => {
        if (!upstreamReq.write(chunk, () => resolve())) {
          sink.pause();
          upstreamReq.once('drain', () => sink.resume());
        }
      });
    });
    sink.on('end', () => {
      if (cut) return;
      entry.forwarded = true;
      upstreamReq.end();
    });
    req.resume();
  }

  private answerError(
    req: IncomingMessage,
    res: ServerResponse,
    action: { status: number; code?: string; message?: string; headers?: Record<string, string> },
  ): void {
    if (res.headersSent || res.destroyed) return;
    const message = action.message ?? `Fault injected by the test proxy ${this.name}.`;
    const { contentType, body, extra } = errorBody(this.flavor, action.status, action.code, message);
    const payload = req.method === 'HEAD' ? '' : body;
    res.writeHead(action.status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
      ...extra,
      ...action.headers,
    });
    res.end(payload);
  }
}

function matches(match: RuleMatch | undefined, info: RequestInfo): boolean {
  if (!match) return true;
  if (match.method && match.method.toUpperCase() !== info.method.toUpperCase()) return false;
  if (match.host && match.host !== info.host) return false;
  if (match.path !== undefined) {
    const re = typeof match.path === 'string' ? new RegExp(match.path) : match.path;
    if (!re.test(info.path)) return false;
  }
  if (match.query) {
    for (const [key, want] of Object.entries(match.query)) {
      const value = info.query.get(key);
      if (value === null) return false;
      if (typeof want === 'string' && value !== want) return false;
      if (want instanceof RegExp && !want.test(value)) return false;
    }
  }
  if (match.where && !match.where(info)) return false;
  return true;
}

const STATUS_CODES: Record<Flavor, Record<number, string>> = {
  'astro-api': {},
  registry: { 400: 'BLOB_UPLOAD_INVALID', 401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'BLOB_UNKNOWN', 429: 'TOOMANYREQUESTS' },
  'azure-blob': {
    400: 'InvalidInput',
    403: 'AuthenticationFailed',
    404: 'BlobNotFound',
    408: 'OperationTimedOut',
    409: 'BlobAlreadyExists',
    429: 'ServerBusy',
    500: 'InternalError',
    503: 'ServerBusy',
  },
  plain: {},
};

function errorBody(
  flavor: Flavor,
  status: number,
  code: string | undefined,
  message: string,
): { contentType: string; body: string; extra: Record<string, string> } {
  const errorCode = code ?? STATUS_CODES[flavor][status] ?? (status >= 500 ? 'UNAVAILABLE' : 'FAULT');
  switch (flavor) {
    case 'astro-api':
      return { contentType: 'application/json', body: JSON.stringify({ message, requestId: `fault-${Date.now()}`, statusCode: status }), extra: {} };
    case 'registry':
      return { contentType: 'application/json', body: JSON.stringify({ errors: [{ code: errorCode, message, detail: null }] }), extra: {} };
    case 'azure-blob':
      return {
        contentType: 'application/xml',
        body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>${errorCode}</Code><Message>${message}</Message></Error>`,
        extra: { 'x-ms-error-code': errorCode, 'x-ms-request-id': crypto.randomUUID() },
      };
    default:
      return { contentType: 'text/plain', body: message, extra: {} };
  }
}

/** Passes bytes through, counting them; after `limit` bytes (if given) calls `onCut` and passes nothing more. */
function countingCut(limit: number | undefined, count: (n: number) => void, onCut: () => void): Transform {
  let passed = 0;
  let done = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (done) return callback();
      if (limit !== undefined && passed + chunk.length >= limit) {
        const part = chunk.subarray(0, Math.max(0, limit - passed));
        passed += part.length;
        count(part.length);
        done = true;
        if (part.length > 0) this.push(part);
        // After the part has gone on its way (the request side also waits until it is written to the upstream).
        setImmediate(onCut);
        return callback();
      }
      passed += chunk.length;
      count(chunk.length);
      callback(null, chunk);
    },
  });
}

/** Rate-limits a stream: slices of 1/20 s worth of bytes, each followed by the time it takes at that rate. */
export function throttle(bytesPerSec: number): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSec / 20));
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      let offset = 0;
      const next = () => {
        if (offset >= chunk.length) return callback();
        const part = chunk.subarray(offset, offset + slice);
        offset += part.length;
        this.push(part);
        setTimeout(next, (part.length / bytesPerSec) * 1000);
      };
      next();
    },
  });
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return new FaultProxy(options).start();
}
