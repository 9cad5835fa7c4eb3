/**
 * The OAuth side of the local platform: browser login with PKCE (through real Chromium and through plain HTTP),
 * the token endpoint's three grants, userinfo, and the registry token endpoint's credential rules.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ids, readResponse, removeDir, startTestStack, type TestStack } from './helpers.js';

let t: TestStack;
let callback: { server: Server; url: string; received: URLSearchParams[] };

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The authorize URL exactly as Astronomer's CLI builds it (spaces as %20, nothing else encoded). */
function authorizeUrl(challenge: string, redirectUri = callback.url, extra = '') {
  const { authDomainUrl } = t.stack.endpoints.platform;
  return (
    `${authDomainUrl}authorize?prompt=login&audience=astronomer-ee&client_id=local-astro-cli&redirect_uri=${redirectUri}` +
    `&scope=openid%20profile%20email%20offline_access&response_type=code&response_mode=query&code_challenge=${challenge}&code_challenge_method=S256${extra}`
  );
}

async function tokenRequest(fields: Record<string, string>) {
  return readResponse(
    await fetch(`${t.stack.endpoints.platform.authDomainUrl}oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    }),
  );
}

/** Logs in without a browser: load the page, submit its form, read the redirect. */
async function loginOverHttp(challenge: string, decision: 'allow' | 'deny' = 'allow', userId: string = ids.userAda, extra = '&state=xyz') {
  const page = await fetch(authorizeUrl(challenge, callback.url, extra));
  expect(page.status).toBe(200);
  const html = await page.text();
  const request = /name="request" value="([^"]+)"/.exec(html)?.[1];
  expect(request).toBeTruthy();
  const submitted = await fetch(`${t.stack.endpoints.platform.authDomainUrl}authorize`, {
    method: 'POST',
    redirect: 'manual',
    body: new URLSearchParams({ request: request!, user: userId, decision }),
  });
  expect(submitted.status).toBe(302);
  return new URL(submitted.headers.get('location')!).searchParams;
}

beforeAll(async () => {
  t = await startTestStack();
  const received: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    received.push(new URL(req.url ?? '/', 'http://localhost').searchParams);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  callback = { server, url: `http://localhost:${(server.address() as AddressInfo).port}/callback`, received };
});

afterAll(async () => {
  await new Promise((r) => callback?.server.close(r));
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('browser login (Chromium)', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows the user, and "Log in" sends a code that exchanges with the right verifier', async () => {
    const { verifier, challenge } = pkce();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl(challenge, callback.url, '&state=s1'));
    expect(await page.textContent('#email')).toBe('ada@example.com');
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('#login')]);
    const params = new URL(page.url()).searchParams;
    await context.close();
    expect(params.get('state')).toBe('s1');

    const tokens = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code: params.get('code')!,
      code_verifier: verifier,
      redirect_uri: callback.url,
    });
    expect(tokens.status).toBe(200);
    expect(tokens.json).toMatchObject({ token_type: 'Bearer', scope: 'openid profile email offline_access', expires_in: 3600 });
    for (const field of ['access_token', 'refresh_token', 'id_token']) expect(tokens.json[field]).toEqual(expect.any(String));

    const userinfo = await readResponse(
      await fetch(`${t.stack.endpoints.platform.authDomainUrl}userinfo`, { headers: { authorization: `Bearer ${tokens.json.access_token}` } }),
    );
    expect(userinfo.json).toMatchObject({ email: 'ada@example.com', name: 'Ada Lovelace' });
    expect((await t.api('/v1/users/self?createIfNotExist=true', { token: tokens.json.access_token })).json.id).toBe(ids.userAda);
  });

  it('"Deny" redirects with error and error_description', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl(pkce().challenge, callback.url, '&state=s2'));
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('#deny')]);
    const params = new URL(page.url()).searchParams;
    await context.close();
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('error_description')).toBeTruthy();
    expect(params.get('state')).toBe('s2');
    expect(params.get('code')).toBeNull();
  });
});

