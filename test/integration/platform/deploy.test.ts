/**
 * Deploys end to end against the local platform: real pushes through the Docker engine into the real registry
 * (token auth), real SAS uploads into Azurite through the version-issuing proxy, and finalize checking both.
 */
import { BlockBlobClient } from '@azure/storage-blob';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyImage, dagBundle, ids, pushImage, removeDir, removeImage, sampleDag, startTestStack, waitFor, type TestStack } from './helpers.js';

let t: TestStack;
const builtImages: string[] = [];
const orgToken = () => t.token('cltokorgstellar0000000000');
const deploysPath = (dep: string) => `/v1/organizations/${ids.orgStellar}/deployments/${dep}/deploys`;

async function createDeploy(dep: string, type: string, token = orgToken()) {
  const res = await t.api(deploysPath(dep), { method: 'POST', token, body: { type, description: `test ${type}` } });
  return res;
}

async function pushAs(imageRepository: string, imageTag: string, password: string, options: Parameters<typeof buildTinyImage>[1] = {}) {
  const ref = `${imageRepository}:${imageTag}`;
  await buildTinyImage(ref, { labels: { 'io.astronomer.docker.runtime.version': '3.1-8' }, ...options });
  builtImages.push(ref);
  return pushImage(ref, { username: 'cli', password, serveraddress: t.stack.endpoints.registry.host });
}

async function upload(url: string, data: Buffer, blockSize = 1024 * 1024) {
  const result = await new BlockBlobClient(url).uploadData(data, { blockSize, maxSingleShotSize: blockSize, concurrency: 1 });
  return result;
}

async function deploymentStatus(dep: string) {
  return (await t.api(`/v1/organizations/${ids.orgStellar}/deployments/${dep}`, { token: orgToken() })).json;
}

