/**
 * A tiny stand-in for the Astro auth + REST endpoints and Houston, for unit tests of the login flows.
 * It checks what a real authorization server checks (PKCE S256, redirect_uri, single-use codes, state echo)
 * and records every request so tests can assert on what was sent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeOrg {
  id: string;
  name: string;
  product?: string;
}
export interface FakeWorkspace {
  id: string;
  name: string;
  organizationId: string;
}
export interface FakeDeployment {
  id: string;
  name: string;
  workspaceId: string;
  organizationId: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
  body?: string;
}

export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${randomBytes(16).toString('base64url')}`;
}

export class FakePlatform {
  url = '';
  readonly requests: RecordedRequest[] = [];
  /** What the authorize endpoint does when the "browser" loads it. */
  authorizeMode: 'approve' | 'deny' | 'drop-state' = 'approve';
  email = 'ada@example.com';
  organizations: FakeOrg[] = [{ id: 'org-1', name: 'Stellar Labs', product: 'HOSTED' }];
  workspaces: FakeWorkspace[] = [{ id: 'ws-1', name: 'Data Platform', organizationId: 'org-1' }];
  deployments: FakeDeployment[] = [
    { id: 'dep-1', name: 'prod', workspaceId: 'ws-1', organizationId: 'org-1' },
    { id: 'dep-2', name: 'staging', workspaceId: 'ws-2', organizationId: 'org-1' },
  ];
  accessTtlSeconds = 3600;
  /** Access tokens this platform accepts (issued by it, or registered by a test). */
  readonly validTokens = new Set<string>();
  readonly refreshTokens = new Map<string, string>();
  readonly issued: { accessToken: string; refreshToken: string }[] = [];
  houston = {
    localEnabled: true,
    providers: [{ name: 'google', displayName: 'Google', url: 'https://accounts.example.com' }],
    users: new Map([['ada@example.com', 'ada-password']]),
    tokens: new Set<string>(),
    workspaces: [
      { id: 'sw-1', label: 'Software A' },
      { id: 'sw-2', label: 'Software B' },
    ],
  };
  private codes = new Map<string, { challenge: string; redirectUri: string; used: boolean }>();
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: String(error) }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }

  /** Mints an access token this platform accepts (as if from an earlier login). */
  issueAccessToken(extra: Record<string, unknown> = {}): string {
    const token = fakeJwt({ sub: 'user-1', exp: Math.floor(Date.now() / 1000) + this.accessTtlSeconds, ...extra });
    this.validTokens.add(token);
    return token;
  }

  apiToken(permissions: string[], expSecondsFromNow = 3600): string {
    const token = fakeJwt({ sub: 'tok-1', apiTokenId: 'tok-1', permissions, exp: Math.floor(Date.now() / 1000) + expSecondsFromNow });
    this.validTokens.add(token);
    return token;
  }

  count(method: string, path: string): number {
    return this.requests.filter((r) => r.method === method && r.path === path).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      body,
    });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const route = `${req.method} ${url.pathname}`;

    if (route === 'GET /private/v1alpha1/cli/auth-config') {
      return json(200, { clientId: 'fake-client', audience: 'astronomer-ee', domainUrl: `${this.url}/auth/` });
    }
    if (route === 'GET /auth/authorize') return this.authorize(url, res);
    if (route === 'POST /auth/oauth/token') return this.token(new URLSearchParams(body), json);
    if (route === 'GET /auth/userinfo') {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!this.validTokens.has(token)) return json(401, { message: 'bad token' });
      return json(200, { email: this.email, name: 'Ada' });
    }
    if (url.pathname === '/houston/v1' && req.method === 'POST') return this.graphql(req, body, json);

    if (url.pathname.startsWith('/v1/')) {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!this.validTokens.has(token)) return json(401, { message: 'token is invalid or expired', statusCode: 401 });
      const parts = url.pathname.split('/').filter(Boolean).slice(1);
      if (parts.join('/') === 'users/self') return json(200, { id: 'user-1', username: this.email });
      if (parts.length === 1 && parts[0] === 'organizations') {
        return json(200, { organizations: this.organizations, totalCount: this.organizations.length, limit: 100, offset: 0 });
      }
      if (parts[0] === 'organizations' && parts.length === 2) {
        const org = this.organizations.find((o) => o.id === parts[1]);
        return org ? json(200, org) : json(404, { message: `organization ${parts[1]} not found`, statusCode: 404 });
      }
      if (parts[0] === 'organizations' && parts[2] === 'workspaces') {
        const list = this.workspaces.filter((w) => w.organizationId === parts[1]);
        return json(200, { workspaces: list, totalCount: list.length, limit: 1000, offset: 0 });
      }
      if (parts[0] === 'organizations' && parts[2] === 'deployments' && parts.length === 3) {
        const wanted = url.searchParams.getAll('workspaceIds');
        const list = this.deployments
          .filter((d) => d.organizationId === parts[1] && (wanted.length === 0 || wanted.includes(d.workspaceId)))
          .map((d) => ({ ...d, namespace: `ns-${d.id}`, runtimeVersion: '3.1-8', status: 'HEALTHY', isDagDeployEnabled: true }));
        return json(200, { deployments: list, totalCount: list.length, limit: 1000, offset: 0 });
      }
    }
    json(404, { message: `no route for ${route}` });
  }

  private authorize(url: URL, res: ServerResponse): void {
    const p = url.searchParams;
    const redirectUri = p.get('redirect_uri') ?? '';
    const target = new URL(redirectUri);
    if (p.get('code_challenge_method') !== 'S256' || !p.get('code_challenge') || p.get('client_id') !== 'fake-client') {
      res.writeHead(400).end('bad authorize request');
      return;
    }
    if (this.authorizeMode === 'deny') {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'User did not authorize the request');
    } else {
      const code = randomBytes(12).toString('base64url');
      this.codes.set(code, { challenge: p.get('code_challenge')!, redirectUri, used: false });
      target.searchParams.set('code', code);
    }
    if (this.authorizeMode !== 'drop-state' && p.get('state')) target.searchParams.set('state', p.get('state')!);
    res.writeHead(302, { location: target.toString() }).end();
  }

  private token(form: URLSearchParams, json: (status: number, value: unknown) => void): void {
    const grant = form.get('grant_type');
    if (grant === 'authorization_code') {
      const entry = this.codes.get(form.get('code') ?? '');
      if (!entry || entry.used) return json(403, { error: 'invalid_grant', error_description: 'Invalid authorization code' });
      entry.used = true;
      const challenge = createHash('sha256')
        .update(form.get('code_verifier') ?? '')
        .digest('base64url');
      if (challenge !== entry.challenge) return json(403, { error: 'invalid_grant', error_description: 'Failed to verify code verifier' });
      if (form.get('redirect_uri') !== entry.redirectUri) return json(403, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
      return json(200, this.mint());
    }
    if (grant === 'refresh_token') {
      if (!this.refreshTokens.has(form.get('refresh_token') ?? '')) {
        return json(403, { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
      }
      const answer = this.mint();
      return json(200, { ...answer, refresh_token: undefined });
    }
    json(400, { error: 'unsupported_grant_type', error_description: `grant ${grant}` });
  }

  private mint() {
    const accessToken = this.issueAccessToken();
    const refreshToken = `rt-${randomBytes(16).toString('base64url')}`;
    this.refreshTokens.set(refreshToken, accessToken);
    this.issued.push({ accessToken, refreshToken });
    return { access_token: accessToken, refresh_token: refreshToken, expires_in: this.accessTtlSeconds, token_type: 'Bearer', scope: 'openid' };
  }

  private graphql(req: IncomingMessage, body: string, json: (status: number, value: unknown) => void): void {
    const { query, variables } = JSON.parse(body) as { query: string; variables?: Record<string, string> };
    const token = req.headers.authorization;
    if (query.includes('authConfig')) {
      return json(200, {
        data: { authConfig: { localEnabled: this.houston.localEnabled, publicSignup: false, initialSignup: false, providers: this.houston.providers } },
      });
    }
    if (query.includes('createToken')) {
      if (this.houston.users.get(variables?.identity ?? '') !== variables?.password) {
        return json(200, { data: null, errors: [{ message: 'Invalid password and username combination' }] });
      }
      const value = `houston-${randomBytes(16).toString('hex')}`;
      this.houston.tokens.add(value);
      return json(200, { data: { createToken: { user: { id: 'u1', username: variables?.identity }, token: { value } } } });
    }
    if (query.includes('workspaces')) {
      if (!token || !this.houston.tokens.has(token)) {
        return json(200, { data: null, errors: [{ message: 'You do not have the appropriate permissions for that' }] });
      }
      return json(200, { data: { workspaces: this.houston.workspaces } });
    }
    json(400, { errors: [{ message: 'unknown query' }] });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A "browser" that follows the authorize redirect to the callback, the way a user clicking "Log in" would. */
export async function fetchBrowser(url: string): Promise<void> {
  const authorize = await fetch(url, { redirect: 'manual' });
  const location = authorize.headers.get('location');
  if (!location) throw new Error(`authorize answered ${authorize.status} without a redirect`);
  await fetch(location);
}