describe('authorization code + PKCE', () => {
  it('refuses a wrong verifier, and a code used twice', async () => {
    const { verifier, challenge } = pkce();
    const params = await loginOverHttp(challenge);
    const code = params.get('code')!;
    const wrong = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code,
      code_verifier: pkce().verifier,
      redirect_uri: callback.url,
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json).toEqual({ error: 'invalid_grant', error_description: expect.stringContaining('PKCE') });
    // The attempt spent the code: not even the right verifier redeems it now.
    const again = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: callback.url,
    });
    expect(again.json).toEqual({ error: 'invalid_grant', error_description: expect.stringContaining('already been used') });
  });

  it('refuses a redirect_uri that differs from the authorized one', async () => {
    const { verifier, challenge } = pkce();
    const code = (await loginOverHttp(challenge)).get('code')!;
    const res = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: 'http://localhost:1/other',
    });
    expect(res.status).toBe(403);
    expect(res.json.error_description).toContain('redirect_uri');
  });

  it('logs in as the chosen user', async () => {
    const { verifier, challenge } = pkce();
    const code = (await loginOverHttp(challenge, 'allow', ids.userGrace)).get('code')!;
    const tokens = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: callback.url,
    });
    const orgs = await t.api('/v1/organizations', { token: tokens.json.access_token });
    expect(orgs.json.organizations.map((o: any) => o.id)).toEqual([ids.orgNebula]);
  });

  it('only lets loopback http redirect URIs receive codes', async () => {
    for (const uri of ['https://localhost:12345/callback', 'http://evil.example.com/callback', 'http://localhost.evil.com:1/cb', 'not a url']) {
      const res = await fetch(authorizeUrl(pkce().challenge, encodeURIComponent(uri)), { redirect: 'manual' });
      expect(res.status, uri).toBe(400);
      expect(res.headers.get('location')).toBeNull();
    }
    for (const uri of ['http://127.0.0.1:9/cb', 'http://[::1]:9/cb']) {
      expect((await fetch(authorizeUrl(pkce().challenge, encodeURIComponent(uri)))).status, uri).toBe(200);
    }
  });

  it('sends malformed authorize requests back to the client as errors', async () => {
    const missingPkce = await fetch(authorizeUrl('tooshort'), { redirect: 'manual' });
    expect(missingPkce.status).toBe(302);
    expect(new URL(missingPkce.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    const plain = await fetch(authorizeUrl(pkce().challenge).replace('code_challenge_method=S256', 'code_challenge_method=plain'), { redirect: 'manual' });
    expect(new URL(plain.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });

  it('expires codes', async () => {
    const short = await startTestStack({ authCodeTtlSeconds: 0 }, mkdtempSync(join(tmpdir(), 'astro-platform-auth-')));
    try {
      const { verifier, challenge } = pkce();
      const base = short.stack.endpoints.platform.authDomainUrl;
      const html = await (
        await fetch(
          `${base}authorize?client_id=local-astro-cli&redirect_uri=${callback.url}&response_type=code&code_challenge=${challenge}&code_challenge_method=S256`,
        )
      ).text();
      const request = /name="request" value="([^"]+)"/.exec(html)![1]!;
      const redirect = await fetch(`${base}authorize`, {
        method: 'POST',
        redirect: 'manual',
        body: new URLSearchParams({ request, user: ids.userAda, decision: 'allow' }),
      });
      const code = new URL(redirect.headers.get('location')!).searchParams.get('code')!;
      await new Promise((r) => setTimeout(r, 20));
      const res = await readResponse(
        await fetch(`${base}oauth/token`, {
          method: 'POST',
          body: new URLSearchParams({
            client_id: 'local-astro-cli',
            grant_type: 'authorization_code',
            code,
            code_verifier: verifier,
            redirect_uri: callback.url,
          }),
        }),
      );
      expect(res.json).toEqual({ error: 'invalid_grant', error_description: 'authorization code has expired' });
    } finally {
      await short.stop();
      removeDir(short.stateDir);
    }
  });
});

