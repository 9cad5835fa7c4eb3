/**
 * The OAuth side of Astro, as the CLI sees it: auth-config, a real browser login page (authorization code with
 * PKCE S256, loopback redirect URIs only), the token endpoint (authorization_code, refresh_token,
 * client_credentials), userinfo, and a JWKS so clients can verify what they are given.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Platform } from '../platform.js';
import type { SeedUser } from '../seed.js';
import { HttpError, sendHtml, sendJson, type RequestContext, type Router } from './http.js';
import { escapeHtml } from './rest.js';

const loginScope = 'openid profile email offline_access';
const pendingTtlMs = 10 * 60_000;

interface PendingAuthorization {
  clientId: string;
  redirectUri: string;
  state?: string;
  scope: string;
  codeChallenge: string;
  expiresAt: number;
}

interface IssuedCode {
  userId: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  codeChallenge: string;
  expiresAt: number;
  used: boolean;
}

function oauthError(status: number, error: string, description: string): HttpError {
  return new HttpError(status, description, { code: error });
}

/** Only http loopback redirect URIs, any port: the CLI's callback server is all that may receive codes. */
export function isLoopbackRedirect(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) && url.hash === '' && url.username === '';
}

export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function registerAuthRoutes(router: Router, platform: Platform): void {
  const pending = new Map<string, PendingAuthorization>();
  const codes = new Map<string, IssuedCode>();
  const { clientId, audience } = platform.seed.oauth;
  const domainUrl = () => `${platform.urls.platform}/auth/`;

  const sweep = () => {
    const now = platform.now();
    for (const [id, p] of pending) if (p.expiresAt < now) pending.delete(id);
    for (const [code, c] of codes) if (c.expiresAt + 60_000 < now) codes.delete(code);
  };

  router.on('GET', '/private/v1alpha1/cli/auth-config', (ctx) => {
    sendJson(ctx.res, 200, { clientId, audience, domainUrl: domainUrl() });
  });

  router.on('GET', '/auth/.well-known/jwks.json', (ctx) => sendJson(ctx.res, 200, { keys: [platform.keys.publicJwk] }));

  router.on('GET', '/auth/.well-known/openid-configuration', (ctx) => {
    const base = domainUrl();
    sendJson(ctx.res, 200, {
      issuer: 'astro-local-platform',
      authorization_endpoint: `${base}authorize`,
      token_endpoint: `${base}oauth/token`,
      userinfo_endpoint: `${base}userinfo`,
      jwks_uri: `${base}.well-known/jwks.json`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  });

  router.on('GET', '/auth/authorize', (ctx) => {
    sweep();
    const q = ctx.url.searchParams;
    const redirectUri = q.get('redirect_uri') ?? '';
    // Without a trustworthy redirect URI the error can only be shown, never sent anywhere (RFC 6749 4.1.2.1).
    if (!isLoopbackRedirect(redirectUri)) {
      sendHtml(
        ctx.res,
        400,
        errorPage(
          'Invalid redirect_uri',
          redirectUri
            ? `${redirectUri} is not allowed: only http://localhost, http://127.0.0.1 or http://[::1] (any port) may receive the login.`
            : 'The redirect_uri parameter is missing.',
        ),
      );
      return;
    }
    if (q.get('client_id') !== clientId) {
      sendHtml(ctx.res, 400, errorPage('Unknown client', `client_id must be ${clientId}, got ${q.get('client_id') ?? '(none)'}.`));
      return;
    }
    const state = q.get('state') ?? undefined;
    const fail = (error: string, description: string) => redirect(ctx, redirectUri, { error, error_description: description, state });
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
    const mode = q.get('response_mode');
    if (mode && mode !== 'query') return fail('invalid_request', 'only response_mode=query is supported');
    const challenge = q.get('code_challenge') ?? '';
    if (q.get('code_challenge_method') !== 'S256') return fail('invalid_request', 'PKCE is required: code_challenge_method must be S256');
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) return fail('invalid_request', 'code_challenge must be a base64url SHA-256 digest (43 characters)');

    const requestId = randomBytes(16).toString('base64url');
    pending.set(requestId, {
      clientId,
      redirectUri,
      state,
      scope: q.get('scope') ?? loginScope,
      codeChallenge: challenge,
      expiresAt: platform.now() + pendingTtlMs,
    });
    const hint = q.get('login_hint');
    const selected = (hint && platform.userByIdentity(hint)) || platform.user(platform.seed.defaultLoginUserId)!;
    sendHtml(ctx.res, 200, loginPage(requestId, platform.seed.users, selected, new URL(redirectUri).host), {
      'cache-control': 'no-store',
    });
  });

  router.on('POST', '/auth/authorize', async (ctx) => {
    const form = await ctx.form();
    const request = pending.get(form.request ?? '');
    if (!request || request.expiresAt < platform.now()) {
      sendHtml(ctx.res, 400, errorPage('Login expired', 'This login page is no longer valid. Start the login again from the CLI.'));
      return;
    }
    pending.delete(form.request!);
    if (form.decision !== 'allow') {
      redirect(ctx, request.redirectUri, {
        error: 'access_denied',
        error_description: 'The user denied access to the Astro CLI',
        state: request.state,
      });
      return;
    }
    const user = platform.user(form.user ?? '');
    if (!user) {
      sendHtml(ctx.res, 400, errorPage('Unknown user', 'Pick one of the listed users.'));
      return;
    }
    const code = randomBytes(24).toString('base64url');
    codes.set(code, {
      userId: user.id,
      clientId: request.clientId,
      redirectUri: request.redirectUri,
      scope: request.scope,
      codeChallenge: request.codeChallenge,
      expiresAt: platform.now() + platform.options.authCodeTtlSeconds * 1000,
      used: false,
    });
    redirect(ctx, request.redirectUri, { code, state: request.state });
  });

  router.on('POST', '/auth/oauth/token', async (ctx) => {
    const form = await ctx.form();
    const grant = form.grant_type;
    let answer: Record<string, unknown>;
    if (!grant) throw oauthError(400, 'invalid_request', 'grant_type is required');
    if (grant === 'authorization_code') answer = await exchangeCode(form);
    else if (grant === 'refresh_token') answer = await refresh(form);
    else if (grant === 'client_credentials') answer = await clientCredentials(form);
    else throw oauthError(400, 'unsupported_grant_type', `grant_type ${grant} is not supported`);
    sendJson(ctx.res, 200, answer, { 'cache-control': 'no-store' });
  });

  const userTokens = async (user: SeedUser, scope: string, refreshToken: string) => {
    const ttl = platform.options.accessTokenTtlSeconds;
    return {
      access_token: await platform.tokens.userAccessToken(user.id, clientId, ttl, scope),
      refresh_token: refreshToken,
      id_token: await platform.tokens.idToken(user, clientId, ttl),
      scope,
      expires_in: ttl,
      token_type: 'Bearer',
    };
  };

  const exchangeCode = async (form: Record<string, string>) => {
    for (const field of ['code', 'code_verifier', 'redirect_uri', 'client_id']) {
      if (!form[field]) throw oauthError(400, 'invalid_request', `${field} is required for grant_type authorization_code`);
    }
    if (form.client_id !== clientId) throw oauthError(401, 'invalid_client', `unknown client_id ${form.client_id}`);
    const issued = codes.get(form.code!);
    if (!issued) throw oauthError(403, 'invalid_grant', 'unknown authorization code');
    if (issued.used) throw oauthError(403, 'invalid_grant', 'authorization code has already been used');
    issued.used = true;
    if (issued.expiresAt < platform.now()) throw oauthError(403, 'invalid_grant', 'authorization code has expired');
    if (issued.redirectUri !== form.redirect_uri) throw oauthError(403, 'invalid_grant', 'redirect_uri does not match the one used to authorize');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(form.code_verifier!) || !safeEqual(pkceChallenge(form.code_verifier!), issued.codeChallenge)) {
      throw oauthError(403, 'invalid_grant', 'PKCE verification failed: code_verifier does not match code_challenge');
    }
    const user = platform.user(issued.userId)!;
    const refreshToken = `rt_${randomBytes(32).toString('base64url')}`;
    platform.state.update((s) => {
      s.refreshTokens[refreshToken] = { userId: user.id, revoked: false, issuedAt: platform.isoNow() };
    });
    return userTokens(user, issued.scope, refreshToken);
  };

  const refresh = async (form: Record<string, string>) => {
    if (!form.refresh_token) throw oauthError(400, 'invalid_request', 'refresh_token is required for grant_type refresh_token');
    if (form.client_id && form.client_id !== clientId) throw oauthError(401, 'invalid_client', `unknown client_id ${form.client_id}`);
    const stored = platform.state.get().refreshTokens[form.refresh_token];
    const seeded = platform.seed.refreshTokens.find((r) => r.token === form.refresh_token);
    const record = stored ?? seeded;
    if (!record) throw oauthError(403, 'invalid_grant', 'unknown or invalid refresh token');
    if (record.revoked) throw oauthError(403, 'invalid_grant', 'refresh token has been revoked');
    const user = platform.user(record.userId);
    if (!user) throw oauthError(403, 'invalid_grant', 'refresh token belongs to an unknown user');
    return userTokens(user, loginScope, form.refresh_token);
  };

  const clientCredentials = async (form: Record<string, string>) => {
    const key = platform.seed.apiKeys.find((k) => k.clientId === form.client_id);
    if (!key || !form.client_secret || !safeEqual(key.clientSecret, form.client_secret)) {
      throw oauthError(401, 'access_denied', 'Unauthorized: unknown client_id or wrong client_secret');
    }
    const ttl = platform.options.accessTokenTtlSeconds;
    return {
      access_token: await platform.tokens.apiKeyAccessToken(key.clientId, key, ttl),
      scope: '',
      expires_in: ttl,
      token_type: 'Bearer',
    };
  };

  const userinfo = async (ctx: RequestContext) => {
    const header = ctx.req.headers.authorization;
    const token = header && /^bearer\s+(\S+)$/i.exec(header.trim())?.[1];
    if (!token) throw oauthError(401, 'invalid_token', 'missing bearer access token');
    let principal;
    try {
      principal = await platform.verifyPlatformToken(token);
    } catch (error) {
      throw oauthError(401, 'invalid_token', (error as Error).message);
    }
    if (principal.kind !== 'user') throw oauthError(401, 'invalid_token', 'userinfo needs a user access token, not an API token or key');
    const user = platform.user(principal.userId)!;
    const [given, ...family] = user.name.split(' ');
    sendJson(ctx.res, 200, {
      sub: user.id,
      email: user.email,
      email_verified: true,
      name: user.name,
      given_name: given,
      family_name: family.join(' '),
      nickname: user.email.split('@')[0],
      picture: '',
      updated_at: user.createdAt,
    });
  };
  router.on('GET', '/auth/userinfo', userinfo);
  router.on('POST', '/auth/userinfo', userinfo);

  router.on('POST', '/_platform/refresh-tokens/revoke', async (ctx) => {
    const body = (await ctx.json()) as { refreshToken?: unknown } | undefined;
    const token = typeof body?.refreshToken === 'string' ? body.refreshToken : '';
    const seeded = platform.seed.refreshTokens.find((r) => r.token === token);
    const stored = platform.state.get().refreshTokens[token];
    if (!seeded && !stored) throw new HttpError(404, 'unknown refresh token');
    platform.state.update((s) => {
      s.refreshTokens[token] = { userId: (stored ?? seeded)!.userId, revoked: true, issuedAt: stored?.issuedAt ?? platform.isoNow() };
    });
    sendJson(ctx.res, 200, { revoked: true });
  });
}

