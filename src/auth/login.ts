/**
 * Logging in to Astro: the browser (PKCE) flow or a given token, then the organization and workspace the
 * context will use. The service never prints: it reports progress events and asks its ports for choices.
 */
import { UserError } from '../errors.js';
import type { AstroConfig, Context } from '../config/store.js';
import { ApiError, type FetchPort } from '../platform/http.js';
import type { AstroControlPlane } from '../platform/astro/client.js';
import type { AuthConfig, Organization, Workspace } from '../platform/astro/schemas.js';
import { DEFAULT_CALLBACK_PORT, DEFAULT_CALLBACK_TIMEOUT_MS, authorizeUrl, startCallbackServer } from './browser-login.js';
import { authConfigUrl, formatDomain, platformOf, restBaseUrl } from '../platform/domain.js';
import { fetchAuthConfig, fetchUserEmail, requestToken, type TokenAnswer } from './oauth.js';
import { createPkce, createState } from './pkce.js';
import { endpointSettings } from './session.js';

export type LoginEvent =
  | { type: 'welcome' }
  | { type: 'token-login' }
  /** --login-link: the user opens this URL themselves. */
  | { type: 'login-link'; url: string }
  | { type: 'browser-opened'; url: string }
  | { type: 'browser-open-failed'; url: string; reason: string }
  | { type: 'waiting-for-browser' }
  | { type: 'callback-received' }
  | { type: 'logged-in-as'; email: string }
  | { type: 'organization-selected'; organization: Organization; how: ChoiceHow }
  | { type: 'workspace-selected'; workspace: Workspace; how: ChoiceHow }
  | { type: 'no-workspace'; organization: Organization };

/** Why an organization or workspace was picked. */
export type ChoiceHow = 'flag' | 'saved' | 'only' | 'last-used' | 'chosen';

export interface AstroLoginPorts {
  fetch?: FetchPort;
  /** The REST client for a base URL and a token (`Bearer <jwt>`). */
  controlPlane: (baseUrl: string, token: string) => AstroControlPlane;
  openBrowser: (url: string) => Promise<void>;
  /** Runs before the browser opens; on a terminal it waits for Enter, elsewhere it returns at once. */
  beforeBrowserOpens: () => Promise<void>;
  /** Several organizations and nothing decides: prompt, or fail asking for --organization-id. */
  chooseOrganization: (organizations: Organization[]) => Promise<Organization>;
  chooseWorkspace: (workspaces: Workspace[]) => Promise<Workspace>;
  /** Every credential is registered here the moment it is known, so output never shows it. */
  addSecret: (secret: string) => void;
  onProgress?: (event: LoginEvent) => void;
  now?: () => Date;
  signal?: AbortSignal;
}

export interface AstroLoginOptions {
  domain: string;
  config: AstroConfig;
  /** Print the URL instead of opening a browser. */
  loginLink?: boolean;
  /** --token-login: an access token to store instead of the browser flow (valid 1 h, not refreshed). */
  token?: string;
  organizationId?: string;
  workspaceId?: string;
  /** 0 picks any free port. Default 12345, the redirect Astro expects. */
  callbackPort?: number;
  callbackTimeoutMs?: number;
}

export interface LoginResult {
  domain: string;
  email?: string;
  organization?: { id: string; name: string; product: string };
  workspace?: { id: string; name: string };
}

/** Astronomer's CLI gives a pasted token one hour and never refreshes it. */
const TOKEN_LOGIN_TTL_SECONDS = 3600;

