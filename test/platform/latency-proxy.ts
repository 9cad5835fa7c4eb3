/**
 * A user-space WAN in front of one local service: a TCP proxy on 127.0.0.1 that holds every chunk `delayMs` in each
 * direction and a new connection's first bytes one more round trip (the TCP handshake of a real WAN), so a client
 * pays per round trip and per connection, as it would far from the service (the kernel here has no netem). Used by
 * the peer bench (bench/scripts/peer-platform.ts) and by tests of what distance changes.
 */
import net from 'node:net';

export interface LatencyProxy {
  port: number;
  /** Where to forward; set once the platform runs (its ports are known only then). */
  upstream: number | undefined;
  /** Connections accepted so far. */
  connections: number;
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

export async function latencyProxy(delayMs: number): Promise<LatencyProxy> {
  const proxy: LatencyProxy = { port: 0, upstream: undefined, connections: 0, close: () => server.close() };
  const server = net.createServer((client) => {
    proxy.connections++;
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
