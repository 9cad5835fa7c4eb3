// The local platform for bench/peer.bench.ts, in its own process (the bench times commands synchronously and would
// block it), optionally behind user-space latency proxies: `tsx bench/scripts/peer-platform.ts [--wan-ms N]`.
// With --wan-ms, the API, the registry and the blob store are reached through TCP proxies that hold every chunk N ms
// in each direction and a new connection's first bytes one more round trip (the TCP handshake of a real WAN), so a
// client pays per round trip and per connection, as it would far from the platform. (The kernel has no netem.)
// Prints one JSON line ({endpoints, tokens, apiUrl, registryHost, blobUrl}) when ready; stops when stdin closes.
import { startStack } from '../../test/platform/stack.js';
import { latencyProxy } from '../../test/platform/latency-proxy.js';

export interface PeerPlatform {
  endpoints: import('../../test/platform/stack.js').Endpoints;
  tokens: import('../../test/platform/stack.js').SeedTokens;
  /** What clients use as `local.core` (the API proxy with --wan-ms). */
  apiUrl: string;
  registryHost: string;
  blobUrl: string;
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
