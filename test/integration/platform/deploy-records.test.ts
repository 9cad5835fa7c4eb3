/**
 * Deploy records as Astro's v1 API returns them, through GET of the deploy, the deploy list and the Deployment:
 * type, description, git metadata, image tag, DAG bundle version, versions, creator and times. Astro's `Deploy` has no
 * image digest; a client reads it from the registry (manifest of `imageRepository:imageTag`), as this test does.
 */
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyImage, dagBundle, ids, pushImage, removeDir, removeImage, sampleDag, startTestStack, type TestStack } from './helpers.js';

let t: TestStack;
const images: string[] = [];
const orgToken = () => t.token('cltokorgstellar0000000000');
const deploymentPath = `/v1/organizations/${ids.orgStellar}/deployments/${ids.depDagOn}`;
const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

const githubGit = {
  provider: 'GITHUB',
  commitSha: '4f2c1e0b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b',
  branch: 'main',
  authorName: 'Ada Lovelace',
  account: 'stellar-labs',
  repo: 'pipelines',
  commitUrl: 'https://github.com/stellar-labs/pipelines/commit/4f2c1e0b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b',
  path: 'airflow',
};
const genericGit = {
  provider: 'GENERIC',
  commitSha: '9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b',
  branch: 'feature/x',
  authorName: 'Grace Hopper',
  remoteUrl: 'git@git.example.com:stellar/pipelines.git',
};

let imageDeploy: any;
let dagDeploy: any;
let dagVersion: string;

async function upload(url: string, files: Record<string, string>): Promise<string> {
  const result = await new BlockBlobClient(url).uploadData(await dagBundle(files));
  return result._response.headers.get('x-ms-version-id')!;
}

