/**
 * What every command handler receives: output, environment, working directory, config, and a cancellation signal.
 */
import type { AstroConfig } from '../config/store.js';
import type { AstroEnv } from '../env.js';
import type { Output } from '../ui/output.js';
import type { ApiOrigin } from './api-origin.js';

export interface CommandContext {
  out: Output;
  env: AstroEnv;
  cwd: string;
  /** Aborted on SIGINT/SIGTERM; long operations pass it down. */
  signal: AbortSignal;
  /** Loads (and validates) the global and project config. */
  loadConfig(): Promise<AstroConfig>;
  /** Where the platform's API is remembered for the next command's early connection (api-origin.ts). */
  apiOrigin: ApiOrigin;
}

const NO_API_ORIGIN: ApiOrigin = { remember: async () => undefined };

export function createCommandContext(out: Output, env: AstroEnv, cwd: string, signal: AbortSignal, apiOrigin = NO_API_ORIGIN): CommandContext {
  let config: Promise<AstroConfig> | undefined;
  return {
    out,
    env,
    cwd,
    signal,
    apiOrigin,
    // Loaded lazily so that `--help` and `version` never pay for YAML and locking.
    loadConfig: () => (config ??= import('../config/store.js').then(({ AstroConfig, configPaths }) => AstroConfig.load(configPaths(env.astroHome, cwd)))),
  };
}
