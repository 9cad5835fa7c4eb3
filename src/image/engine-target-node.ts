/** The real ports of engine resolution (the file system, a ping over a Unix socket) and the ssh connection agent. */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectConfig } from 'ssh2';
import type { EngineClientOptions, EngineFs, EngineProbe, EngineTarget } from './engine-target.js';

export const nodeEngineFs: EngineFs = {
  readFile: (file) => fs.readFile(file),
  async exists(file) {
    try {
      await fs.access(file);
      return true;
    } catch {
      return false;
    }
  },
  async stat(file) {
    try {
      return await fs.stat(file);
    } catch {
      return undefined;
    }
  },
};

/** `GET /_ping` on a Unix socket; true only for an answer of 200. Never throws. */
export function pingUnixSocket(timeoutMs = 2_000): EngineProbe {
  return (socketPath) =>
    new Promise<boolean>((resolve) => {
      const req = http.get({ socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
}

/**
 * The dockerode options to build the client with. For ssh:// engines astro brings its own connection agent: each
 * HTTP connection is an ssh session running `docker system dial-stdio`, as with docker-modem's own ssh support, but
 * without docker-modem's ssh URLs (which Node rejects as invalid, with a deprecation warning on stderr today) and
 * with ssh2 loaded only when an ssh engine is used.
 */
export async function engineClientOptions(target: EngineTarget): Promise<EngineClientOptions> {
  if (target.transport !== 'ssh' || !target.ssh) return target.options;
  const { Client } = await import('ssh2');
  const { user, host, port } = target.ssh;
  const connectConfig: ConnectConfig = { ...target.options.sshOptions, host, port, username: user };
  const agent = new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: SshCreateConnection }).createConnection = (_options, callback) => {
    const client = new Client();
    let settled = false;
    const fail = (error: Error) => {
      client.end();
      if (!settled) {
        settled = true;
        callback(error);
      }
    };
    client.once('ready', () => {
      client.exec('docker system dial-stdio', (error, stream) => {
        if (error) return fail(error);
        settled = true;
        stream.once('close', () => client.end());
        // http sets timeouts and no-delay on its sockets; an ssh channel has neither, and needs neither.
        const socket = Object.assign(stream, { setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
        callback(null, socket as unknown as Duplex);
      });
    });
    client.on('error', fail);
    client.connect(connectConfig);
    return undefined;
  };
  // Plain HTTP over the ssh channel; the host name only fills the request line.
  return { ...target.options, protocol: 'http', host: 'docker', port: 80, username: undefined, sshOptions: undefined, agent: agent as never };
}

type SshCreateConnection = (options: unknown, callback: (error: Error | null, socket?: Duplex) => void) => undefined;
