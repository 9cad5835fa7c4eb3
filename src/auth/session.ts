/**
 * Which credentials an authenticated Astro command uses, in Astronomer's order: ASTRO_API_TOKEN, then an API key
 * pair (ASTRONOMER_KEY_ID + ASTRONOMER_KEY_SECRET, exchanged for a token), then the stored context (refreshed when
 * it is within five minutes of expiry). Tokens from the environment are used for this command only, never saved.
 */
import { UserError } from '../errors.js';
import type { AstroConfig, Context } from '../config/store.js';
import type { AstroEnv } from '../env.js';
import type { FetchPort } from '../platform/http.js';
import { authConfigUrl, formatDomain, platformOf, restBaseUrl, type EndpointSettings } from '../platform/domain.js';
import { decodeJwtClaims, scopeFromPermissions } from './jwt.js';
import { fetchAuthConfig, requestToken } from './oauth.js';
import { createAstroClient } from '../platform/astro/client.js';
import { cliVersion } from '../version.js';

export interface AstroSession {
  domain: string;
  /** Sent verbatim as `authorization`: `Bearer <jwt>`. */
  token: string;
  organizationId: string;
  workspaceId?: string;
  /** HOSTED or HYBRID, when known. */
  organizationProduct?: string;
  source: 'api-token' | 'api-key' | 'context';
  restBaseUrl: string;
  /** True for API tokens (permissions claim): such sessions may deploy to CI/CD-enforced Deployments. */
  isApiToken: boolean;
}

export interface SessionDeps {
  fetch?: FetchPort;
  now?: () => Date;
  /** Called with messages users know, e.g. "Using an Astro API Token". */
  notice?: (message: string) => void;
  /** Called with warnings, e.g. that API keys are deprecated. */
  warn?: (message: string) => void;
  signal?: AbortSignal;
}

const REFRESH_MARGIN_MS = 5 * 60 * 1000;

export function endpointSettings(config: AstroConfig): EndpointSettings {
  return { protocol: config.get('cloud.api.protocol') ?? 'https', localCore: config.get('local.core') ?? 'http://localhost:8888' };
}

export class InvalidApiTokenError extends UserError {
  override readonly kind = 'invalid-token';
}

/** Validates ASTRO_API_TOKEN the way Astronomer's CLI does, before any request is made. */
export function readApiToken(token: string, now: Date): { organizationId?: string; workspaceId?: string; apiTokenId?: string } {
  const claims = decodeJwtClaims(token);
  if (!claims) {
    throw new InvalidApiTokenError('API Token is invalid or malformed', {
      nextStep: 'Check the value of ASTRO_API_TOKEN: it must be an Astro API token (a JWT).',
    });
  }
  if (!claims.permissions || claims.permissions.length === 0) {
    throw new InvalidApiTokenError('the API token given does not appear to be an Astro API Token', {
      nextStep: 'Create an API token in the Astro UI (Organization or Workspace settings) and set ASTRO_API_TOKEN to it.',
    });
  }
  if (claims.exp !== undefined && claims.exp * 1000 <= now.getTime()) {
    throw new InvalidApiTokenError('API Token is expired', {
      nextStep: `The API token${claims.apiTokenId ? ` ${claims.apiTokenId}` : ''} has expired: rotate it in the Astro UI and update ASTRO_API_TOKEN.`,
    });
  }
  return { ...scopeFromPermissions(claims.permissions), apiTokenId: claims.apiTokenId };
}

