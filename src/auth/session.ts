/**
 * Which credentials an authenticated Astro command uses, in Astronomer's order: ASTRO_API_TOKEN, then the
 * stored context (refreshed when it is within five minutes of expiry).
 */
import { UserError } from '../errors.js';
import type { AstroConfig, Context } from '../config/store.js';
import type { AstroEnv } from '../env.js';
import type { FetchPort } from '../platform/http.js';
import { authConfigUrl, formatDomain, platformOf, restBaseUrl, type EndpointSettings } from '../platform/domain.js';
import { decodeJwtClaims, scopeFromPermissions } from './jwt.js';
import { fetchAuthConfig, requestToken } from './oauth.js';

export interface AstroSession {
  domain: string;
  /** Sent verbatim as `authorization`: `Bearer <jwt>`. */
  token: string;
  organizationId: string;
  workspaceId?: string;
  /** HOSTED or HYBRID, when known. */
  organizationProduct?: string;
  source: 'api-token' | 'context';
  restBaseUrl: string;
  /** True for API tokens (permissions claim): such sessions may deploy to CI/CD-enforced Deployments. */
  isApiToken: boolean;
}

export interface SessionDeps {
  fetch?: FetchPort;
  now?: () => Date;
  /** Called with messages users know, e.g. "Using an Astro API Token". */
  notice?: (message: string) => void;
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
    throw new InvalidApiTokenError('API Token is invalid or malformed', { nextStep: 'Check the value of ASTRO_API_TOKEN: it must be an Astro API token (a JWT).' });
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