beforeAll(async () => {
  t = await startTestStack();
  // An IMAGE_AND_DAG deploy with GitHub metadata, then a DAG_ONLY deploy with generic git metadata.
  const created = (
    await t.api(`${deploymentPath}/deploys`, {
      method: 'POST',
      token: orgToken(),
      body: { type: 'IMAGE_AND_DAG', description: 'Add the hello DAG', git: githubGit },
    })
  ).json;
  const ref = `${created.imageRepository}:${created.imageTag}`;
  await buildTinyImage(ref, { labels: { 'io.astronomer.docker.runtime.version': '3.1-8', 'io.astronomer.docker.airflow.version': '3.1.8' } });
  images.push(ref);
  expect((await pushImage(ref, { username: 'cli', password: orgToken(), serveraddress: t.stack.endpoints.registry.host })).error).toBeUndefined();
  const imageVersion = await upload(created.dagsUploadUrl, { 'dags/hello.py': sampleDag });
  imageDeploy = (
    await t.api(`${deploymentPath}/deploys/${created.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: imageVersion } })
  ).json;
  expect(imageDeploy.status).toBe('DEPLOYED');

  const dagOnly = (
    await t.api(`${deploymentPath}/deploys`, { method: 'POST', token: orgToken(), body: { type: 'DAG_ONLY', description: 'Tweak hello', git: genericGit } })
  ).json;
  dagVersion = await upload(dagOnly.dagsUploadUrl, { 'dags/hello.py': `${sampleDag}# tweaked\n` });
  dagDeploy = (await t.api(`${deploymentPath}/deploys/${dagOnly.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: dagVersion } }))
    .json;
  expect(dagDeploy.status).toBe('DEPLOYED');
});

afterAll(async () => {
  await Promise.all(images.map(removeImage));
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('GET a deploy', () => {
  it('returns type, description, git metadata, image tag, bundle version, versions, creator and times', async () => {
    const res = await t.api(`${deploymentPath}/deploys/${imageDeploy.id}`, { token: orgToken() });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: imageDeploy.id,
      deploymentId: ids.depDagOn,
      type: 'IMAGE_AND_DAG',
      status: 'DEPLOYED',
      description: 'Add the hello DAG',
      git: githubGit,
      isDagDeployEnabled: true,
      imageRepository: `${t.stack.endpoints.registry.host}/stellar-orbit-1234/airflow`,
      imageTag: imageDeploy.imageTag,
      dagTarballVersion: imageDeploy.dagTarballVersion,
      astroRuntimeVersion: '3.1-8',
      airflowVersion: '3.1.8',
      createdAt: expect.stringMatching(rfc3339),
      updatedAt: expect.stringMatching(rfc3339),
      createdBySubject: { id: 'cltokorgstellar0000000000', subjectType: 'SERVICEKEY', apiTokenName: 'stellar-organization-token' },
      updatedBySubject: { id: 'cltokorgstellar0000000000', subjectType: 'SERVICEKEY', apiTokenName: 'stellar-organization-token' },
    });
    // The upload URL is handed out once, at create; reads never repeat it.
    expect(res.json.dagsUploadUrl).toBeUndefined();
  });

  it("keeps a DAG_ONLY deploy's generic git metadata and the Runtime the Deployment ran", async () => {
    const res = (await t.api(`${deploymentPath}/deploys/${dagDeploy.id}`, { token: orgToken() })).json;
    expect(res).toMatchObject({ type: 'DAG_ONLY', description: 'Tweak hello', git: genericGit, dagTarballVersion: dagVersion, astroRuntimeVersion: '3.1-8' });
  });

  it('shows a description update and who made it', async () => {
    const user = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userAda)!.token;
    const updated = await t.api(`${deploymentPath}/deploys/${dagDeploy.id}`, { method: 'POST', token: user, body: { description: 'Tweak hello (reviewed)' } });
    expect(updated.status).toBe(200);
    const res = (await t.api(`${deploymentPath}/deploys/${dagDeploy.id}`, { token: orgToken() })).json;
    expect(res.description).toBe('Tweak hello (reviewed)');
    expect(res.updatedBySubject).toEqual({ id: ids.userAda, subjectType: 'USER', username: 'ada@example.com', fullName: 'Ada Lovelace', avatarUrl: '' });
    expect(res.createdBySubject.subjectType).toBe('SERVICEKEY');
  });

  it('answers 404 for a deploy of another Deployment', async () => {
    const res = await t.api(`/v1/organizations/${ids.orgStellar}/deployments/${ids.depDagOff}/deploys/${imageDeploy.id}`, { token: orgToken() });
    expect(res.status).toBe(404);
  });
});

describe('the deploy list and the Deployment', () => {
  it('lists deploys newest first, each as GET returns it', async () => {
    const list = (await t.api(`${deploymentPath}/deploys`, { token: orgToken() })).json;
    expect(list).toMatchObject({ totalCount: 2, limit: 20, offset: 0 });
    expect(list.deploys.map((d: any) => d.id)).toEqual([dagDeploy.id, imageDeploy.id]);
    for (const d of list.deploys) expect(d).toEqual((await t.api(`${deploymentPath}/deploys/${d.id}`, { token: orgToken() })).json);
    const oldestFirst = (await t.api(`${deploymentPath}/deploys?sorts=createdAt:asc&limit=1`, { token: orgToken() })).json;
    expect(oldestFirst.deploys.map((d: any) => d.id)).toEqual([imageDeploy.id]);
  });

  it("has the Deployment report the image tag and bundle version it runs; the registry gives that image's digest", async () => {
    const d = (await t.api(deploymentPath, { token: orgToken() })).json;
    expect(d).toMatchObject({
      imageTag: imageDeploy.imageTag,
      imageVersion: imageDeploy.imageTag,
      dagTarballVersion: dagVersion,
      desiredDagTarballVersion: dagVersion,
    });
    expect(d.updatedBy).toMatchObject({ id: 'cltokorgstellar0000000000', subjectType: 'SERVICEKEY' });

    // The digest a client compares: the registry's manifest digest for imageRepository:imageTag, via the token endpoint.
    const tokenUrl = `http://127.0.0.1:${t.stack.endpoints.platform.port}/registry/token?service=astro-local-registry&scope=repository:stellar-orbit-1234/airflow:pull`;
    const auth = Buffer.from(`cli:${orgToken()}`).toString('base64');
    const { token } = (await (await fetch(tokenUrl, { headers: { authorization: `Basic ${auth}` } })).json()) as { token: string };
    const manifest = await fetch(`${t.stack.endpoints.registry.url}/v2/stellar-orbit-1234/airflow/manifests/${d.imageTag}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    expect(manifest.status).toBe(200);
    const recorded = (await t.api('/_platform/state')).json.deploys.find((x: any) => x.id === imageDeploy.id);
    expect(manifest.headers.get('docker-content-digest')).toBe(recorded.imageDigest);
    expect(recorded.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});