export async function resolveAstroSession(config: AstroConfig, env: AstroEnv, deps: SessionDeps = {}): Promise<AstroSession> {
  const now = deps.now ?? (() => new Date());
  const settings = endpointSettings(config);

  if (env.apiToken) {
    deps.notice?.('Using an Astro API Token');
    const scope = readApiToken(env.apiToken, now());
    const context = config.currentContext(env.domain);
    const domain = formatDomain(env.domain ?? context?.domain ?? config.currentDomain());
    const organizationId = scope.organizationId ?? context?.organization;
    if (!organizationId) {
      throw new UserError('The API token names no organization and no context gives one.', {
        nextStep: 'Use an Organization or Workspace API token, or log in once with astro login to set an organization.',
      });
    }
    return {
      domain,
      token: `Bearer ${env.apiToken}`,
      organizationId,
      workspaceId: scope.workspaceId ?? context?.workspace,
      organizationProduct: context?.organization_product,
      source: 'api-token',
      restBaseUrl: restBaseUrl(domain, settings),
      isApiToken: true,
    };
  }

  if (env.apiKeyId && env.apiKeySecret) {
    return apiKeySession(config, env, env.apiKeyId, env.apiKeySecret, settings, deps);
  }
  if (env.apiKeyId || env.apiKeySecret) {
    deps.warn?.(
      `${env.apiKeyId ? 'ASTRONOMER_KEY_ID' : 'ASTRONOMER_KEY_SECRET'} is set without ${env.apiKeyId ? 'ASTRONOMER_KEY_SECRET' : 'ASTRONOMER_KEY_ID'}: the API key is ignored.`,
    );
  }

  const domain = config.currentDomain(env.domain);
  if (!domain) throw new UserError('no context set, have you authenticated to Astro or APC? Run astro login and try again');
  const context = config.context(domain);
  if (!context) throw new UserError('not connected, have you authenticated to Astro? Run astro login and try again');
  if (platformOf(domain, { localPlatform: config.get('local.platform') }) === 'software') {
    throw new UserError(`The current context ${domain} is an Astronomer Software platform, not Astro.`);
  }
  const token = await freshToken(config, context, settings, deps, now());
  if (!context.organization) {
    throw new UserError(`The context ${domain} has no organization.`, { nextStep: `Run astro login ${domain} again.` });
  }
  return {
    domain,
    token,
    organizationId: context.organization,
    workspaceId: context.workspace,
    organizationProduct: context.organization_product,
    source: 'context',
    restBaseUrl: restBaseUrl(domain, settings),
    isApiToken: (decodeJwtClaims(token)?.permissions?.length ?? 0) > 0,
  };
}

/**
 * A (deprecated) Astro API key: client credentials at the domain's OAuth issuer. The organization is the token's
 * (else the first one listed, as Astronomer's CLI takes it), the workspace the first Deployment's.
 */
async function apiKeySession(
  config: AstroConfig,
  env: AstroEnv,
  keyId: string,
  keySecret: string,
  settings: EndpointSettings,
  deps: SessionDeps,
): Promise<AstroSession> {
  deps.notice?.('Using an Astro API key');
  deps.warn?.('Astro API keys are deprecated and stop working at some point: create a Deployment API token and set ASTRO_API_TOKEN instead.');
  const context = config.currentContext(env.domain);
  const domain = formatDomain(env.domain ?? context?.domain ?? config.currentDomain());
  let token: string;
  try {
    const authConfig = await fetchAuthConfig(authConfigUrl(domain, settings), deps.fetch, deps.signal);
    const answer = await requestToken(
      authConfig,
      { client_id: keyId, client_secret: keySecret, audience: 'astronomer-ee', grant_type: 'client_credentials' },
      deps.fetch,
      deps.signal,
    );
    token = `Bearer ${answer.accessToken}`;
  } catch (error) {
    throw new UserError(`The API key ${keyId} could not be exchanged for a token at ${domain}: ${(error as Error).message}`, {
      cause: error,
      nextStep: 'Check ASTRONOMER_KEY_ID and ASTRONOMER_KEY_SECRET (and ASTRO_DOMAIN), or use an API token (ASTRO_API_TOKEN).',
    });
  }
  const claims = decodeJwtClaims(token);
  const scope = scopeFromPermissions(claims?.permissions ?? []);
  const client = createAstroClient({
    baseUrl: restBaseUrl(domain, settings),
    token: () => token,
    clientIdentifier: env.clientIdentifier,
    clientVersion: env.deployActionVersion ?? cliVersion(),
    fetch: deps.fetch,
  });
  const organizations = await client.listOrganizations(deps.signal);
  const wanted = scope.organizationId ?? claims?.org_id;
  const organization = (wanted ? organizations.find((o) => o.id === wanted) : undefined) ?? organizations[0];
  const organizationId = wanted ?? organization?.id;
  if (!organizationId) throw new UserError(`The API key ${keyId} gives access to no organization.`);
  let workspaceId = scope.workspaceId;
  if (!workspaceId) {
    const deployments = await client.listDeployments(organizationId, {}, deps.signal);
    workspaceId = deployments[0]?.workspaceId;
  }
  return {
    domain,
    token,
    organizationId,
    workspaceId,
    organizationProduct: organization?.product,
    source: 'api-key',
    restBaseUrl: restBaseUrl(domain, settings),
    // A machine credential, like an API token: it may deploy where CI/CD is enforced, and auto-selects.
    isApiToken: true,
  };
}

