/**
 * Connections opened before the request that needs them, so that their handshakes (TCP, and TLS for https) overlap
 * other work instead of adding round trips: a DAG deploy opens one to the blob store it uploaded to last time while
 * it creates the deploy that hands out the upload URL. An agent made with `usingPreconnected` takes one, for the
 * origin it was opened for, instead of opening its own; one nobody takes never keeps the process alive, and one that
 * failed or closed meanwhile is never handed out (the agent then opens a connection as it always does).
 */
import type http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

const waiting = new Map<string, net.Socket>();

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** A URL's host without the brackets of an IPv6 address, as sockets take it. */
function bareHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

/** `scheme://host:port`, the port always written, an IPv6 address in brackets: a URL preconnect() takes back. */
function originKey(protocol: string, host: string, port: number | string | null | undefined): string {
  const bare = bareHost(host).toLowerCase();
  return `${protocol}//${bare.includes(':') ? `[${bare}]` : bare}:${Number(port || defaultPort(protocol))}`;
}

/** The origin of an http(s) URL as the key connections are kept under (originKey); undefined for anything else. */
export function connectionOrigin(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  return originKey(parsed.protocol, parsed.hostname, parsed.port);
}

/** Opens a connection to the URL's origin (at most one waits per origin); anything but http(s) is ignored. */
export function preconnect(url: string): void {
  const key = connectionOrigin(url);
  if (key === undefined || waiting.has(key)) return;
  const { protocol, hostname, port } = new URL(url);
  const host = bareHost(hostname);
  const options = { host, port: Number(port || defaultPort(protocol)) };
  // As https.Agent does: the name for SNI and the certificate check, never an IP address.
  const socket = protocol === 'https:' ? tls.connect({ ...options, servername: net.isIP(host) ? '' : host }) : net.connect(options);
  const forget = () => {
    if (waiting.get(key) === socket) waiting.delete(key);
  };
  socket.on('error', forget);
  socket.on('close', forget);
  socket.unref();
  waiting.set(key, socket);
}

/**
 * Resolves once the connection waiting at `url`'s origin has its address and has sent its first handshake packet (or
 * failed, or was taken), or after `capMs`. The name lookup answers only when the event loop turns, which a command's
 * start-up (loading code, no waiting) does not let it do: a command that wants the handshake to overlap its start
 * waits for this once, first.
 */
export function connectionStarted(url: string, capMs: number): Promise<void> {
  const socket = waiting.get(connectionOrigin(url) ?? '');
  if (socket === undefined || !socket.connecting) return Promise.resolve();
  // An address needs no lookup: the packet leaves at the next tick (and no 'lookup' event comes). Not net.isIP: its
  // IPv6 pattern costs milliseconds the first time it runs on a name.
  if (/^(\d{1,3}\.){3}\d{1,3}$|:/.test(bareHost(new URL(url).hostname))) return new Promise((resolve) => setImmediate(resolve));
  return new Promise<void>((resolve) => {
    const events = ['lookup', 'connect', 'error', 'close'] as const;
    const done = () => {
      clearTimeout(timer);
      for (const event of events) socket.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, capMs);
    for (const event of events) socket.once(event, done);
  });
}

/** The agent's first connection to a preconnected origin is the one waiting there; the rest it opens itself. */
export function usingPreconnected<T extends http.Agent>(agent: T, protocol: 'http:' | 'https:'): T {
  const open = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const key = originKey(protocol, options.host ?? options.hostname ?? 'localhost', options.port);
    const socket = waiting.get(key);
    if (socket === undefined || socket.destroyed || !socket.readable || !socket.writable) return open(options, callback);
    waiting.delete(key);
    // A request is on it now: the process waits for its answer.
    socket.ref();
    return socket;
  };
  return agent;
}

/** Connections opened and not yet taken (for tests). */
export function waitingConnections(): string[] {
  return [...waiting.keys()];
}
