/**
 * Logging in to Astronomer Software (Houston): a token given on the command line, username and password
 * (`createToken`), or an OAuth token the user copies from the Software UI. The raw token is stored.
 */
import * as z from 'zod';
import { UserError } from '../errors.js';
import type { AstroConfig } from '../config/store.js';
import type { FetchPort } from '../platform/http.js';
import { createHoustonClient, type HoustonClient } from '../platform/software/houston.js';
import { houstonUrl, softwareAppUrl, type HoustonSettings } from '../platform/domain.js';
import { pickWorkspace, type ChoiceHow, type LoginResult } from './login.js';

const AUTH_CONFIG_QUERY = `query GetAuthConfig($redirect: String) {
  authConfig(redirect: $redirect) { localEnabled publicSignup initialSignup providers { name displayName url } }
}`;

const CREATE_TOKEN_MUTATION = `mutation createBasicToken($identity: String, $password: String!) {
  createToken(identity: $identity, password: $password) {
    user { id fullName username status createdAt updatedAt }
    token { value }
  }
}`;

const WORKSPACES_QUERY = `query GetWorkspaces { workspaces { id label description } }`;

const authConfigAnswer = z.object({
  authConfig: z.looseObject({
    localEnabled: z.boolean().nullish(),
    providers: z.array(z.looseObject({ name: z.string().nullish(), displayName: z.string().nullish(), url: z.string().nullish() })).nullish(),
  }),
});

const createTokenAnswer = z.object({
  createToken: z.looseObject({
    user: z.looseObject({ username: z.string().nullish() }).nullish(),
    token: z.object({ value: z.string().min(1) }),
  }),
});

const softwareWorkspace = z.looseObject({ id: z.string(), label: z.string().nullish() });
export type SoftwareWorkspace = z.infer<typeof softwareWorkspace>;
const workspacesAnswer = z.object({ workspaces: z.array(softwareWorkspace) });

export type SoftwareLoginEvent =
  | { type: 'oauth-token-needed'; tokenPageUrl: string }
  | { type: 'logged-in-as'; username: string }
  | { type: 'workspace-selected'; workspace: SoftwareWorkspace; how: ChoiceHow }
  | { type: 'no-workspace' };

export interface SoftwareLoginPorts {
  fetch?: FetchPort;
  /** Defaults to the graphql-request client; tests may pass a fake. */
  houston?: (url: string, token?: string) => HoustonClient;
  /** `Username (leave blank for oAuth): ` on a terminal; without one, a NeedsInputError. */
  askUsername: () => Promise<string>;
  /** `Password: `, not echoed. */
  askPassword: () => Promise<string>;
  /** `oAuth Token: ` after the user was shown where to get one. */
  askOAuthToken: () => Promise<string>;
  chooseWorkspace: (workspaces: SoftwareWorkspace[]) => Promise<SoftwareWorkspace>;
  addSecret: (secret: string) => void;
  onProgress?: (event: SoftwareLoginEvent) => void;
  signal?: AbortSignal;
}

export interface SoftwareLoginOptions {
  domain: string;
  config: AstroConfig;
  /** A Houston token (--token-login): no questions asked. */
  token?: string;
  username?: string;
  password?: string;
  /** --oauth: skip username/password even when local accounts are enabled. */
  oauth?: boolean;
  workspaceId?: string;
}

export function houstonSettings(config: AstroConfig): HoustonSettings {
  return {
    protocol: config.get('cloud.api.protocol') ?? 'https',
    port: config.get('cloud.api.port') ?? '443',
    localHouston: config.get('local.houston') ?? '',
  };
}

export async function loginToSoftware(options: SoftwareLoginOptions, ports: SoftwareLoginPorts): Promise<LoginResult> {
  const { config, domain } = options;
  const emit = ports.onProgress ?? (() => {});
  const settings = houstonSettings(config);
  const url = houstonUrl(domain, settings);
  const client = ports.houston ?? ((u: string, token?: string) => createHoustonClient({ url: u, token, fetch: ports.fetch }));
  if (options.password) ports.addSecret(options.password);

  let token = options.token?.trim();
  let username: string | undefined;
  if (token === undefined || token === '') {
    ({ token, username } = await obtainToken(client(url), options, ports, settings, emit));
  }
  ports.addSecret(token);

  const authed = client(url, token);
  // Listing workspaces proves the token works before it is saved.
  const { workspaces } = await authed.request(WORKSPACES_QUERY, undefined, workspacesAnswer, ports.signal);
  await config.saveContext(domain, { token }, { makeCurrent: true });
  if (username) emit({ type: 'logged-in-as', username });

  const picked = await pickWorkspace(workspaces, config.context(domain), options.workspaceId, ports.chooseWorkspace, (w) => w.label ?? '');
  if (!picked) {
    emit({ type: 'no-workspace' });
    return { domain, email: username };
  }
  await config.saveContext(domain, { workspace: picked.workspace.id, last_used_workspace: picked.workspace.id });
  emit({ type: 'workspace-selected', workspace: picked.workspace, how: picked.how });
  return { domain, email: username, workspace: { id: picked.workspace.id, name: picked.workspace.label ?? picked.workspace.id } };
}

async function obtainToken(
  houston: HoustonClient,
  options: SoftwareLoginOptions,
  ports: SoftwareLoginPorts,
  settings: HoustonSettings,
  emit: (event: SoftwareLoginEvent) => void,
): Promise<{ token: string; username?: string }> {
  const { authConfig } = await houston.request(AUTH_CONFIG_QUERY, undefined, authConfigAnswer, ports.signal);
  const localEnabled = authConfig.localEnabled === true;
  const providers = authConfig.providers ?? [];

  let username = options.oauth ? '' : (options.username?.trim() ?? '');
  if (username === '' && localEnabled && !options.oauth && options.username === undefined) {
    username = (await ports.askUsername()).trim();
  }

  if (username !== '') {
    if (!localEnabled) {
      throw new UserError('Basic authentication is disabled, conact administrator or defer back to oAuth', {
        nextStep: `Log in with an OAuth token instead: astro login ${options.domain} --oauth`,
      });
    }
    const password = options.password ?? (await ports.askPassword());
    ports.addSecret(password);
    if (password === '') throw new UserError('local auth login failed: the password is empty');
    try {
      const answer = await houston.request(CREATE_TOKEN_MUTATION, { identity: username, password }, createTokenAnswer, ports.signal);
      return { token: answer.createToken.token.value, username };
    } catch (error) {
      throw new UserError(`local auth login failed: ${(error as Error).message}`, { cause: error });
    }
  }

  if (providers.length === 0) {
    throw new UserError('cannot authenticate, oauth is disabled', {
      nextStep: localEnabled ? `Log in with a username and password: astro login ${options.domain} --username <name>` : undefined,
    });
  }
  emit({ type: 'oauth-token-needed', tokenPageUrl: `${softwareAppUrl(options.domain, settings)}/token` });
  const token = (await ports.askOAuthToken()).trim();
  if (token === '') throw new UserError('No token was entered.', { nextStep: `Run astro login ${options.domain} again and paste the token.` });
  return { token };
}