/**
 * The raw access token of a context (no `Bearer `), for `astro auth token`. An Astro token due for refresh is
 * refreshed and saved first, so what is printed works; Software tokens are printed as stored.
 */
export async function contextToken(config: AstroConfig, context: Context, deps: SessionDeps = {}): Promise<string> {
  const stored = context.token?.trim() ?? '';
  if (stored === '' || /^bearer$/i.test(stored)) {
    throw new UserError(`There is no token for ${context.domain}.`, { nextStep: `Run astro login ${context.domain} to log in.` });
  }
  const token =
    platformOf(context.domain, { localPlatform: config.get('local.platform') }) === 'astro'
      ? await freshToken(config, context, endpointSettings(config), deps, (deps.now ?? (() => new Date()))())
      : stored;
  return token.replace(/^bearer\s+/i, '');
}

function expiry(context: Context): Date | undefined {
  if (context.expiresin === undefined) return undefined;
  const date = context.expiresin instanceof Date ? context.expiresin : new Date(context.expiresin);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

async function freshToken(config: AstroConfig, context: Context, settings: EndpointSettings, deps: SessionDeps, now: Date): Promise<string> {
  const token = context.token?.trim() ?? '';
  if (token === '' || /^bearer$/i.test(token)) {
    throw new UserError(`You are not logged in to ${context.domain}.`, { nextStep: `Run astro login ${context.domain}.` });
  }
  const expiresAt = expiry(context);
  if (!expiresAt || expiresAt.getTime() - REFRESH_MARGIN_MS > now.getTime()) return token;
  if (!context.refreshtoken) {
    throw new UserError(`Your session for ${context.domain} has expired.`, { nextStep: `Run astro login ${context.domain} to log in again.` });
  }
  try {
    const authConfig = await fetchAuthConfig(authConfigUrl(context.domain, settings), deps.fetch, deps.signal);
    const answer = await requestToken(
      authConfig,
      { client_id: authConfig.clientId, grant_type: 'refresh_token', refresh_token: context.refreshtoken },
      deps.fetch,
      deps.signal,
    );
    const refreshed = `Bearer ${answer.accessToken}`;
    await config.saveContext(context.domain, {
      token: refreshed,
      expiresin: new Date(now.getTime() + answer.expiresIn * 1000).toISOString(),
      // Astronomer's CLI keeps the old refresh token; a rotated one is kept when the server sends it.
      ...(answer.refreshToken ? { refreshtoken: answer.refreshToken } : {}),
    });
    return refreshed;
  } catch (error) {
    throw new UserError(`Your session for ${context.domain} could not be refreshed: ${(error as Error).message}`, {
      cause: error,
      nextStep: `Run astro login ${context.domain} to log in again.`,
    });
  }
}