export async function loginToAstro(options: AstroLoginOptions, ports: AstroLoginPorts): Promise<LoginResult> {
  const { config } = options;
  const domain = formatDomain(options.domain);
  if (platformOf(domain, { localPlatform: config.get('local.platform') }) === 'software') {
    throw new UserError(
      "Error! Invalid domain. You are attempting to login into Astro. Are you trying to authenticate to APC? If so, please change your current context with 'astro context switch'",
    );
  }
  const now = ports.now ?? (() => new Date());
  const emit = ports.onProgress ?? (() => {});
  const settings = endpointSettings(config);

  const authConfig = await fetchAuthConfig(authConfigUrl(domain, settings), ports.fetch, ports.signal);
  emit({ type: 'welcome' });

  let answer: TokenAnswer;
  if (options.token !== undefined) {
    const token = options.token.trim().replace(/^bearer\s+/i, '');
    if (token === '') throw new UserError('The token given to --token-login is empty.');
    ports.addSecret(token);
    emit({ type: 'token-login' });
    answer = { accessToken: token, refreshToken: '', expiresIn: TOKEN_LOGIN_TTL_SECONDS };
  } else {
    answer = await browserLogin(authConfig, options, ports, emit);
  }

  const email = await fetchUserEmail(authConfig, answer.accessToken, ports.fetch, ports.signal);
  const bearer = `Bearer ${answer.accessToken}`;
  await config.saveContext(
    domain,
    {
      token: bearer,
      refreshtoken: answer.refreshToken ?? '',
      expiresin: new Date(now().getTime() + answer.expiresIn * 1000).toISOString(),
      user_email: email,
    },
    { makeCurrent: true },
  );
  emit({ type: 'logged-in-as', email });

  const controlPlane = ports.controlPlane(restBaseUrl(domain, settings), bearer);
  await controlPlane.getSelfUser(ports.signal);

  const context = config.context(domain);
  const { organization, how: orgHow } = await pickOrganization(controlPlane, context, options, ports);
  const product = organization.product ?? 'HYBRID';
  const orgChanged = context?.organization !== organization.id;
  await config.saveContext(domain, {
    organization: organization.id,
    organization_product: product,
    // A workspace of another organization would be wrong here.
    ...(orgChanged ? { workspace: '', last_used_workspace: '' } : {}),
  });
  emit({ type: 'organization-selected', organization, how: orgHow });

  const workspaces = await controlPlane.listWorkspaces(organization.id, ports.signal);
  const picked = await pickWorkspace(workspaces, orgChanged ? undefined : config.context(domain), options.workspaceId, ports.chooseWorkspace, (w) => w.name);
  if (!picked) {
    await config.saveContext(domain, { workspace: '' });
    emit({ type: 'no-workspace', organization });
    return { domain, email, organization: { id: organization.id, name: organization.name, product } };
  }
  await config.saveContext(domain, { workspace: picked.workspace.id, last_used_workspace: picked.workspace.id });
  emit({ type: 'workspace-selected', workspace: picked.workspace, how: picked.how });
  return {
    domain,
    email,
    organization: { id: organization.id, name: organization.name, product },
    workspace: { id: picked.workspace.id, name: picked.workspace.name },
  };
}

async function browserLogin(
  authConfig: AuthConfig,
  options: AstroLoginOptions,
  ports: AstroLoginPorts,
  emit: (event: LoginEvent) => void,
): Promise<TokenAnswer> {
  const pkce = createPkce();
  const state = createState();
  const server = await startCallbackServer({ port: options.callbackPort ?? DEFAULT_CALLBACK_PORT, state });
  try {
    const url = authorizeUrl({ authConfig, redirectUri: server.redirectUri, codeChallenge: pkce.challenge, state });
    if (options.loginLink) {
      emit({ type: 'login-link', url });
    } else {
      await ports.beforeBrowserOpens();
      try {
        await ports.openBrowser(url);
        emit({ type: 'browser-opened', url });
      } catch (error) {
        emit({ type: 'browser-open-failed', url, reason: (error as Error).message });
      }
    }
    emit({ type: 'waiting-for-browser' });
    const code = await server.waitForCode(options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS, ports.signal);
    ports.addSecret(code);
    emit({ type: 'callback-received' });
    const answer = await requestToken(
      authConfig,
      {
        client_id: authConfig.clientId,
        grant_type: 'authorization_code',
        code,
        code_verifier: pkce.verifier,
        redirect_uri: server.redirectUri,
      },
      ports.fetch,
      ports.signal,
    );
    ports.addSecret(answer.accessToken);
    if (answer.refreshToken) ports.addSecret(answer.refreshToken);
    return answer;
  } finally {
    await server.close();
  }
}