describe('refresh and client credentials', () => {
  it('refreshes with seed and issued refresh tokens, and refuses revoked ones', async () => {
    const seeded = t.stack.tokens.refreshTokens.find((r) => !r.revoked)!;
    const ok = await tokenRequest({ client_id: 'local-astro-cli', grant_type: 'refresh_token', refresh_token: seeded.token });
    expect(ok.status).toBe(200);
    expect((await t.api('/v1/users/self', { token: ok.json.access_token })).status).toBe(200);

    const revoked = t.stack.tokens.refreshTokens.find((r) => r.revoked)!;
    const refused = await tokenRequest({ client_id: 'local-astro-cli', grant_type: 'refresh_token', refresh_token: revoked.token });
    expect(refused.status).toBe(403);
    expect(refused.json).toEqual({ error: 'invalid_grant', error_description: 'refresh token has been revoked' });
    const unknown = await tokenRequest({ client_id: 'local-astro-cli', grant_type: 'refresh_token', refresh_token: 'no-such-token' });
    expect(unknown.json.error).toBe('invalid_grant');

    const { verifier, challenge } = pkce();
    const code = (await loginOverHttp(challenge)).get('code')!;
    const login = await tokenRequest({
      client_id: 'local-astro-cli',
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: callback.url,
    });
    const refreshed = await tokenRequest({ client_id: 'local-astro-cli', grant_type: 'refresh_token', refresh_token: login.json.refresh_token });
    expect(refreshed.status).toBe(200);
    await t.api('/_platform/refresh-tokens/revoke', { method: 'POST', body: { refreshToken: login.json.refresh_token } });
    expect((await tokenRequest({ client_id: 'local-astro-cli', grant_type: 'refresh_token', refresh_token: login.json.refresh_token })).status).toBe(403);
  });

  it('issues API key tokens with permissions, and refuses a wrong secret', async () => {
    const key = t.stack.tokens.apiKeys[0]!;
    const ok = await tokenRequest({ client_id: key.clientId, client_secret: key.clientSecret, audience: 'astronomer-ee', grant_type: 'client_credentials' });
    expect(ok.status).toBe(200);
    const claims = JSON.parse(Buffer.from(ok.json.access_token.split('.')[1], 'base64url').toString());
    expect(claims.permissions).toContain(`organizationId:${key.organizationId}`);
    const bad = await tokenRequest({ client_id: key.clientId, client_secret: 'wrong-secret', grant_type: 'client_credentials' });
    expect(bad.status).toBe(401);
    expect(bad.json.error).toBe('access_denied');
  });

  it('answers malformed token requests with OAuth errors', async () => {
    expect((await tokenRequest({})).json).toEqual({ error: 'invalid_request', error_description: 'grant_type is required' });
    expect((await tokenRequest({ grant_type: 'password' })).json.error).toBe('unsupported_grant_type');
    expect((await tokenRequest({ grant_type: 'authorization_code', client_id: 'local-astro-cli' })).status).toBe(400);
    const json = await fetch(`${t.stack.endpoints.platform.authDomainUrl}oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{oops',
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('refuses userinfo without a user token', async () => {
    const url = `${t.stack.endpoints.platform.authDomainUrl}userinfo`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${t.token('cltokorgstellar0000000000')}` } })).status).toBe(401);
  });

  it('publishes a JWKS that verifies the tokens it issues', async () => {
    const { createRemoteJWKSet, jwtVerify } = await import('jose');
    const jwks = createRemoteJWKSet(new URL(`${t.stack.endpoints.platform.authDomainUrl}.well-known/jwks.json`));
    const { payload } = await jwtVerify(t.token('cltokwsdataplatform000000'), jwks);
    expect(payload.permissions).toEqual([`workspaceId:${ids.wsData}`, `organizationId:${ids.orgStellar}`]);
  });
});

describe('registry token endpoint', () => {
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const scope = 'repository:stellar-orbit-1234/airflow:push,pull';

  async function registryToken(authorization?: string, query = `service=astro-local-registry&scope=${encodeURIComponent(scope)}`) {
    return readResponse(await fetch(`${t.stack.endpoints.platform.url}/registry/token?${query}`, { headers: authorization ? { authorization } : {} }));
  }

  it('grants push,pull with cli + token, with or without the Bearer prefix', async () => {
    for (const password of [t.token('cltokorgstellar0000000000'), `Bearer ${t.token('cltokorgstellar0000000000')}`]) {
      const res = await registryToken(basic('cli', password));
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ token: expect.any(String), access_token: res.json.token, expires_in: 300, issued_at: expect.any(String) });
      const [header, payload] = res.json.token
        .split('.')
        .slice(0, 2)
        .map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
      expect(header).toMatchObject({ alg: 'RS256', x5c: [expect.any(String)] });
      expect(payload).toMatchObject({
        iss: 'astro-local-platform',
        aud: 'astro-local-registry',
        access: [{ type: 'repository', name: 'stellar-orbit-1234/airflow', actions: ['push', 'pull'] }],
      });
      for (const claim of ['sub', 'exp', 'nbf', 'iat', 'jti']) expect(payload).toHaveProperty(claim);
    }
  });

  it('grants nothing on repositories the token may not deploy to', async () => {
    const res = await registryToken(basic('cli', t.token('cltokorgnebula00000000000')));
    expect(res.status).toBe(200);
    expect(JSON.parse(Buffer.from(res.json.token.split('.')[1], 'base64url').toString()).access).toEqual([]);
  });

  it('refuses missing, wrong and unknown credentials with 401', async () => {
    expect((await registryToken()).status).toBe(401);
    expect((await registryToken(basic('cli', 'Bearer nope'))).status).toBe(401);
    expect((await registryToken(basic('cli', t.token('cltokexpired0000000000000')))).json.errors[0].message).toContain('expired');
    expect((await registryToken(basic('admin', t.token('cltokorgstellar0000000000')))).status).toBe(401);
    expect((await registryToken(basic('user', 'not-a-houston-token'))).status).toBe(401);
    expect(
      (await registryToken(basic('cli', t.token('cltokorgstellar0000000000')), 'service=astro-local-registry&scope=repository:UPPER/case:push')).status,
    ).toBe(400);
  });
});
