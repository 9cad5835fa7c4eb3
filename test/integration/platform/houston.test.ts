/**
 * Houston (Astronomer Software) on the local platform: the GraphQL documents Astronomer's CLI sends, in each
 * version's shape, the DAG server upload, and image pushes with Houston credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTinyImage,
  dagBundle,
  ids,
  pushImage,
  readResponse,
  removeDir,
  removeImage,
  sampleDag,
  startTestStack,
  waitFor,
  type TestStack,
} from './helpers.js';

let t: TestStack;
const images: string[] = [];

const denied = 'You do not have the appropriate permissions for that';

async function gql(query: string, variables?: Record<string, unknown> | null, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = token;
  return readResponse(await fetch(t.stack.endpoints.houston.graphqlUrl, { method: 'POST', headers, body: JSON.stringify({ query, variables }) }));
}

const adaToken = () => t.stack.tokens.houston.userTokens.find((u) => u.userId === ids.userAda)!.token;
const graceToken = () => t.stack.tokens.houston.userTokens.find((u) => u.userId === ids.userGrace)!.token;

// Query documents as the CLI writes them (section 6 of the platform reference).
const appConfig025 = `query AppConfig { appConfig { version baseDomain smtpConfigured manualReleaseNames configureDagDeployment nfsMountDagDeployment manualNamespaceNames hardDeleteDeployment } }`;
const appConfig100 = `query AppConfig($clusterId: Uuid) { appConfig(clusterId: $clusterId) { version baseDomain byoUpdateRegistryHost smtpConfigured manualReleaseNames configureDagDeployment nfsMountDagDeployment manualNamespaceNames hardDeleteDeployment triggererEnabled featureFlags } }`;
const appConfig200 = `query AppConfig($clusterId: Uuid, $workspaceUuid: Uuid, $deploymentUuid: Uuid) { appConfig(clusterId: $clusterId, workspaceUuid: $workspaceUuid, deploymentUuid: $deploymentUuid) { version baseDomain byoUpdateRegistryHost smtpConfigured featureFlags } }`;
const authConfigQuery = `query GetAuthConfig($redirect: String) { authConfig(redirect: $redirect) { localEnabled publicSignup initialSignup providers { name displayName url } } }`;
const createToken = `mutation createBasicToken($identity: String, $password: String!) { createToken(identity: $identity, password: $password) { user { id fullName username status createdAt updatedAt } token { value } } }`;
const getWorkspace = `query GetWorkspace($workspaceUuid: Uuid!) { workspace(workspaceUuid: $workspaceUuid) { id label description createdAt updatedAt roleBindings { role user { id username } serviceAccount { id label } } } }`;
const getWorkspaces = `query GetWorkspaces { workspaces { id label description createdAt updatedAt roleBindings { role user { id username } serviceAccount { id label } } } }`;
const paginatedWorkspaces = `query paginatedWorkspaces($pageSize: Int $pageNumber: Int) { paginatedWorkspaces(take: $pageSize pageNumber: $pageNumber) { id label description createdAt updatedAt } }`;
const workspaceDeployments100 = `query GetDeployment($workspaceId: Uuid!, $releaseName: String) { workspaceDeployments(workspaceUuid: $workspaceId, releaseName: $releaseName) { id type label releaseName workspace { id } deployInfo { nextCli current } version runtimeVersion clusterId createdAt updatedAt } }`;
const deployment029 = `query GetDeployment($id: String!) { deployment(where: {id: $id}) { id airflowVersion desiredAirflowVersion runtimeVersion desiredRuntimeVersion runtimeAirflowVersion releaseName urls { type url } dagDeployment { type } } }`;
const deployment100 = `query GetDeployment($id: String!) { deployment(where: {id: $id}) { id runtimeVersion runtimeAirflowVersion releaseName urls { type url } dagDeployment { type } clusterId } }`;
const deploymentConfig025 = `query DeploymentInfo { deploymentConfig { airflowImages { version tag } airflowVersions defaultAirflowImageTag } }`;
const deploymentConfig101 = `query DeploymentInfo { deploymentConfig { __typename } }`;
const runtimeReleases = `query runtimeReleases($airflowVersion: String, $clusterId: Uuid) { runtimeReleases(airflowVersion: $airflowVersion, clusterId: $clusterId) { version airflowVersion airflowDatabaseMigrations } }`;
const updateImage025 = `mutation updateDeploymentImage($releaseName:String!, $image:String!, $airflowVersion:String, $runtimeVersion:String,) { updateDeploymentImage(releaseName:$releaseName, image:$image, airflowVersion:$airflowVersion, runtimeVersion:$runtimeVersion) { releaseName airflowVersion runtimeVersion } }`;
const updateImage101 = `mutation updateDeploymentImage($releaseName: String!, $image: String!, $runtimeVersion: String!) { updateDeploymentImage(releaseName: $releaseName, image: $image, runtimeVersion: $runtimeVersion) { releaseName runtimeVersion } }`;
const upsert210 = `mutation upsertDeployment($releaseName: String!, $image: String!, $runtimeVersion: String!) { upsertDeployment(releaseName: $releaseName, image: $image, runtimeVersion: $runtimeVersion) { id releaseName runtimeVersion } }`;

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await Promise.all(images.map(removeImage));
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('app and auth config (no token needed)', () => {
  it('answers every appConfig shape with version 1.0.0 and the seed feature flags', async () => {
    const old = await gql(appConfig025);
    expect(old.json.data.appConfig).toMatchObject({ version: '1.0.0', baseDomain: 'localhost', configureDagDeployment: true, nfsMountDagDeployment: true });
    const v1 = await gql(appConfig100, { clusterId: 'ckclusterlocal00000000000' });
    expect(v1.json.data.appConfig.featureFlags).toMatchObject({
      dagOnlyDeployment: true,
      byoUpdateRegistryEnabled: false,
      nfsMountDagDeployment: true,
      gitSyncDagDeployment: true,
    });
    expect(v1.json.data.appConfig.byoUpdateRegistryHost).toBe(`${t.stack.endpoints.registry.host}/byo/airflow`);
    const v2 = await gql(appConfig200, { clusterId: 'c', workspaceUuid: ids.swWorkspaceA, deploymentUuid: ids.swDagDeploy }, adaToken());
    expect(v2.json.data.appConfig.version).toBe('1.0.0');
  });

  it('serves authConfig and issues tokens for local users', async () => {
    expect((await gql(authConfigQuery)).json.data.authConfig).toEqual({ localEnabled: true, publicSignup: false, initialSignup: false, providers: [] });
    const ok = await gql(createToken, { identity: 'ada@example.com', password: 'ada-password' });
    expect(ok.json.data.createToken.user).toMatchObject({ id: ids.userAda, username: 'ada@example.com' });
    const token = ok.json.data.createToken.token.value;
    expect((await gql(getWorkspaces, null, token)).json.data.workspaces).toHaveLength(2);
    const bad = await gql(createToken, { identity: 'ada@example.com', password: 'wrong' });
    expect(bad.status).toBe(200);
    expect(bad.json.errors[0].message).toBe('Invalid username or password');
    expect(bad.json.data.createToken).toBeNull();
  });
});

describe('workspaces and deployments', () => {
  it('lists workspaces the caller belongs to, in both list shapes', async () => {
    const all = await gql(getWorkspaces, null, adaToken());
    expect(all.json.data.workspaces.map((w: any) => w.id)).toEqual([ids.swWorkspaceA, ids.swWorkspaceB]);
    expect(all.json.data.workspaces[0].roleBindings).toEqual(
      expect.arrayContaining([{ role: 'WORKSPACE_ADMIN', user: { id: ids.userAda, username: 'ada@example.com' }, serviceAccount: null }]),
    );
    expect((await gql(paginatedWorkspaces, { pageSize: 1, pageNumber: 1 }, adaToken())).json.data.paginatedWorkspaces.map((w: any) => w.id)).toEqual([
      ids.swWorkspaceB,
    ]);
    expect((await gql(getWorkspaces, null, graceToken())).json.data.workspaces.map((w: any) => w.id)).toEqual([ids.swWorkspaceB]);
  });

  it('gets a workspace, null for an unknown one, a permission error for a foreign one', async () => {
    expect((await gql(getWorkspace, { workspaceUuid: ids.swWorkspaceA }, adaToken())).json.data.workspace.label).toBe('Software Team A');
    expect((await gql(getWorkspace, { workspaceUuid: 'nope' }, adaToken())).json.data.workspace).toBeNull();
    expect((await gql(getWorkspace, { workspaceUuid: ids.swWorkspaceA }, graceToken())).json.errors[0].message).toBe(denied);
  });

  it('lists workspace deployments with deployInfo', async () => {
    const res = await gql(workspaceDeployments100, { workspaceId: ids.swWorkspaceA }, adaToken());
    const byRelease = Object.fromEntries(res.json.data.workspaceDeployments.map((d: any) => [d.releaseName, d]));
    expect(Object.keys(byRelease).sort()).toEqual(['galactic-dags-2222', 'galactic-gitsync-4444', 'galactic-image-1111', 'galactic-volume-3333']);
    expect(byRelease['galactic-image-1111']).toMatchObject({
      deployInfo: { current: 'deploy-2', nextCli: 'deploy-3' },
      workspace: { id: ids.swWorkspaceA },
      runtimeVersion: '3.1-8',
    });
    expect(byRelease['galactic-dags-2222'].deployInfo).toEqual({ current: '', nextCli: 'deploy-1' });
    const one = await gql(workspaceDeployments100, { workspaceId: ids.swWorkspaceA, releaseName: 'galactic-dags-2222' }, adaToken());
    expect(one.json.data.workspaceDeployments).toHaveLength(1);
  });

  it('describes each deployment with urls and its dagDeployment type', async () => {
    const types: Record<string, string> = {};
    for (const d of (await gql(workspaceDeployments100, { workspaceId: ids.swWorkspaceA }, adaToken())).json.data.workspaceDeployments) {
      const res = await gql(deployment100, { id: d.id }, adaToken());
      types[d.releaseName] = res.json.data.deployment.dagDeployment.type;
      const urls = Object.fromEntries(res.json.data.deployment.urls.map((u: any) => [u.type, u.url]));
      expect(urls.registry).toBe(t.stack.endpoints.registry.host);
      expect(urls.airflow).toContain(d.releaseName);
      if (types[d.releaseName] === 'dag_deploy') expect(urls.dagserver).toBe(`${t.stack.endpoints.houston.url}/${d.releaseName}/dags/upload`);
      else expect(urls.dagserver).toBeUndefined();
    }
    expect(Object.values(types).sort()).toEqual(['dag_deploy', 'git_sync', 'image', 'volume']);
    const old = await gql(deployment029, { id: ids.swImage }, adaToken());
    expect(old.json.data.deployment).toMatchObject({ desiredAirflowVersion: null, runtimeVersion: '3.1-8', runtimeAirflowVersion: '3.1.8' });
    expect((await gql(deployment100, { id: 'unknown' }, adaToken())).json.data.deployment).toBeNull();
    expect((await gql(deployment100, { id: ids.swImage }, graceToken())).json.errors[0].message).toBe(denied);
  });

  it('serves deploymentConfig in both shapes and runtime releases', async () => {
    expect((await gql(deploymentConfig025, null, adaToken())).json.data.deploymentConfig.defaultAirflowImageTag).toBe('2.10.5-onbuild');
    expect((await gql(deploymentConfig101, null, adaToken())).json.data.deploymentConfig).toEqual({ __typename: 'DeploymentConfig' });
    const releases = (await gql(runtimeReleases, { clusterId: 'ckclusterlocal00000000000' }, adaToken())).json.data.runtimeReleases;
    expect(releases).toEqual(expect.arrayContaining([{ version: '3.1-8', airflowVersion: '3.1.8', airflowDatabaseMigrations: false }]));
  });
});

describe('image updates', () => {
  it('records images from updateDeploymentImage (0.25 and 1.0.1 shapes) and upsertDeployment', async () => {
    const image = `${t.stack.endpoints.registry.host}/byo/airflow:galactic-volume-3333-deploy-1`;
    const r1 = await gql(updateImage025, { releaseName: 'galactic-volume-3333', image, runtimeVersion: '3.1-8' }, adaToken());
    expect(r1.json.data.updateDeploymentImage).toEqual({ releaseName: 'galactic-volume-3333', airflowVersion: '', runtimeVersion: '3.1-8' });
    const digest = `${t.stack.endpoints.registry.host}/byo/airflow@sha256:${'a'.repeat(64)}`;
    const r2 = await gql(updateImage101, { releaseName: 'galactic-gitsync-4444', image: digest, runtimeVersion: '3.1-9' }, adaToken());
    expect(r2.json.data.updateDeploymentImage).toEqual({ releaseName: 'galactic-gitsync-4444', runtimeVersion: '3.1-9' });
    const r3 = await gql(upsert210, { releaseName: 'galactic-image-1111', image: 'example/img:1', runtimeVersion: '3.1-8' }, adaToken());
    expect(r3.json.data.upsertDeployment).toEqual({ id: ids.swImage, releaseName: 'galactic-image-1111', runtimeVersion: '3.1-8' });

    const state = (await t.api('/_platform/state')).json.software.deployments;
    const recorded = Object.fromEntries(state.map((d: any) => [d.releaseName, d.deployed]));
    expect(recorded['galactic-volume-3333']).toMatchObject({ image, imageUpdatedBy: 'user:ada@example.com' });
    expect(recorded['galactic-gitsync-4444']).toMatchObject({ image: digest, runtimeVersion: '3.1-9' });
    expect(recorded['galactic-image-1111'].image).toBe('example/img:1');
  });

  it('refuses image updates without permission or for unknown releases', async () => {
    const none = await gql(updateImage101, { releaseName: 'galactic-image-1111', image: 'x:1', runtimeVersion: '3.1-8' });
    expect(none.json.errors[0].message).toBe(denied);
    const foreign = await gql(updateImage101, { releaseName: 'galactic-image-1111', image: 'x:1', runtimeVersion: '3.1-8' }, graceToken());
    expect(foreign.json.errors[0].message).toBe(denied);
    const unknown = await gql(updateImage101, { releaseName: 'no-such-release', image: 'x:1', runtimeVersion: '3.1-8' }, adaToken());
    expect(unknown.json.errors[0].message).toContain('not found');
  });
});

describe('GraphQL errors', () => {
  it('refuses anonymous and bad tokens with the permission message', async () => {
    expect((await gql(getWorkspaces)).json.errors[0].message).toBe(denied);
    expect((await gql(getWorkspaces, null, 'garbage')).json.errors[0].message).toBe(denied);
    // A service account key works as a Houston token, for its own workspace only.
    const sa = t.stack.tokens.houston.serviceAccounts[0]!;
    expect((await gql(getWorkspaces, null, sa.apiKey)).json.data.workspaces.map((w: any) => w.id)).toEqual([sa.workspaceId]);
  });

  it.each([
    { name: 'unknown field', body: JSON.stringify({ query: '{ appConfig { version noSuchField } }' }), contains: 'Cannot query field' },
    { name: 'syntax error', body: JSON.stringify({ query: '{ appConfig { version ' }), contains: 'Syntax Error' },
    { name: 'wrong variable type', body: JSON.stringify({ query: getWorkspace, variables: { workspaceUuid: 5 } }), contains: 'workspaceUuid' },
    { name: 'missing required variable', body: JSON.stringify({ query: deployment100, variables: {} }), contains: '$id' },
    { name: 'body is not JSON', body: '{query', contains: 'not valid JSON' },
    { name: 'no query', body: JSON.stringify({ variables: {} }), contains: 'query' },
    { name: 'variables not an object', body: JSON.stringify({ query: appConfig025, variables: [1] }), contains: 'query' },
  ])('$name → 400 with errors[]', async ({ body, contains }) => {
    const res = await readResponse(
      await fetch(t.stack.endpoints.houston.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
    );
    expect(res.status).toBe(400);
    expect(res.json.errors[0].message).toContain(contains);
  });

  it('answers other methods with 405 in the GraphQL error shape', async () => {
    const res = await readResponse(await fetch(t.stack.endpoints.houston.graphqlUrl));
    expect(res.status).toBe(405);
    expect(res.json.errors[0].message).toContain('not allowed');
  });
});

describe('DAG server', () => {
  const url = (release: string) => `${t.stack.endpoints.houston.url}/${release}/dags/upload`;
  async function upload(release: string, file: Buffer | undefined, token: string | undefined, description = 'Deployed via <astro deploy --dags>') {
    const form = new FormData();
    if (file) form.append('file', new Blob([file]), '/tmp/project/dags.tar.gz');
    form.append('description', description);
    return readResponse(await fetch(url(release), { method: 'POST', body: form, headers: token ? { authorization: token } : {} }));
  }

  it('accepts a valid bundle and records it', async () => {
    const res = await upload('galactic-dags-2222', await dagBundle({ 'dags/a.py': sampleDag, 'dags/sub/b.py': sampleDag }), adaToken());
    expect(res.status).toBe(200);
    const uploads = (await t.api('/_platform/state')).json.software.dagUploads;
    expect(uploads.at(-1)).toMatchObject({
      releaseName: 'galactic-dags-2222',
      description: 'Deployed via <astro deploy --dags>',
      files: ['dags/a.py', 'dags/sub/b.py'],
      uploadedBy: 'user:ada@example.com',
    });
  });

  it.each([
    { name: 'no token', release: 'galactic-dags-2222', token: 'none', status: 401 },
    { name: 'foreign workspace', release: 'galactic-dags-2222', token: 'grace', status: 403 },
    { name: 'unknown release', release: 'no-such-release', token: 'ada', status: 404 },
    { name: 'image deployment has no DAG server', release: 'galactic-image-1111', token: 'ada', status: 404 },
    { name: 'corrupt bundle', release: 'galactic-dags-2222', token: 'ada', status: 400, file: 'corrupt' },
    { name: 'bundle without dags/', release: 'galactic-dags-2222', token: 'ada', status: 400, file: 'nodags' },
    { name: 'missing file field', release: 'galactic-dags-2222', token: 'ada', status: 400, file: 'none' },
  ])('$name → $status', async (c) => {
    const file =
      c.file === 'corrupt'
        ? Buffer.from('garbage')
        : c.file === 'nodags'
          ? await dagBundle({ 'x.py': sampleDag })
          : c.file === 'none'
            ? undefined
            : await dagBundle({ 'dags/a.py': sampleDag });
    const token = c.token === 'ada' ? adaToken() : c.token === 'grace' ? graceToken() : undefined;
    const res = await upload(c.release, file, token);
    expect(res.status).toBe(c.status);
    expect(res.json.message).toEqual(expect.any(String));
  });

  it('refuses a body that is not multipart', async () => {
    const res = await readResponse(
      await fetch(url('galactic-dags-2222'), { method: 'POST', headers: { authorization: adaToken(), 'content-type': 'application/json' }, body: '{}' }),
    );
    expect(res.status).toBe(400);
  });

  it('fails the next uploads on demand with 5xx, then recovers', async () => {
    await t.api('/_platform/faults', { method: 'POST', body: { dagServer: { failNext: 2, status: 503 } } });
    const bundle = await dagBundle({ 'dags/a.py': sampleDag });
    expect((await upload('nebular-dags-5555', bundle, graceToken())).status).toBe(503);
    expect((await upload('nebular-dags-5555', bundle, graceToken())).status).toBe(503);
    expect((await upload('nebular-dags-5555', bundle, graceToken())).status).toBe(200);
  });
});

describe('registry with Houston credentials', () => {
  it('accepts user `user` + Houston token for the deployment repositories, and moves deployInfo on push', async () => {
    const host = t.stack.endpoints.registry.host;
    const ref = `${host}/galactic-image-1111/airflow:deploy-3`;
    await buildTinyImage(ref, { labels: { 'io.astronomer.docker.runtime.version': '3.1-8' } });
    images.push(ref);
    expect((await pushImage(ref, { username: 'user', password: adaToken(), serveraddress: host })).error).toBeUndefined();
    const info = await waitFor('deployInfo to follow the push', async () => {
      const d = (await gql(workspaceDeployments100, { workspaceId: ids.swWorkspaceA, releaseName: 'galactic-image-1111' }, adaToken())).json.data
        .workspaceDeployments[0];
      return d.deployInfo.current === 'deploy-3' ? d.deployInfo : undefined;
    });
    expect(info).toEqual({ current: 'deploy-3', nextCli: 'deploy-4' });

    // Grace is not in workspace A: the registry refuses her push there.
    const foreign = `${host}/galactic-image-1111/airflow:deploy-9`;
    await buildTinyImage(foreign);
    images.push(foreign);
    expect((await pushImage(foreign, { username: 'user', password: graceToken(), serveraddress: host })).error).toMatch(/denied/i);
  });

  it('lets Software users push to the custom (BYO) registry repository', async () => {
    const flags = await t.api('/_platform/houston/app-config', { method: 'PATCH', body: { featureFlags: { byoUpdateRegistryEnabled: true } } });
    expect(flags.json.featureFlags.byoUpdateRegistryEnabled).toBe(true);
    expect((await gql(appConfig100, {}, adaToken())).json.data.appConfig.featureFlags.byoUpdateRegistryEnabled).toBe(true);
    const byoHost = flags.json.byoUpdateRegistryHost as string;
    const ref = `${byoHost}:galactic-volume-3333-deploy-2026-01-01T00-00`;
    await buildTinyImage(ref);
    images.push(ref);
    expect((await pushImage(ref, { username: 'user', password: adaToken(), serveraddress: t.stack.endpoints.registry.host })).error).toBeUndefined();
  });
});
