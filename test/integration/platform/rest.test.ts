/**
 * The REST v1 surface of the local platform: listings, paging and filters, who sees what, and the error contract
 * (status + `{message, requestId, statusCode}`) for every kind of bad request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ids, removeDir, startTestStack, type TestStack } from './helpers.js';

let t: TestStack;
const org = ids.orgStellar;

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('auth-config and users', () => {
  it('serves auth-config with a domainUrl ending in /', async () => {
    const res = await t.api('/private/v1alpha1/cli/auth-config', { headers: { 'x-astro-client-identifier': 'cli' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ clientId: 'local-astro-cli', audience: 'astronomer-ee', domainUrl: `${t.stack.endpoints.platform.url}/auth/` });
  });

  it('answers /users/self for a user token, and refuses it for API tokens', async () => {
    const user = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userAda)!.token;
    const self = await t.api('/v1/users/self?createIfNotExist=true', { token: user });
    expect(self.status).toBe(200);
    expect(self.json).toMatchObject({ id: ids.userAda, username: 'ada@example.com', fullName: 'Ada Lovelace', status: 'ACTIVE' });
    const api = await t.api('/v1/users/self', { token: t.token('cltokorgstellar0000000000') });
    expect(api.status).toBe(403);
  });
});

describe('organizations', () => {
  it('lists only the organizations a principal belongs to, with paging', async () => {
    const ada = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userAda)!.token;
    const all = await t.api('/v1/organizations?limit=100', { token: ada });
    expect(all.json).toMatchObject({ limit: 100, offset: 0, totalCount: 2 });
    expect(all.json.organizations.map((o: any) => o.id).sort()).toEqual([ids.orgNebula, ids.orgStellar].sort());

    const page1 = await t.api('/v1/organizations?limit=1&offset=0&sorts=name%3Aasc', { token: ada });
    const page2 = await t.api('/v1/organizations?limit=1&offset=1&sorts=name:asc', { token: ada });
    expect(page1.json.organizations.map((o: any) => o.name)).toEqual(['Nebula Corp']);
    expect(page2.json.organizations.map((o: any) => o.name)).toEqual(['Stellar Labs']);
    expect(page2.json.totalCount).toBe(2);

    const grace = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userGrace)!.token;
    expect((await t.api('/v1/organizations', { token: grace })).json.organizations.map((o: any) => o.id)).toEqual([ids.orgNebula]);
    const wsToken = t.token('cltokwsdataplatform000000');
    expect((await t.api('/v1/organizations?limit=100&offset=0', { token: wsToken })).json.organizations).toEqual([
      expect.objectContaining({ id: org, product: 'HOSTED' }),
    ]);
  });

  it('gets one organization, 403 for a foreign one, 404 for an unknown one', async () => {
    const grace = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userGrace)!.token;
    expect((await t.api(`/v1/organizations/${ids.orgNebula}`, { token: grace })).json).toMatchObject({
      id: ids.orgNebula,
      product: 'HYBRID',
      name: 'Nebula Corp',
    });
    expect((await t.api(`/v1/organizations/${org}`, { token: grace })).status).toBe(403);
    expect((await t.api('/v1/organizations/clorgunknown00000000000000', { token: grace })).status).toBe(404);
  });
});

describe('workspaces and deployments', () => {
  it('lists workspaces sorted by name and scoped to the token', async () => {
    const orgToken = t.token('cltokorgstellar0000000000');
    const res = await t.api(`/v1/organizations/${org}/workspaces?limit=1000&offset=0&sorts=name%3Aasc`, { token: orgToken });
    expect(res.json.workspaces.map((w: any) => w.name)).toEqual(['Analytics', 'Data Platform']);
    expect(res.json.workspaces[0]).toMatchObject({ organizationId: org, cicdEnforcedDefault: true });
    const wsToken = t.token('cltokwsdataplatform000000');
    expect((await t.api(`/v1/organizations/${org}/workspaces`, { token: wsToken })).json.workspaces.map((w: any) => w.id)).toEqual([ids.wsData]);
  });

  it('lists deployments with repeated-key filters and paging', async () => {
    const orgToken = t.token('cltokorgstellar0000000000');
    const all = await t.api(`/v1/organizations/${org}/deployments?limit=1000&offset=0`, { token: orgToken });
    expect(all.json.totalCount).toBe(6);
    const byWs = await t.api(`/v1/organizations/${org}/deployments?limit=1000&offset=0&workspaceIds=${ids.wsAnalytics}`, { token: orgToken });
    expect(byWs.json.deployments.map((d: any) => d.id)).toEqual([ids.depCicd]);
    const byIds = await t.api(`/v1/organizations/${org}/deployments?deploymentIds=${ids.depDagOn}&deploymentIds=${ids.depDagOff}`, { token: orgToken });
    expect(byIds.json.deployments.map((d: any) => d.id).sort()).toEqual([ids.depDagOff, ids.depDagOn].sort());
    const byName = await t.api(`/v1/organizations/${org}/deployments?names=dag-deploy-off`, { token: orgToken });
    expect(byName.json.deployments.map((d: any) => d.id)).toEqual([ids.depDagOff]);
    const paged = await t.api(`/v1/organizations/${org}/deployments?limit=2&offset=4&sorts=createdAt:asc`, { token: orgToken });
    expect(paged.json).toMatchObject({ limit: 2, offset: 4, totalCount: 6 });
    expect(paged.json.deployments).toHaveLength(2);

    const depToken = t.token('cltokdepdagon000000000000');
    expect((await t.api(`/v1/organizations/${org}/deployments`, { token: depToken })).json.deployments.map((d: any) => d.id)).toEqual([ids.depDagOn]);
  });

  it('returns a deployment with every field the deploy path reads', async () => {
    const res = await t.api(`/v1/organizations/${org}/deployments/${ids.depCicd}`, { token: t.token('cltokorgstellar0000000000') });
    expect(res.status).toBe(200);
    const d = res.json;
    for (const field of [
      'id',
      'name',
      'namespace',
      'runtimeVersion',
      'astroRuntimeVersion',
      'organizationId',
      'workspaceId',
      'webServerUrl',
      'type',
      'isDagDeployEnabled',
      'isCicdEnforced',
      'status',
      'createdAt',
      'updatedAt',
      'imageRepository',
      'imageTag',
    ]) {
      expect(d, field).toHaveProperty(field);
    }
    expect(d).toMatchObject({ type: 'DEDICATED', isCicdEnforced: true, isDagDeployEnabled: true, runtimeVersion: '3.1-8', status: 'HEALTHY' });
    expect(Number.isNaN(Date.parse(d.createdAt))).toBe(false);
    // webServerUrl is served, so the link a deploy prints opens a page.
    const page = await fetch(d.webServerUrl);
    expect(page.status).toBe(200);
  });

  it('serves deployment-options with the runtime releases', async () => {
    const res = await t.api(`/v1/organizations/${org}/deployment-options`, { token: t.token('cltokwsdataplatform000000') });
    const versions = res.json.runtimeReleases.map((r: any) => r.version);
    expect(versions).toEqual(expect.arrayContaining(['3.1-8', '3.1-9', '12.5.0', '13.1.0']));
    expect(res.json.runtimeReleases.find((r: any) => r.version === '3.1-8')).toMatchObject({ airflowVersion: '3.1.8', channel: 'stable' });
  });

  it('serves the updates feed fixture', async () => {
    const res = await t.api('/updates/astronomer-runtime');
    expect(res.status).toBe(200);
    expect(Object.keys(res.json.runtimeVersionsV3)).toContain('3.1-8');
  });

  it('accepts API key access tokens from client credentials', async () => {
    const key = t.stack.tokens.apiKeys[0]!;
    const form = new URLSearchParams({ client_id: key.clientId, client_secret: key.clientSecret, audience: 'astronomer-ee', grant_type: 'client_credentials' });
    const tokenRes = await fetch(`${t.stack.endpoints.platform.authDomainUrl}oauth/token`, { method: 'POST', body: form });
    const { access_token: accessToken } = (await tokenRes.json()) as { access_token: string };
    const deployments = await t.api(`/v1/organizations/${key.organizationId}/deployments`, { token: accessToken });
    expect(deployments.json.deployments.map((d: any) => d.workspaceId)).toEqual([key.workspaceId]);
  });

  it('mints API tokens on demand and refuses them once revoked', async () => {
    const minted = await t.api('/_platform/api-tokens', { method: 'POST', body: { organizationId: org, workspaceId: ids.wsAnalytics, expiresInSeconds: 60 } });
    expect(minted.json.permissions).toEqual([`workspaceId:${ids.wsAnalytics}`, `organizationId:${org}`]);
    const payload = JSON.parse(Buffer.from(minted.json.token.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ apiTokenId: minted.json.id, org_id: org, permissions: minted.json.permissions });
    expect((await t.api(`/v1/organizations/${org}/deployments`, { token: minted.json.token })).json.totalCount).toBe(1);
    await t.api(`/_platform/api-tokens/${minted.json.id}/revoke`, { method: 'POST' });
    expect((await t.api(`/v1/organizations/${org}/deployments`, { token: minted.json.token })).status).toBe(401);
  });
});

describe('bad input gets the documented error, never a crash', () => {
  const dep = `/v1/organizations/${org}/deployments/${ids.depDagOn}`;
  const cases: {
    name: string;
    method?: string;
    path: string;
    token?: 'org' | 'none' | 'basic' | 'garbage' | 'expired' | 'grace';
    body?: string;
    status: number;
    field?: string;
    contains?: string;
  }[] = [
    { name: 'no authorization', path: '/v1/organizations', token: 'none', status: 401 },
    { name: 'Basic instead of Bearer', path: '/v1/organizations', token: 'basic', status: 401 },
    { name: 'garbage bearer token', path: '/v1/organizations', token: 'garbage', status: 401 },
    { name: 'expired API token', path: '/v1/organizations', token: 'expired', status: 401, contains: 'expired' },
    { name: 'negative limit', path: '/v1/organizations?limit=-1', status: 400, field: 'limit' },
    { name: 'limit too large', path: '/v1/organizations?limit=5000', status: 400, field: 'limit' },
    { name: 'fractional limit', path: `/v1/organizations/${org}/deployments?limit=1.5`, status: 400, field: 'limit' },
    { name: 'non-numeric offset', path: `/v1/organizations/${org}/workspaces?offset=abc`, status: 400, field: 'offset' },
    { name: 'bad sort', path: `/v1/organizations/${org}/workspaces?sorts=name:sideways`, status: 400, field: 'sorts.0' },
    { name: 'bad enum filter', path: `/v1/organizations/${org}/deployment-options?deploymentType=HUGE`, status: 400, field: 'deploymentType' },
    { name: 'bad boolean', path: '/v1/users/self?createIfNotExist=maybe', token: 'grace', status: 400, field: 'createIfNotExist' },
    { name: 'unknown organization', path: '/v1/organizations/clorgunknown00000000000000/deployments', status: 404 },
    { name: 'foreign organization', path: `/v1/organizations/${ids.orgNebula}/deployments`, status: 403 },
    { name: 'unknown deployment', path: `/v1/organizations/${org}/deployments/cldepunknown0000000000000`, status: 404 },
    { name: 'deployment of another org', path: `/v1/organizations/${org}/deployments/${ids.depHybrid}`, status: 404 },
    { name: 'unknown deploy', path: `${dep}/deploys/cldplunknown`, status: 404 },
    { name: 'body is not JSON', method: 'POST', path: `${dep}/deploys`, body: '{type:', status: 400, contains: 'not valid JSON' },
    { name: 'body is an array', method: 'POST', path: `${dep}/deploys`, body: '[]', status: 400 },
    { name: 'body is a string', method: 'POST', path: `${dep}/deploys`, body: '"IMAGE"', status: 400 },
    { name: 'missing type', method: 'POST', path: `${dep}/deploys`, body: '{}', status: 400, field: 'type' },
    { name: 'unknown type', method: 'POST', path: `${dep}/deploys`, body: '{"type":"EVERYTHING"}', status: 400, field: 'type' },
    {
      name: 'description not a string',
      method: 'POST',
      path: `${dep}/deploys`,
      body: '{"type":"DAG_ONLY","description":5}',
      status: 400,
      field: 'description',
    },
    {
      name: 'git without commitSha',
      method: 'POST',
      path: `${dep}/deploys`,
      body: '{"type":"DAG_ONLY","git":{"provider":"GITHUB"}}',
      status: 400,
      field: 'git.commitSha',
    },
    {
      name: 'git with unknown provider',
      method: 'POST',
      path: `${dep}/deploys`,
      body: '{"type":"DAG_ONLY","git":{"provider":"SVN","commitSha":"abc"}}',
      status: 400,
      field: 'git.provider',
    },
    { name: 'BUNDLE deploy', method: 'POST', path: `${dep}/deploys`, body: '{"type":"BUNDLE"}', status: 400, contains: 'BUNDLE' },
    { name: 'finalize with a numeric version', method: 'POST', path: `${dep}/deploys/cldplunknown/finalize`, body: '{"dagTarballVersion":5}', status: 404 },
    { name: 'wrong method on a collection', method: 'PUT', path: '/v1/organizations', status: 405 },
    { name: 'wrong method on finalize', method: 'GET', path: `${dep}/deploys/x/finalize`, status: 405 },
    { name: 'unknown route', path: '/v1/nothing/here', status: 404 },
    { name: 'broken percent-encoding', path: '/v1/organizations/%E0%A4%A', status: 404 },
  ];

  it.each(cases)('$name → $status', async (c) => {
    const headers: Record<string, string> = {};
    if (c.token === 'basic') headers.authorization = 'Basic Y2xpOnNlY3JldA==';
    const token =
      c.token === 'none' || c.token === 'basic'
        ? undefined
        : c.token === 'garbage'
          ? 'eyJhbGciOiJub25lIn0.e30.'
          : c.token === 'expired'
            ? t.token('cltokexpired0000000000000')
            : c.token === 'grace'
              ? t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userGrace)!.token
              : t.token('cltokorgstellar0000000000');
    const res = await t.api(c.path, { method: c.method, token, body: c.body, headers });
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.json).toMatchObject({ message: expect.any(String), requestId: expect.stringMatching(/^req_/), statusCode: c.status });
    if (c.field) expect(res.json.fieldErrors.map((f: any) => f.field)).toContain(c.field);
    if (c.contains) expect(res.json.message).toContain(c.contains);
    if (c.status === 405) expect(res.headers.get('allow')).toBeTruthy();
  });

  it('finalize validates its body', async () => {
    const token = t.token('cltokorgstellar0000000000');
    const deploy = (await t.api(`${dep}/deploys`, { method: 'POST', token, body: { type: 'DAG_ONLY' } })).json;
    const res = await t.api(`${dep}/deploys/${deploy.id}/finalize`, { method: 'POST', token, body: { dagTarballVersion: 5 } });
    expect(res.status).toBe(400);
    expect(res.json.fieldErrors).toEqual([expect.objectContaining({ field: 'dagTarballVersion' })]);
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await t.api(`${dep}/deploys`, {
      method: 'POST',
      token: t.token('cltokorgstellar0000000000'),
      body: `{"description":"${'x'.repeat(11 * 1024 * 1024)}"}`,
    });
    expect(res.status).toBe(413);
    expect(res.json.statusCode).toBe(413);
  });

  it('records every request with authorization redacted', async () => {
    const since = (await t.api('/_platform/requests')).json.lastSeq;
    const token = t.token('cltokorgstellar0000000000');
    await t.api(`/v1/organizations/${org}/deployments?limit=1000&offset=0&workspaceIds=${ids.wsData}`, { token });
    await t.api(`${dep}/deploys`, { method: 'POST', token, body: { type: 'DAG_ONLY', description: 'recorded' } });
    const log = (await t.api(`/_platform/requests?since=${since}`)).json.requests;
    expect(log.map((r: any) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      `GET /v1/organizations/${org}/deployments 200`,
      `POST /v1/organizations/${org}/deployments/${ids.depDagOn}/deploys 200`,
    ]);
    expect(log[0].query).toEqual({ limit: '1000', offset: '0', workspaceIds: ids.wsData });
    expect(log[0].headers.authorization).toBe('Bearer [redacted]');
    expect(log[1].body).toEqual({ type: 'DAG_ONLY', description: 'recorded' });
    expect(JSON.stringify(log)).not.toContain(token);
  });

  it('still answers after all of that', async () => {
    expect((await t.api('/_platform/health')).json).toEqual({ ok: true, blobReady: true });
  });
});