async function waitForStatus(dep: string, status: string) {
  return waitFor(`deployment ${dep} to become ${status}`, async () => {
    const d = await deploymentStatus(dep);
    return d.status === status ? d : undefined;
  });
}

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await Promise.all(builtImages.map(removeImage));
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('IMAGE_AND_DAG deploy', () => {
  it('accepts a pushed amd64 image and an uploaded bundle, then rolls out to HEALTHY', async () => {
    const created = await createDeploy(ids.depDagOn, 'IMAGE_AND_DAG');
    expect(created.status).toBe(200);
    expect(created.headers.get('content-type')).toContain('application/json');
    const deploy = created.json;
    expect(deploy).toMatchObject({ type: 'IMAGE_AND_DAG', status: 'INITIALIZED', deploymentId: ids.depDagOn });
    expect(deploy.imageRepository).toBe(`${t.stack.endpoints.registry.host}/stellar-orbit-1234/airflow`);
    expect(deploy.imageTag).toMatch(/^deploy-/);
    expect(deploy.dagsUploadUrl).toContain(`/devstoreaccount1/${ids.depDagOn}/dags.tar.gz?`);

    // Astronomer's CLI sends the context token verbatim, "Bearer " prefix included.
    const push = await pushAs(deploy.imageRepository, deploy.imageTag, `Bearer ${orgToken()}`);
    expect(push.error).toBeUndefined();

    const uploaded = await upload(deploy.dagsUploadUrl, await dagBundle({ 'dags/hello.py': sampleDag }));
    expect(uploaded._response.status).toBe(201);
    const versionId = uploaded._response.headers.get('x-ms-version-id');
    expect(versionId).toMatch(/^\d{4}-\d\d-\d\dT/);

    const finalized = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, {
      method: 'POST',
      token: orgToken(),
      body: { dagTarballVersion: versionId },
    });
    expect(finalized.status).toBe(200);
    expect(finalized.json).toMatchObject({ status: 'DEPLOYED', dagTarballVersion: versionId, imageTag: deploy.imageTag });

    expect((await deploymentStatus(ids.depDagOn)).status).toBe('DEPLOYING');
    const healthy = await waitForStatus(ids.depDagOn, 'HEALTHY');
    expect(healthy).toMatchObject({ imageTag: deploy.imageTag, dagTarballVersion: versionId, runtimeVersion: '3.1-8' });

    const state = (await t.api('/_platform/state')).json;
    const recorded = state.deploys.find((d: any) => d.id === deploy.id);
    expect(recorded.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(recorded.imagePlatform).toBe('linux/amd64');
    expect(recorded.dagBundleFiles).toEqual(['dags/hello.py']);
  });

  it('hands out a different image tag for every deploy', async () => {
    const a = (await createDeploy(ids.depDagOff, 'IMAGE_AND_DAG')).json;
    const b = (await createDeploy(ids.depDagOff, 'IMAGE_AND_DAG')).json;
    expect(a.imageTag).not.toBe(b.imageTag);
    // DAG deploys are off for this deployment: no upload URL, the DAGs travel in the image.
    expect(a.dagsUploadUrl).toBeUndefined();
  });

  it('finalizes an image deploy on a deployment without DAG deploys with an empty body', async () => {
    const deploy = (await createDeploy(ids.depDagOff, 'IMAGE_AND_DAG')).json;
    expect((await pushAs(deploy.imageRepository, deploy.imageTag, orgToken())).error).toBeUndefined();
    const res = await t.api(`${deploysPath(ids.depDagOff)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: {} });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('DEPLOYED');
    expect(res.json.dagTarballVersion).toBeUndefined();
  });
});

describe('DAG_ONLY deploy', () => {
  it('uploads a multi-block bundle, gets a version per commit, and deploys that version', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    expect(deploy.dagsUploadUrl).toBeTruthy();
    // > 1 MiB forces Put Block + Put Block List, like the CLI's uploader.
    const noise = await dagBundle({ 'dags/noise.py': '# a later upload\n' });
    const random = await dagBundle({ 'dags/hello.py': sampleDag, 'dags/random.txt': randomText(2_500_000) });
    expect(random.length).toBeGreaterThan(1024 * 1024);

    const first = await upload(deploy.dagsUploadUrl, random);
    const second = await upload(deploy.dagsUploadUrl, noise);
    const v1 = first._response.headers.get('x-ms-version-id')!;
    const v2 = second._response.headers.get('x-ms-version-id')!;
    expect(v1).toBeTruthy();
    expect(v2).toBeTruthy();
    expect(v1).not.toBe(v2);

    const res = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: v1 } });
    expect(res.status).toBe(200);
    const state = (await t.api('/_platform/state')).json;
    // The first version is what was deployed, even though a later upload overwrote the blob.
    expect(state.deploys.find((d: any) => d.id === deploy.id).dagBundleFiles).toEqual(['dags/hello.py', 'dags/random.txt']);
    const healthy = await waitForStatus(ids.depDagOn, 'HEALTHY');
    expect(healthy.dagTarballVersion).toBe(v1);
  });

  it('refuses DAG_ONLY on a deployment without DAG deploys', async () => {
    const res = await createDeploy(ids.depDagOff, 'DAG_ONLY');
    expect(res.status).toBe(400);
    expect(res.json.message).toContain('dag deploy is not enabled for deployment');
    expect(res.json).toMatchObject({ statusCode: 400, requestId: expect.any(String) });
  });

  it('refuses a finalize without the uploaded version, or with one that was never uploaded', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    const path = `${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`;
    const empty = await t.api(path, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '' } });
    expect(empty.status).toBe(400);
    expect(empty.json.message).toContain('needs the dagTarballVersion');
    const unknown = await t.api(path, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '2001-01-01T00:00:00.0000000Z' } });
    expect(unknown.status).toBe(400);
    expect(unknown.json.message).toContain('is not a version of deployment');
  });

  it('marks the deployment UNHEALTHY when the bundle is corrupt', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    const uploaded = await upload(deploy.dagsUploadUrl, Buffer.from('this is not a gzip file'));
    const version = uploaded._response.headers.get('x-ms-version-id')!;
    const res = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: version } });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('FAILED');
    const unhealthy = await waitForStatus(ids.depDagOn, 'UNHEALTHY');
    expect(unhealthy.statusReason).toContain('not valid gzip');
  });

  it('marks an Airflow 2 deployment UNHEALTHY when the bundle has no dags/ files', async () => {
    const deploy = (await createDeploy(ids.depAirflow2, 'DAG_ONLY')).json;
    const uploaded = await upload(deploy.dagsUploadUrl, await dagBundle({ 'README.md': 'no dags here' }));
    const version = uploaded._response.headers.get('x-ms-version-id')!;
    await t.api(`${deploysPath(ids.depAirflow2)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: version } });
    const unhealthy = await waitForStatus(ids.depAirflow2, 'UNHEALTHY');
    expect(unhealthy.statusReason).toContain('no entries under dags/');
  });
});

