/**
 * The platform's API, connected to early. bin/early-connection.js opens a connection, before the CLI is even
 * loaded, to where an API command's requests went last time under the same config home; the CLI takes it over here
 * (adoptConnection), and the first API request goes over it. This side remembers where the session's API is, for
 * the next command (only the origin: remembered-origins.ts). Astro's REST API and Software's Houston alike: both
 * clients send through nodeFetch, whose agents take the connection.
 */
import type net from 'node:net';
import path from 'node:path';
import type { AstroEnv } from '../env.js';
import { adoptConnection } from '../util/preconnect.js';
import { rememberOrigin } from '../util/remembered-origins.js';

/** The connection bin/early-connection.js opened, and the origin it was remembered as. */
export interface EarlyConnection {
  origin: string;
  socket: net.Socket;
}

export interface ApiOrigin {
  /** Remembers the origin of the API base URL the command's session uses (never fails: only a speed-up). */
  remember(apiBaseUrl: string): Promise<void>;
}

/** The file bin/early-connection.js reads (its locate() must agree: a unit test checks it). */
export function apiOriginsFile(env: AstroEnv): string {
  return path.join(env.cacheDir, 'api-origins.json');
}

/** Takes over the early connection, if bin opened one, and returns where to remember the API. */
export function earlyApiConnection(env: AstroEnv, early?: EarlyConnection): ApiOrigin {
  if (early) adoptConnection(early.origin, early.socket);
  return { remember: (apiBaseUrl) => rememberOrigin(apiOriginsFile(env), env.astroHome, apiBaseUrl, early?.origin) };
}
