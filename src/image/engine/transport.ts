/**
 * How astro reaches a Docker-compatible engine: plain HTTP over a unix socket, TCP with or without TLS, or SSH
 * (the remote `docker system dial-stdio`, through the system's `ssh`, as the Docker CLI does). Every request and
 * every error names the endpoint, so a misconfigured DOCKER_HOST is obvious.
 */
import { spawn } from 'node:child_process';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Duplex, type Readable } from 'node:stream';
import { UserError } from '../../errors.js';

export type EngineEndpoint =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; verify: boolean } }
  | {
      kind: 'ssh';
      host: string;
      port?: number;
      user?: string;
      /** Keys offered besides the agent's (`-i`); ssh's own defaults when none are given. */
      identityFiles?: string[];
      /** The user's known_hosts files (`UserKnownHostsFile`); ssh's own default when none are given. */
      knownHostsFiles?: string[];
    };

/** The endpoint as users write it: `unix:///var/run/docker.sock`, `tcp://host:2376`, `ssh://user@host:22`. */
export function endpointUrl(endpoint: EngineEndpoint): string {
  switch (endpoint.kind) {
    case 'unix':
      return `unix://${endpoint.socketPath}`;
    case 'tcp':
      return `tcp://${endpoint.host}:${endpoint.port}`;
    case 'ssh':
      return `ssh://${endpoint.user ? `${endpoint.user}@` : ''}${endpoint.host}${endpoint.port ? `:${endpoint.port}` : ''}`;
  }
}

export interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | Record<string, string> | undefined>;
  headers?: Record<string, string | string[]>;
  /** A request body: a stream (sent as `application/x-tar`) or JSON. */
  body?: Readable;
  json?: unknown;
  signal?: AbortSignal;
}

/** The engine answered with an error status; `message` is the engine's own explanation. */
export class EngineHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineHttpError';
  }
}

/** Engine errors that mean "nothing is listening" (or we may not talk to it), as opposed to an error answer. */
const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'ENOTSOCK',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

export function isEngineUnreachable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  return UNREACHABLE_CODES.has(code) || TLS_CODES.has(code) || error instanceof SshDialError;
}

/** The ssh process behind an ssh:// endpoint failed before the engine answered. */
export class SshDialError extends Error {
  override readonly name = 'SshDialError';
}

/** A UserError that names the engine that could not be reached, why, and what to check. */
export function engineUnreachable(endpoint: EngineEndpoint, cause: unknown): UserError {
  const url = endpointUrl(endpoint);
  const code = (cause as NodeJS.ErrnoException).code ?? '';
  const tcpTls = endpoint.kind === 'tcp' && endpoint.tls !== undefined;
  let why: string;
  let next: string;
  if (cause instanceof SshDialError) {
    why = `ssh failed: ${cause.message}`;
    next = 'Check that `ssh` reaches that host without a password prompt (keys or agent) and that `docker` is on its PATH.';
  } else if (TLS_CODES.has(code)) {
    why = `TLS handshake failed: ${describeTls(code, (cause as Error).message)}`;
    next = 'Check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) and DOCKER_TLS_VERIFY, or the TLS material of your Docker context.';
  } else if (code === 'ECONNRESET' && endpoint.kind === 'tcp' && !tcpTls) {
    why = 'the connection was reset (does the engine expect TLS?)';
    next = 'Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH if the engine listens with TLS.';
  } else if (code === 'EACCES') {
    why = `permission denied on ${endpoint.kind === 'unix' ? endpoint.socketPath : url}`;
    next = 'Add your user to the docker group (or run with access to the socket) and try again.';
  } else {
    why = `nothing answers (${code || (cause as Error).message})`;
    next = 'Start Docker (or set DOCKER_HOST / DOCKER_CONTEXT to the engine you use) and try again.';
  }
  return new UserError(`Cannot connect to the Docker engine at ${url}: ${why}.`, { nextStep: next, cause });
}

