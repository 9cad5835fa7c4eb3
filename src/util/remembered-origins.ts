/**
 * Where a request went last time, per key (a Deployment's bundle upload, its registry), kept in a small JSON file in
 * astro's cache: only the origin (scheme, host and port), never a path, a query or a credential. Opening a connection
 * there early (preconnect.ts) saves the request that follows its handshakes (a TCP round trip, and TLS's for https);
 * a wrong guess costs one unused connection.
 */
import * as z from 'zod';
import { readJsonFile, rememberInFile } from './json-file.js';
import { connectionOrigin, preconnect } from './preconnect.js';

/** Keys remembered at most per file; beyond it the file starts again (it is a guess, not a record). */
const MAX_REMEMBERED = 200;

/** bin/early-connection.js reads the API's file before zod is loaded, with this same pattern (ORIGIN there). */
const origins = z.record(z.string(), z.string().regex(/^https?:\/\/[^/?#\s]+$/));

/** Opens a connection to the origin remembered for `key` in `file`, if any, and returns that origin. */
export async function preconnectRemembered(file: string, key: string): Promise<string | undefined> {
  const known = await readJsonFile(file, origins);
  const origin = known?.[key];
  if (origin !== undefined) preconnect(origin);
  return origin;
}

/**
 * Remembers the origin of `url` for `key`, when it changed. `remembered`: what preconnectRemembered found for it this
 * run (the file is not read again when the request went there). Never fails: it is only a speed-up.
 */
export async function rememberOrigin(file: string, key: string, url: string, remembered?: string): Promise<void> {
  const origin = connectionOrigin(url);
  if (origin === undefined || origin === remembered) return;
  await rememberInFile(file, origins, key, origin, { max: MAX_REMEMBERED });
}

/** One file's remembered origins for one run: each key's early connection opened once, and what it found kept. */
export interface RememberedOrigins {
  /** Opens a connection to where `key`'s request went last time, if remembered. Returns at once; once per key. */
  prepare(key: string): void;
  /** Remembers where `key`'s request went (`url`), when it is not where prepare found it. Never fails. */
  remember(key: string, url: string): Promise<void>;
}

export function rememberedOrigins(file: string, onError: (error: unknown) => void = () => undefined): RememberedOrigins {
  const found = new Map<string, Promise<string | undefined>>();
  return {
    prepare: (key) => {
      if (found.has(key)) return;
      found.set(
        key,
        preconnectRemembered(file, key).catch((error: unknown) => {
          onError(error);
          return undefined;
        }),
      );
    },
    remember: async (key, url) => rememberOrigin(file, key, url, await found.get(key)),
  };
}