describe('IMAGE_ONLY deploy', () => {
  it('accepts a pushed image with an empty dagTarballVersion and no upload URL', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    expect(deploy.dagsUploadUrl).toBeUndefined();
    expect((await pushAs(deploy.imageRepository, deploy.imageTag, orgToken())).error).toBeUndefined();
    const res = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '' } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'DEPLOYED', imageTag: deploy.imageTag });
    const healthy = await waitForStatus(ids.depDagOn, 'HEALTHY');
    expect(healthy.imageTag).toBe(deploy.imageTag);
  });
});

describe('finalize checks the registry', () => {
  it('refuses a linux/arm64 image', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    expect((await pushAs(deploy.imageRepository, deploy.imageTag, orgToken(), { platform: 'linux/arm64' })).error).toBeUndefined();
    const res = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '' } });
    expect(res.status).toBe(400);
    expect(res.json.message).toContain('linux/arm64');
    expect(res.json.message).toContain('linux/amd64');
    const state = (await t.api('/_platform/state')).json;
    expect(state.deploys.find((d: any) => d.id === deploy.id)).toMatchObject({ status: 'INITIALIZED', lastFinalizeError: res.json.message });
  });

  it('reads manifest lists: refused without a linux/amd64 entry, accepted with one', async () => {
    // Two single-arch images in the deployment's repository, then indexes over them pushed straight to the registry.
    const amd = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    const arm = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    expect((await pushAs(amd.imageRepository, `${amd.imageTag}-amd64`, orgToken())).error).toBeUndefined();
    expect((await pushAs(arm.imageRepository, `${arm.imageTag}-arm64`, orgToken(), { platform: 'linux/arm64' })).error).toBeUndefined();
    const repo = 'stellar-orbit-1234/airflow';
    const push = await t.stack.platform.tokens.registryToken(
      'test',
      'astro-local-registry',
      [{ type: 'repository', name: repo, actions: ['push', 'pull'] }],
      60,
    );
    const registry = t.stack.endpoints.registry.url;
    const manifestOf = async (tag: string) => {
      const res = await fetch(`${registry}/v2/${repo}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${push}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      return { digest: res.headers.get('docker-content-digest')!, size: Number(res.headers.get('content-length')) };
    };
    const amdManifest = await manifestOf(`${amd.imageTag}-amd64`);
    const armManifest = await manifestOf(`${arm.imageTag}-arm64`);
    const putIndex = async (tag: string, entries: { digest: string; size: number; architecture: string }[]) => {
      const index = {
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: entries.map((e) => ({
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest: e.digest,
          size: e.size,
          platform: { os: 'linux', architecture: e.architecture },
        })),
      };
      const res = await fetch(`${registry}/v2/${repo}/manifests/${tag}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${push}`, 'content-type': index.mediaType },
        body: JSON.stringify(index),
      });
      expect(res.status).toBe(201);
    };
    await putIndex(arm.imageTag, [{ ...armManifest, architecture: 'arm64' }]);
    await putIndex(amd.imageTag, [
      { ...armManifest, architecture: 'arm64' },
      { ...amdManifest, architecture: 'amd64' },
    ]);

    const refused = await t.api(`${deploysPath(ids.depDagOn)}/${arm.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '' } });
    expect(refused.status).toBe(400);
    expect(refused.json.message).toContain('has no linux/amd64 variant (it has linux/arm64)');
    const accepted = await t.api(`${deploysPath(ids.depDagOn)}/${amd.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: '' } });
    expect(accepted.status).toBe(200);
    const recorded = (await t.api('/_platform/state')).json.deploys.find((d: any) => d.id === amd.id);
    expect(recorded.imagePlatform).toBe('linux/amd64');
    expect(recorded.imageDigest).not.toBe(amdManifest.digest); // the index's own digest
  });

  it('refuses a tag that was never pushed', async () => {
    const deploy = (await createDeploy(ids.depDagOff, 'IMAGE_AND_DAG')).json;
    const res = await t.api(`${deploysPath(ids.depDagOff)}/${deploy.id}/finalize`, { method: 'POST', token: orgToken(), body: {} });
    expect(res.status).toBe(400);
    expect(res.json.message).toContain('was not found in the registry');
  });
});

describe('credentials', () => {
  it('refuses a bad token at the API (401) and at the registry (push denied)', async () => {
    const api = await t.api(deploysPath(ids.depDagOn), { method: 'POST', token: 'not-a-jwt', body: { type: 'IMAGE_ONLY' } });
    expect(api.status).toBe(401);
    expect(api.json.message).toBeTruthy();

    const expired = t.token('cltokexpired0000000000000');
    const expiredApi = await t.api(deploysPath(ids.depDagOn), { method: 'POST', token: expired, body: { type: 'IMAGE_ONLY' } });
    expect(expiredApi.status).toBe(401);
    expect(expiredApi.json.message).toContain('expired');

    const deploy = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    const wrong = await pushAs(deploy.imageRepository, deploy.imageTag, 'Bearer not-a-valid-token');
    expect(wrong.error).toMatch(/unauthorized|denied|authentication required/i);
    const expiredPush = await pushAs(deploy.imageRepository, `${deploy.imageTag}-x`, expired);
    expect(expiredPush.error).toMatch(/unauthorized|denied|authentication required/i);
  });

  it('lets a token push only to deployments it may deploy to', async () => {
    // The nebula org token has no business with stellar deployments.
    const deploy = (await createDeploy(ids.depDagOn, 'IMAGE_ONLY')).json;
    const result = await pushAs(deploy.imageRepository, deploy.imageTag, t.token('cltokorgnebula00000000000'));
    expect(result.error).toMatch(/denied/i);
    // A deployment-scoped token may push to its own deployment...
    const own = await pushAs(deploy.imageRepository, `${deploy.imageTag}-own`, t.token('cltokdepdagon000000000000'));
    expect(own.error).toBeUndefined();
    // ...but not to a sibling in the same workspace.
    const sibling = (await createDeploy(ids.depDagOff, 'IMAGE_AND_DAG')).json;
    const other = await pushAs(sibling.imageRepository, sibling.imageTag, t.token('cltokdepdagon000000000000'));
    expect(other.error).toMatch(/denied/i);
  });

  it('refuses deploys by a user token on a CI/CD-enforced deployment, and accepts API tokens', async () => {
    const user = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userAda)!.token;
    const refused = await t.api(deploysPath(ids.depCicd), { method: 'POST', token: user, body: { type: 'DAG_ONLY' } });
    expect(refused.status).toBe(403);
    expect(refused.json.message).toContain('ci/cd enforcement is enabled for the deployment cicd-enforced');
    const accepted = await t.api(deploysPath(ids.depCicd), { method: 'POST', token: t.token('cltokwsanalytics000000000'), body: { type: 'DAG_ONLY' } });
    expect(accepted.status).toBe(200);
  });

  it('answers 403 for a workspace token on another workspace and 404 for unknown ids', async () => {
    const wsToken = t.token('cltokwsdataplatform000000');
    expect((await t.api(deploysPath(ids.depCicd), { method: 'POST', token: wsToken, body: { type: 'DAG_ONLY' } })).status).toBe(403);
    expect((await t.api(deploysPath('cldepnosuch00000000000000'), { method: 'POST', token: wsToken, body: { type: 'DAG_ONLY' } })).status).toBe(404);
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    expect((await t.api(`${deploysPath(ids.depDagOn)}/cldplnosuch/finalize`, { method: 'POST', token: wsToken, body: {} })).status).toBe(404);
    expect((await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}`, { token: wsToken })).json).toMatchObject({ id: deploy.id, status: 'INITIALIZED' });
  });
});