function describeTls(code: string, message: string): string {
  if (
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
  ) {
    return `unknown authority (${code})`;
  }
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the engine did not speak TLS (${code})`;
  return `${message} (${code})`;
}

function queryString(query: EngineRequest['query']): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

export async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function errorFromResponse(response: IncomingMessage): Promise<EngineHttpError> {
  const text = await readBody(response).catch(() => '');
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not JSON: keep the text
  }
  return new EngineHttpError(response.statusCode ?? 0, message || `HTTP ${response.statusCode ?? '?'}`);
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('The operation was aborted.');
  error.name = 'AbortError';
  return error;
}

/** A connection to the engine through `ssh … docker system dial-stdio`: the remote CLI relays its socket. */
function sshConnection(endpoint: Extract<EngineEndpoint, { kind: 'ssh' }>, sshBinary: string): Duplex {
  const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15'];
  if (endpoint.port) args.push('-p', String(endpoint.port));
  if (endpoint.user) args.push('-l', endpoint.user);
  for (const file of endpoint.identityFiles ?? []) args.push('-i', file);
  // ssh splits the value on spaces; a quoted path keeps its own.
  if (endpoint.knownHostsFiles?.length) args.push('-o', `UserKnownHostsFile=${endpoint.knownHostsFiles.map((f) => (/\s/.test(f) ? `"${f}"` : f)).join(' ')}`);
  args.push('--', endpoint.host, 'docker', 'system', 'dial-stdio');
  const child = spawn(sshBinary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  let gotData = false;
  let stdoutEnded = false;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const duplex = new Duplex({
    read() {
      child.stdout.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      child.stdin.write(chunk, callback);
    },
    final(callback) {
      child.stdin.end(callback);
    },
    destroy(error, callback) {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      callback(error);
    },
  });
  // The end of ssh's output is the end of the connection only once ssh has exited: a dial that never delivered a
  // byte is a failed connection (refused, host key, login), and what ssh said last is worth its own message.
  const finish = () => {
    if (!stdoutEnded || !exit || duplex.destroyed) return;
    if (!gotData && (exit.code !== 0 || exit.signal))
      duplex.destroy(new SshDialError(stderr.trim().split('\n').at(-1) || `ssh exited with ${exit.signal ?? exit.code}`));
    else duplex.push(null);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    gotData = true;
    if (!duplex.push(chunk)) child.stdout.pause();
  });
  child.stdout.once('end', () => {
    stdoutEnded = true;
    finish();
  });
  child.once('exit', (code, signal) => {
    exit = { code, signal };
    finish();
  });
  child.once('error', (error) => duplex.destroy(new SshDialError(`${sshBinary}: ${error.message}`)));
  // A write after ssh is gone fails with EPIPE; the exit above says why.
  child.stdin.on('error', () => undefined);
  return duplex;
}

export interface EngineTransport {
  readonly endpoint: EngineEndpoint;
  /** Sends a request and resolves with the response once its status is known; error statuses reject. */
  send(request: EngineRequest): Promise<IncomingMessage>;
  /** A request whose JSON answer (or nothing) is returned. */
  json(request: EngineRequest): Promise<unknown>;
  /** Switches a connection to another protocol (BuildKit's session, attach) and hands over the raw socket. */
  upgrade(path: string, headers: Record<string, string | string[]>, protocol: string): Promise<Duplex>;
  /** The error to throw for a failure to reach the engine (not an error answer): one that names the engine. */
  describe(error: unknown): unknown;
}

export interface TransportOptions {
  sshBinary?: string;
  /**
   * Explains a connection failure (refused, TLS, ssh) naming the engine and why it was chosen; by default
   * engineUnreachable, which knows only the endpoint.
   */
  describeFailure?: (cause: unknown) => Error;
}

export function createTransport(endpoint: EngineEndpoint, options: TransportOptions = {}): EngineTransport {
  const sshBinary = options.sshBinary ?? 'ssh';
  // TCP connections are kept alive between the calls of one command (a TLS handshake is worth saving); an SSH
  // connection is a process of its own per request, since Node's agent pool only keeps real sockets.
  const agent =
    endpoint.kind === 'tcp'
      ? endpoint.tls
        ? new https.Agent({ keepAlive: true, ca: endpoint.tls.ca, cert: endpoint.tls.cert, key: endpoint.tls.key, rejectUnauthorized: endpoint.tls.verify })
        : new http.Agent({ keepAlive: true })
      : undefined;
  const requester = endpoint.kind === 'tcp' && endpoint.tls ? https.request : http.request;

  function requestOptions(method: string, path: string, headers: Record<string, string | string[]>, signal?: AbortSignal): https.RequestOptions {
    const base: https.RequestOptions = { method, path, headers, ...(signal ? { signal } : {}) };
    if (endpoint.kind === 'unix') return { ...base, socketPath: endpoint.socketPath };
    if (endpoint.kind === 'tcp') return { ...base, agent, host: endpoint.host, port: endpoint.port };
    // ssh: the Host header only has to be well formed; the connection is the ssh process. No agent (not even
    // `agent: false`, which makes a fresh one): only then does Node use createConnection.
    return { ...base, host: 'docker', createConnection: () => sshConnection(endpoint, sshBinary) as never };
  }

  const describeFailure = options.describeFailure;
  const fail = (error: unknown) => {
    if (error instanceof UserError) return error;
    // Everything a request emits as 'error' is a failure to talk to the engine (answers arrive as responses).
    if (describeFailure) return describeFailure(error);
    return isEngineUnreachable(error) ? engineUnreachable(endpoint, error) : error;
  };

  const transport: EngineTransport = {
    endpoint,
    describe: fail,
    send(request) {
      return new Promise<IncomingMessage>((resolve, reject) => {
        const headers: Record<string, string | string[]> = { ...request.headers };
        let payload: string | undefined;
        if (request.body) headers['Content-Type'] = 'application/x-tar';
        if (request.json !== undefined) {
          payload = JSON.stringify(request.json);
          headers['Content-Type'] = 'application/json';
        }
        const req = requester(requestOptions(request.method, `${request.path}${queryString(request.query)}`, headers, request.signal));
        req.once('response', (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(response);
          else void errorFromResponse(response).then(reject, reject);
        });
        req.once('error', (error) => {
          if (request.signal?.aborted) reject(abortReason(request.signal));
          else reject(fail(error));
        });
        if (request.body) {
          request.body.once('error', (error) => req.destroy(error));
          request.body.pipe(req);
        } else {
          req.end(payload);
        }
      });
    },
    async json(request) {
      const response = await transport.send(request);
      const text = await readBody(response);
      if (text.trim() === '') return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new UserError(`The Docker engine at ${endpointUrl(endpoint)} answered ${request.method} ${request.path} with something that is not JSON.`);
      }
    },
    upgrade(path, headers, protocol) {
      return new Promise<Duplex>((resolve, reject) => {
        const req = requester(requestOptions('POST', path, { Connection: 'Upgrade', Upgrade: protocol, ...headers }));
        // An upgraded connection leaves the pool: it belongs to the caller from now on.
        req.shouldKeepAlive = false;
        req.once('upgrade', (_response, socket, head) => {
          if (head.length > 0) socket.unshift(head);
          resolve(socket);
        });
        req.once('response', (response) => {
          void errorFromResponse(response).then(reject, reject);
        });
        req.once('error', (error) => reject(fail(error)));
        req.end();
      });
    },
  };
  return transport;
}

export { abortReason };