function redirect(ctx: RequestContext, target: string, params: Record<string, string | undefined>): void {
  const url = new URL(target);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  ctx.res.writeHead(302, { location: url.toString(), 'cache-control': 'no-store', 'content-length': 0 });
  ctx.res.end();
}

const pageStyle =
  'body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1b1b3a}' +
  'fieldset{border:1px solid #ccd;border-radius:8px;padding:1rem}label{display:block;margin:.4rem 0}' +
  'button{font-size:1rem;padding:.6rem 1.4rem;margin:1rem .6rem 0 0;border-radius:6px;border:1px solid #445;cursor:pointer}' +
  '#login{background:#3b2cc8;color:#fff}';

function loginPage(requestId: string, users: SeedUser[], selected: SeedUser, redirectHost: string): string {
  const options = users
    .map(
      (u) =>
        `<label><input type="radio" name="user" value="${escapeHtml(u.id)}"${u.id === selected.id ? ' checked' : ''}> ` +
        `${escapeHtml(u.name)} &lt;${escapeHtml(u.email)}&gt;</label>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in to Astro (local platform)</title><style>${pageStyle}</style></head>
<body>
<h1>Log in to Astro</h1>
<p>The Astro CLI on <code>${escapeHtml(redirectHost)}</code> asks to act as:</p>
<p id="user"><b>${escapeHtml(selected.name)}</b> (<span id="email">${escapeHtml(selected.email)}</span>)</p>
<form method="post" action="/auth/authorize">
<input type="hidden" name="request" value="${escapeHtml(requestId)}">
<fieldset><legend>Log in as</legend>
${options}
</fieldset>
<button type="submit" id="login" name="decision" value="allow">Log in</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>
</body></html>`;
}

function errorPage(title: string, detail: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${pageStyle}</style></head>` +
    `<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p></body></html>`
  );
}
