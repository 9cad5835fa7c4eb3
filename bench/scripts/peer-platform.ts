// The local platform for bench/peer.bench.ts, in its own process (the bench times commands synchronously and would
// block it), optionally behind user-space latency proxies: `tsx bench/scripts/peer-platform.ts [--wan-ms N]`.
// With --wan-ms, the API, the registry and the blob store are reached through TCP proxies that hold every chunk N ms
// in each direction and a new connection's first bytes one more round trip (the TCP handshake of a real WAN), so a
// client pays per round trip and per connection, as it would far from the platform. (The kernel has no netem.)
// Prints one JSON line ({endpoints, tokens, apiUrl, registryHost, blobUrl}) when ready; stops when stdin closes.
import net from 'node:net';
import { startStack } from '../../test/platform/stack.js';

export interface PeerPlatform {
  endpoints: import('../../test/platform/stack.js').Endpoints;
  tokens: import('../../test/platform/stack.js').SeedTokens;
  /** What clients use as `local.core` (the API proxy with --wan-ms). */
  apiUrl: string;
  registryHost: string;
  blobUrl: string;
}

interface LatencyProxy {
  port: number;
  /** Where to forward; set once the platform runs (its ports are known only then). */
  upstream: number | undefined;
  close(): void;
}

/** Forwards from -> to, each chunk delayMs later than it arrived, strictly in order (one queue, one timer). */
function delayed(from: net.Socket, to: net.Socket, delayMs: number, notBefore: () => number): void {
  const queue: { at: number; chunk?: Buffer; end?: true }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const pump = () => {
    timer = undefined;
    while (queue.length > 0 && queue[0]!.at <= Date.now()) {
      const item = queue.shift()!;
      if (item.end) to.end();
      else to.write(item.chunk!);
    }
    if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - Date.now());
  };
  const push = (item: { chunk?: Buffer; end?: true }) => {
    queue.push({ at: Math.max(Date.now(), notBefore()) + delayMs, ...item });
    timer ??= setTimeout(pump, queue[0]!.at - Date.now());
  };
  let ended = false;
  from.on('data', (chunk: Buffer) => push({ chunk }));
  from.on('end', () => {
    ended = true;
    push({ end: true });
  });
  // An orderly end travels through the queue; a reset cuts the other side at once.
  from.on('close', () => {
    if (!ended) to.destroy();
  });
  from.on('error', () => to.destroy());
}

async function latencyProxy(delayMs: number): Promise<LatencyProxy> {
  const proxy: LatencyProxy = { port: 0, upstream: undefined, close: () => server.close() };
  const server = net.createServer((client) => {
    // A new connection costs one round trip before the client's first byte can leave (the handshake).
    const open = Date.now() + 2 * delayMs;
    const upstream = net.connect(proxy.upstream!, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    delayed(client, upstream, delayMs, () => open);
    delayed(upstream, client, delayMs, () => 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
}

const at = process.argv.indexOf('--wan-ms');
const wanMs = at > 0 ? Number(process.argv[at + 1]) : 0;
const proxies = wanMs > 0 ? { api: await latencyProxy(wanMs), registry: await latencyProxy(wanMs), blob: await latencyProxy(wanMs) } : undefined;
const stack = await startStack({
  ports: 0,
  healthDelayMs: 100,
  ...(proxies ? { registryPublicHost: `localhost:${proxies.registry.port}`, blobPublicUrl: `http://localhost:${proxies.blob.port}` } : {}),
});
if (proxies) {
  proxies.api.upstream = stack.endpoints.platform.port;
  proxies.registry.upstream = stack.endpoints.registry.port;
  proxies.blob.upstream = stack.endpoints.blob.proxyPort;
}
const ready: PeerPlatform = {
  endpoints: stack.endpoints,
  tokens: stack.tokens,
  apiUrl: proxies ? `http://localhost:${proxies.api.port}` : stack.endpoints.platform.url,
  registryHost: proxies ? `localhost:${proxies.registry.port}` : stack.endpoints.registry.host,
  blobUrl: proxies ? `http://localhost:${proxies.blob.port}/devstoreaccount1` : stack.endpoints.blob.proxyUrl,
};
process.stdout.write(`${JSON.stringify(ready)}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  for (const p of Object.values(proxies ?? {})) p.close();
  await stack.stop();
  process.exit(0);
};
process.stdin.on('end', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
