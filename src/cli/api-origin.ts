/**
 * The platform's API, connected to early. A command whose first requests go to the API (a deploy, a Deployment
 * listing) opens a connection, as the CLI starts, to where its API requests went last time under the same config
 * home. The handshakes (TCP, and TLS for https) then overlap loading the CLI, its config and the session instead of
 * delaying the first request: far from the platform, a round trip or two of every deploy. A wrong guess (another
 * context since) costs one connection nobody uses; only the origin is kept (remembered-origins.ts). Astro's REST API
 * and Software's Houston alike: both clients send through nodeFetch, whose agents take the connection.
 */
import path from 'node:path';
import type { AstroEnv } from '../env.js';
import { connectionStarted } from '../util/preconnect.js';
import { preconnectRememberedSync, rememberOrigin } from '../util/remembered-origins.js';

/** Commands whose first requests go to the platform's API. */
const API_COMMANDS = new Set(['deploy', 'deployment']);

/** How long a command's start waits at most for the early connection's name lookup (a local name takes about 1 ms). */
const LOOKUP_WAIT_MS = 3;

export interface ApiOrigin {
  /** Resolves once the early connection has sent its first packet (or at most LOOKUP_WAIT_MS later; at once without one). */
  started: Promise<void>;
  /** Remembers the origin of the API base URL the command's session uses (never fails: only a speed-up). */
  remember(apiBaseUrl: string): Promise<void>;
}

/** Opens the early connection for an API command (not for its --help) and returns where to remember the API. */
export function earlyApiConnection(argv: readonly string[], env: AstroEnv): ApiOrigin {
  const file = path.join(env.cacheDir, 'api-origins.json');
  const command = argv.find((arg) => !arg.startsWith('-'));
  const wantsHelp = argv.some((arg) => arg === '--help' || arg === '-h');
  // Read at once: the CLI loads without waiting for the event loop until its config is read, and the connection
  // (its name lookup, then the handshake) starts only when the loop turns.
  const remembered = command !== undefined && API_COMMANDS.has(command) && !wantsHelp ? preconnectRememberedSync(file, env.astroHome) : undefined;
  return {
    started: remembered === undefined ? Promise.resolve() : connectionStarted(remembered, LOOKUP_WAIT_MS),
    remember: (apiBaseUrl) => rememberOrigin(file, env.astroHome, apiBaseUrl, remembered),
  };
}
