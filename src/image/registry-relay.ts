/**
 * A relay on this machine's loopback between Docker's engine and a distant registry, for pushes. The engine opens a
 * new connection for every registry request (its registry transport keeps none alive), so each of a push's requests
 * pays a handshake (TCP, and TLS for https) on top of its round trip: on the bench's simulated WAN a push of one new
 * layer was 19 requests in about a dozen dependent rounds, 1.31 s. Pushed to `127.0.0.1:<port>/<name>:<tag>` instead
 * (a loopback registry, which Docker speaks plain http to), the engine's requests reach this relay, which sends each
 * one on to the registry over kept-alive connections, opened before the engine asks for them.
 *
 * Only the registry API (`/v2/…`) is relayed, only for as long as one push lasts, and only on 127.0.0.1. The relay
 * adds nothing to the requests (the engine's Authorization goes through as it is); it names the registry's own host
 * to it, and gives the engine back the registry's same-origin `Location`s as paths on the relay. It notes what the
 * registry answered to each manifest `PUT`, so that the push is trusted only once the registry confirmed through the
 * relay the digest the engine reports (image/push.ts).
 *
 * Whether a push is relayed is decided beforehand (deploy/kernel/wiring.ts): the engine must reach this machine's
 * loopback (engine.ts sharesLoopback), the registry must be far enough for handshakes to matter (registry.ts
 * probeRegistry, measured while the image builds), no proxy may be set for it, and the push must carry a registry
 * token (never the user's credentials).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { keptAliveAgent } from '../platform/http.js';
import { preconnect } from '../util/preconnect.js';

/**
 * A registry whose first answer on a new connection takes at least this long is relayed: at least 10 ms a round trip
 * (the handshake and the request). Nearer, the engine's new connections cost less than the relay's own hop (measured
 * on this machine's local registry: a relayed push of one new layer took 20–25 ms longer than the engine's own).
 */
export const FAR_REGISTRY_MS = 20;

/** Connections opened as the relay starts: the engine checks up to five layers at once after its first request. */
const WARM_CONNECTIONS = 5;

/**
 * The proxy the environment sets for `url` (HTTPS_PROXY/HTTP_PROXY, then ALL_PROXY, either case), unless NO_PROXY
 * covers its host: `*`, the host itself, or a domain it is in (`example.com`, `.example.com`), with or without port.
 */
export function proxyFor(url: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const { protocol, hostname, port } = new URL(url);
  const read = (name: string) => env[name] || env[name.toLowerCase()] || undefined;
  const proxy = read(protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY') ?? read('ALL_PROXY');
  if (proxy === undefined) return undefined;
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const defaultPort = protocol === 'https:' ? '443' : '80';
  const exempt = (read('NO_PROXY') ?? '').split(/[\s,]+/).some((entry) => {
    if (entry === '*') return true;
    // `[v6]:port`, `name:port`, or a bare name or address (an IPv6 one has several colons).
    const parts = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+):(\d+)$/.exec(entry) ?? [entry, entry];
    const name = (parts[1] ?? '').toLowerCase().replace(/^\*?\./, '');
    if (name === '' || (parts[2] !== undefined && parts[2] !== (port || defaultPort))) return false;
    return host === name || host.endsWith(`.${name}`);
  });
  return exempt ? undefined : proxy;
}

export interface RegistryRelay {
  /** `127.0.0.1:<port>`: the registry host the engine pushes to. */
  readonly host: string;
  /** Requests the relay has sent on to the registry. */
  readonly requests: number;
  /** The digest the registry answered a manifest `PUT` of `tag` with, through the relay; undefined when none was taken. */
  manifestDigest(tag: string): string | undefined;
  /**
   * Called once, with the error, when a request could not be sent on to the registry (refused, reset, a certificate
   * this process does not trust). The engine would retry such a push for most of a minute: stop it and push directly.
   */
  onFailure?: (error: Error) => void;
  close(): Promise<void>;
}

/** Hop-by-hop headers, which belong to one connection and are not sent on. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

function withoutHopByHop<T extends Record<string, unknown>>(headers: T): T {
  const kept = { ...headers };
  for (const name of HOP_BY_HOP) delete kept[name];
  return kept;
}

/** Starts a relay to the registry at `origin` (`https://host[:port]`, or http for one on this machine). */
export async function openRegistryRelay(origin: string): Promise<RegistryRelay> {
  const upstream = new URL(origin);
  const secure = upstream.protocol === 'https:';
  const agent = keptAliveAgent(secure);
  preconnect(upstream.origin, WARM_CONNECTIONS);
  const manifests = new Map<string, string>();
  const manifestPath = /^\/v2\/.+\/manifests\/([^/?]+)(?:\?.*)?$/;
  let requests = 0;
  let failed = false;

  const server = http.createServer((req, res) => {
    const path = req.url ?? '';
    if (!path.startsWith('/v2/')) {
      res.writeHead(404).end();
      return;
    }
    requests++;
    const out = (secure ? https : http).request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path,
        headers: { ...withoutHopByHop(req.headers), host: upstream.host },
        agent,
      },
      (answer) => {
        const headers = withoutHopByHop(answer.headers);
        if (typeof headers.location === 'string' && headers.location.startsWith(`${upstream.origin}/`))
          headers.location = headers.location.slice(upstream.origin.length);
        const status = answer.statusCode ?? 502;
        const manifest = req.method === 'PUT' && status === 201 ? manifestPath.exec(path) : null;
        const digest = answer.headers['docker-content-digest'];
        if (manifest && typeof digest === 'string') manifests.set(decodeURIComponent(manifest[1]!), digest);
        res.writeHead(status, headers);
        answer.pipe(res);
      },
    );
    // The engine gave up on this request (or the push was interrupted): so does the relay.
    let engineLeft = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      engineLeft = true;
      out.destroy();
    });
    out.on('error', (error) => {
      // Not when the engine hung up first (its request destroyed just above).
      if (!failed && !engineLeft) {
        failed = true;
        relay.onFailure?.(error);
      }
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const relay: RegistryRelay = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    manifestDigest: (tag) => manifests.get(tag),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return relay;
}
