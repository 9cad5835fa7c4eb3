/** The real ports of engine resolution: the file system, and a ping over a Unix socket. */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { EngineFs, EngineProbe } from './engine-target.js';

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
