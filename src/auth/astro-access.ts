/**
 * What an authenticated Astro command starts with: the session (ASTRO_API_TOKEN, an API key pair, or the stored
 * context, refreshed when due) and a REST client using it, with every credential registered for redaction first.
 */
import type { AstroConfig } from '../config/store.js';
import type { AstroEnv } from '../env.js';
import type { FetchPort } from '../platform/http.js';
import { createAstroClient, type AstroControlPlane } from '../platform/astro/client.js';
import { resolveAstroSession, type AstroSession } from './session.js';

export interface AstroAccess {
  session: AstroSession;
  client: AstroControlPlane;
}

export interface AstroAccessDeps {
  clientVersion: string;
  addSecret: (secret: string | undefined) => void;
  /** Messages users know, e.g. "Using an Astro API Token". */
  notice?: (message: string) => void;
  warn?: (message: string) => void;
  fetch?: FetchPort;
  now?: () => Date;
  signal?: AbortSignal;
}

export async function openAstroSession(config: AstroConfig, env: AstroEnv, deps: AstroAccessDeps): Promise<AstroAccess> {
  deps.addSecret(env.apiToken);
  deps.addSecret(env.apiKeySecret);
  const stored = config.currentContext(env.domain);
  deps.addSecret(stored?.token);
  deps.addSecret(stored?.refreshtoken);

  const resolved = await resolveAstroSession(config, env, {
    fetch: deps.fetch,
    now: deps.now,
    notice: deps.notice,
    warn: deps.warn,
    signal: deps.signal,
  });
  deps.addSecret(resolved.token);
  const client = createAstroClient({
    baseUrl: resolved.restBaseUrl,
    token: () => resolved.token,
    clientIdentifier: env.clientIdentifier,
    clientVersion: env.deployActionVersion ?? deps.clientVersion,
    fetch: deps.fetch,
  });

  // No organization list for API tokens (Astronomer's CLI reads the organization product from it): nothing that
  // opens a session reads the product, and Hybrid Deployments are told apart by their own `type`.
  return { session: resolved, client };
}