function isStale(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 403 || error.status === 404);
}

async function pickOrganization(
  controlPlane: AstroControlPlane,
  context: Context | undefined,
  options: AstroLoginOptions,
  ports: AstroLoginPorts,
): Promise<{ organization: Organization; how: ChoiceHow }> {
  if (options.organizationId) {
    try {
      return { organization: await controlPlane.getOrganization(options.organizationId, ports.signal), how: 'flag' };
    } catch (error) {
      if (!isStale(error)) throw error;
      throw new UserError(`Organization ${options.organizationId} does not exist or you are not a member of it.`, {
        nextStep: 'Run astro login without --organization-id to choose from your organizations.',
      });
    }
  }
  if (context?.organization) {
    try {
      return { organization: await controlPlane.getOrganization(context.organization, ports.signal), how: 'saved' };
    } catch (error) {
      // A saved organization the user left (or that was deleted) is not an error: choose again.
      if (!isStale(error)) throw error;
    }
  }
  const organizations = await controlPlane.listOrganizations(ports.signal);
  if (organizations.length === 0) {
    throw new UserError('no organization found. Please contact your Astro Organization Owner to be invited to the organization');
  }
  if (organizations.length === 1) return { organization: organizations[0]!, how: 'only' };
  return { organization: await ports.chooseOrganization(organizations), how: 'chosen' };
}

/**
 * The workspace a login lands in: the flag, else the only one, else the one used last, else the user's choice.
 * Shared by Astro and Software logins; `describe` names a workspace in messages.
 */
export async function pickWorkspace<W extends { id: string }>(
  workspaces: W[],
  context: Context | undefined,
  flag: string | undefined,
  choose: (workspaces: W[]) => Promise<W>,
  describe: (workspace: W) => string,
): Promise<{ workspace: W; how: ChoiceHow } | undefined> {
  if (flag) {
    const found = workspaces.find((w) => w.id === flag);
    if (!found) {
      throw new UserError(`Workspace ${flag} is not in this organization, or you have no access to it.`, {
        nextStep: workspaces.length > 0 ? `Workspaces you can use: ${workspaces.map((w) => `${describe(w)} (${w.id})`).join(', ')}` : undefined,
      });
    }
    return { workspace: found, how: 'flag' };
  }
  if (workspaces.length === 0) return undefined;
  if (workspaces.length === 1) return { workspace: workspaces[0]!, how: 'only' };
  const lastUsed = workspaces.find((w) => w.id === context?.last_used_workspace) ?? workspaces.find((w) => w.id === context?.workspace);
  if (lastUsed) return { workspace: lastUsed, how: 'last-used' };
  return { workspace: await choose(workspaces), how: 'chosen' };
}

export interface LogoutResult {
  domain: string;
}

/** Forgets the credentials of a context (the context itself, its organization and workspace stay). */
export async function logout(config: AstroConfig, domain: string | undefined, envDomain?: string): Promise<LogoutResult> {
  const target = domain !== undefined && domain.trim() !== '' ? formatDomain(domain) : config.currentDomain(envDomain);
  if (!target) {
    throw new UserError('no context set, have you authenticated to Astro or APC? Run astro login and try again');
  }
  const context = config.context(target) ?? (domain !== undefined ? config.context(domain.trim()) : undefined);
  if (!context) {
    const known = config.contexts().map((c) => c.domain);
    throw new UserError(`There is no context for "${target}".`, {
      nextStep: known.length > 0 ? `Known contexts: ${known.join(', ')}.` : 'There is nothing to log out of.',
    });
  }
  await config.logoutContext(context.domain);
  return { domain: context.domain };
}
