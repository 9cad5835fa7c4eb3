/** A TCP server on 127.0.0.1 that accepts connections and keeps them (for tests that count early connections). */
import net from 'node:net';

export interface AcceptingServer {
  port: number;
  /** The connections accepted so far. */
  sockets: net.Socket[];
  /** Destroys the accepted connections and closes the server. */
  close(): Promise<void>;
}

export async function acceptingServer(): Promise<AcceptingServer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
