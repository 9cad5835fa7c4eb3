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

/** Connections waiting per origin, oldest first (usually one; a registry push relay opens a few). */
const waiting = new Map<string, net.Socket[]>();

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

/**
 * Opens connections to the URL's origin until `count` wait there (one unless asked for more); anything but http(s)
 * is ignored.
 */
export function preconnect(url: string, count = 1): void {
  const key = connectionOrigin(url);
  if (key === undefined) return;
  const { protocol, hostname, port } = new URL(url);
  const host = bareHost(hostname);
  const options = { host, port: Number(port || defaultPort(protocol)) };
  for (let open = waiting.get(key)?.length ?? 0; open < count; open++) {
    // As https.Agent does: the name for SNI and the certificate check, never an IP address.
    const socket = protocol === 'https:' ? tls.connect({ ...options, servername: net.isIP(host) ? '' : host }) : net.connect(options);
    keep(key, socket);
  }
}

/** `socket` no longer waits at `key`. */
function drop(key: string, socket: net.Socket): void {
  const left = (waiting.get(key) ?? []).filter((s) => s !== socket);
  if (left.length > 0) waiting.set(key, left);
  else waiting.delete(key);
}

/** Keeps `socket` for an agent's request to `key`, until it fails or closes; it never keeps the process alive. */
function keep(key: string, socket: net.Socket): void {
  const forget = () => drop(key, socket);
  socket.on('error', forget);
  socket.on('close', forget);
  socket.unref();
  waiting.set(key, [...(waiting.get(key) ?? []), socket]);
}

/**
 * A connection to `url`'s origin opened before this code was loaded (bin/early-connection.js), kept as preconnect()
 * keeps its own. One that is no longer usable, or for an origin that already has one waiting, is closed.
 */
export function adoptConnection(url: string, socket: net.Socket): void {
  const key = connectionOrigin(url);
  if (key === undefined || waiting.has(key) || socket.destroyed) {
    socket.destroy();
    return;
  }
  keep(key, socket);
}

/** The agent's first connections to a preconnected origin are the ones waiting there; the rest it opens itself. */
export function usingPreconnected<T extends http.Agent>(agent: T, protocol: 'http:' | 'https:'): T {
  const open = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const key = originKey(protocol, options.host ?? options.hostname ?? 'localhost', options.port);
    const socket = waiting.get(key)?.find((s) => !s.destroyed && s.readable && s.writable);
    if (socket === undefined) return open(options, callback);
    drop(key, socket);
    // A request is on it now: the process waits for its answer.
    socket.ref();
    return socket;
  };
  return agent;
}

/** The origin of each connection opened and not yet taken (for tests). */
export function waitingConnections(): string[] {
  return [...waiting].flatMap(([key, sockets]) => sockets.map(() => key));
}