describe('SAS upload URLs', () => {
  it('refuses an expired SAS', async () => {
    const short = await startTestStack({ sasTtlSeconds: 1 });
    try {
      const res = await short.api(deploysPath(ids.depDagOn), { method: 'POST', token: short.token('cltokorgstellar0000000000'), body: { type: 'DAG_ONLY' } });
      await new Promise((r) => setTimeout(r, 2_100));
      await expect(upload(res.json.dagsUploadUrl, await dagBundle({ 'dags/a.py': sampleDag }))).rejects.toMatchObject({ statusCode: 403 });
    } finally {
      await short.stop();
      removeDir(short.stateDir);
    }
  });

  it('refuses a tampered SAS, reads, and other blobs', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    const url: string = deploy.dagsUploadUrl;
    const data = await dagBundle({ 'dags/a.py': sampleDag });
    const tamperedExpiry = url.replace(/se=[^&]+/, 'se=2099-01-01T00%3A00%3A00Z');
    await expect(upload(tamperedExpiry, data)).rejects.toMatchObject({ statusCode: 403 });
    const tamperedSig = url.replace(/sig=([^&])/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`);
    await expect(upload(tamperedSig, data)).rejects.toMatchObject({ statusCode: 403 });
    await expect(upload(url.replace('/dags.tar.gz?', '/other.tar.gz?'), data)).rejects.toMatchObject({ statusCode: 403 });
    await upload(url, data);
    await expect(new BlockBlobClient(url).downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });
  });

  it('passes injected faults to the client, then recovers', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    await t.api('/_platform/faults', { method: 'POST', body: { blob: { failNext: 1, status: 500 } } });
    const data = await dagBundle({ 'dags/a.py': sampleDag });
    // The SDK retries a 500 by itself, so the upload still succeeds, and the proxy saw the failed attempt.
    const since = (await t.api('/_platform/requests?listener=blob-proxy')).json.lastSeq;
    const result = await new BlockBlobClient(deploy.dagsUploadUrl).uploadData(data, { maxSingleShotSize: 4 * 1024 * 1024 });
    expect(result._response.status).toBe(201);
    const seen = (await t.api(`/_platform/requests?listener=blob-proxy&since=${since}`)).json.requests.map((r: any) => r.status);
    expect(seen).toEqual([500, 201]);
    expect(
      (await t.api('/_platform/requests?listener=blob-proxy')).json.requests.every((r: any) => r.query.sig === undefined || r.query.sig === '[redacted]'),
    ).toBe(true);
  });

  it('drops a Put Blob its client cut half-way, as Azure does: the next upload of that blob is not held up', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    const data = await dagBundle({ 'dags/cut.py': sampleDag });
    const since = (await t.api('/_platform/requests?listener=blob-proxy')).json.lastSeq;
    const blobRequests = async () => (await t.api(`/_platform/requests?listener=blob-proxy&since=${since}`)).json.requests as { error?: string }[];
    // Half the body, then the connection drops (a reset on the way): a commit, so it took the blob's lock.
    const cut = httpRequest(new URL(deploy.dagsUploadUrl), {
      method: 'PUT',
      agent: false,
      headers: { 'x-ms-version': '2023-11-03', 'x-ms-blob-type': 'BlockBlob', 'content-length': String(data.length) },
    });
    cut.on('error', () => undefined);
    cut.write(data.subarray(0, data.length >> 1));
    await waitFor('the cut Put Blob to reach the blob proxy', async () => (await blobRequests())[0]);
    cut.destroy();
    // Its request to Azurite goes with it (Azurite would wait minutes for the rest of the body), and the lock is free.
    const dropped = await waitFor('the blob proxy to drop the cut Put Blob', async () => (await blobRequests())[0]?.error);
    expect(dropped).toMatch(/closed the connection before its request was complete/);
    const result = await upload(deploy.dagsUploadUrl, data);
    expect(result._response.status).toBe(201);
  });
});

describe('restart', () => {
  it('keeps deploys, deployment state, blobs and tokens across a restart', async () => {
    const deploy = (await createDeploy(ids.depDagOn, 'DAG_ONLY')).json;
    const uploaded = await upload(deploy.dagsUploadUrl, await dagBundle({ 'dags/restart.py': sampleDag }));
    const version = uploaded._response.headers.get('x-ms-version-id')!;
    const before = (await t.api('/_platform/state')).json;
    const minted = (await t.api('/_platform/api-tokens', { method: 'POST', body: { organizationId: ids.orgStellar, expiresInSeconds: 600 } })).json.token;

    await t.stop();
    t = await startTestStack({}, t.stateDir);

    const after = (await t.api('/_platform/state')).json;
    expect(after.deploys.map((d: any) => d.id)).toEqual(before.deploys.map((d: any) => d.id));
    // A token minted before the restart still verifies: the signing key lives in the state dir.
    const finalized = await t.api(`${deploysPath(ids.depDagOn)}/${deploy.id}/finalize`, {
      method: 'POST',
      token: minted,
      body: { dagTarballVersion: version },
    });
    expect(finalized.status).toBe(200);
    const healthy = await waitForStatus(ids.depDagOn, 'HEALTHY');
    expect(healthy.dagTarballVersion).toBe(version);

    // Images pushed before the restart are still in the registry the restarted stack runs.
    const pushed = after.deploys.find((d: any) => d.imageDigest && d.type === 'IMAGE_AND_DAG');
    const pull = await t.stack.platform.tokens.registryToken(
      'test',
      'astro-local-registry',
      [{ type: 'repository', name: 'stellar-orbit-1234/airflow', actions: ['pull'] }],
      60,
    );
    const manifest = await fetch(`${t.stack.endpoints.registry.url}/v2/stellar-orbit-1234/airflow/manifests/${pushed.imageTag}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${pull}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(pushed.imageDigest);

    await t.stop();
    t = await startTestStack({}, t.stateDir);
    expect((await deploymentStatus(ids.depDagOn)).status).toBe('HEALTHY');
  });
});

function randomText(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}
