/**
 * DAG bundles Astronomer's CLI sends that Astro accepts: an empty bundle (`astro deploy --dags -f` with an empty
 * dags/, which removes every DAG) and a bundle without the `dags/` prefix (`--no-dags-base-dir`) on Airflow 3.
 * And what stays refused: root-level files on Airflow 2, links out of the bundle, data that is not a gzip tar.
 */
import { gzipSync } from 'node:zlib';
import { BlockBlobClient } from '@azure/storage-blob';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dagBundle, ids, removeDir, sampleDag, startTestStack, waitFor, type TestStack } from './helpers.js';

let t: TestStack;
const orgToken = () => t.token('cltokorgstellar0000000000');
const deploysPath = (dep: string) => `/v1/organizations/${ids.orgStellar}/deployments/${dep}/deploys`;

/** Create a DAG_ONLY deploy, upload `bundle`, finalize with its version; returns the finalize answer and the version. */
async function dagOnlyDeploy(dep: string, bundle: Buffer) {
  const created = await t.api(deploysPath(dep), { method: 'POST', token: orgToken(), body: { type: 'DAG_ONLY', description: 'bundle test' } });
  expect(created.status).toBe(200);
  const uploaded = await new BlockBlobClient(created.json.dagsUploadUrl).uploadData(bundle);
  const version = uploaded._response.headers.get('x-ms-version-id')!;
  const finalized = await t.api(`${deploysPath(dep)}/${created.json.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: version } });
  return { finalized, version, deployId: created.json.id as string };
}

async function settledDeployment(dep: string) {
  return waitFor(`deployment ${dep} to settle`, async () => {
    const d = (await t.api(`/v1/organizations/${ids.orgStellar}/deployments/${dep}`, { token: orgToken() })).json;
    return d.status === 'DEPLOYING' ? undefined : d;
  });
}

async function recordedDeploy(id: string) {
  return (await t.api('/_platform/state')).json.deploys.find((d: any) => d.id === id);
}

/** A gzip tar with a symlink entry, as Go's archive/tar writes one for a link in dags/. */
async function bundleWithLink(name: string, target: string): Promise<Buffer> {
  const tar = pack();
  tar.entry({ name: 'dags/hello.py' }, sampleDag);
  tar.entry({ name, type: 'symlink', linkname: target });
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  return gzipSync(Buffer.concat(chunks));
}

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('an empty DAG bundle', () => {
  it('is a successful deploy that leaves the Deployment HEALTHY with no DAGs', async () => {
    const first = await dagOnlyDeploy(ids.depDagOn, await dagBundle({ 'dags/hello.py': sampleDag }));
    expect(first.finalized.json.status).toBe('DEPLOYED');
    expect((await settledDeployment(ids.depDagOn)).status).toBe('HEALTHY');

    // What Go's archive/tar + gzip produce for an empty directory: a gzip of the two zero end-of-archive blocks.
    const empty = await dagBundle({});
    expect(empty.length).toBeGreaterThan(0);
    const { finalized, version, deployId } = await dagOnlyDeploy(ids.depDagOn, empty);
    expect(finalized.status).toBe(200);
    expect(finalized.json).toMatchObject({ status: 'DEPLOYED', dagTarballVersion: version });
    const deployment = await settledDeployment(ids.depDagOn);
    expect(deployment.status).toBe('HEALTHY');
    expect(deployment.statusReason).toBeUndefined();
    expect(deployment.dagTarballVersion).toBe(version);
    const recorded = await recordedDeploy(deployId);
    expect(recorded.dagBundleFiles).toEqual([]);
    expect(recorded.failureReason).toBeUndefined();
  });

  it('also holds for a bundle of directories only, and on an Airflow 2 Deployment', async () => {
    const { finalized } = await dagOnlyDeploy(ids.depAirflow2, await dagBundleOfDirs(['dags/', 'dags/sub/']));
    expect(finalized.json.status).toBe('DEPLOYED');
    expect((await settledDeployment(ids.depAirflow2)).status).toBe('HEALTHY');
  });

  it('is still refused when the upload is 0 bytes (not a gzip tar at all)', async () => {
    const { finalized } = await dagOnlyDeploy(ids.depDagOn, Buffer.alloc(0));
    expect(finalized.json.status).toBe('FAILED');
    const deployment = await settledDeployment(ids.depDagOn);
    expect(deployment.status).toBe('UNHEALTHY');
    expect(deployment.statusReason).toContain('0 bytes');
  });
});

describe('a bundle without the dags/ prefix (--no-dags-base-dir)', () => {
  it('is accepted on an Airflow 3 Deployment (Runtime 3.x)', async () => {
    const { finalized, deployId } = await dagOnlyDeploy(ids.depDagOn, await dagBundle({ 'hello.py': sampleDag, 'include/helpers.py': '# helper\n' }));
    expect(finalized.json.status).toBe('DEPLOYED');
    const deployment = await settledDeployment(ids.depDagOn);
    expect(deployment.status).toBe('HEALTHY');
    expect((await recordedDeploy(deployId)).dagBundleFiles).toEqual(['hello.py', 'include/helpers.py']);
  });

  it('is refused on an Airflow 2 Deployment, which reads DAGs from dags/ only', async () => {
    const { finalized } = await dagOnlyDeploy(ids.depAirflow2, await dagBundle({ 'hello.py': sampleDag }));
    expect(finalized.json.status).toBe('FAILED');
    const deployment = await settledDeployment(ids.depAirflow2);
    expect(deployment.status).toBe('UNHEALTHY');
    expect(deployment.statusReason).toContain('no entries under dags/');
    expect(deployment.statusReason).toContain('Airflow 2');
  });

  it('still refuses links out of the bundle and unsafe paths on Airflow 3', async () => {
    const outside = await dagOnlyDeploy(ids.depDagOn, await bundleWithLink('dags/secrets', '../../etc'));
    expect(outside.finalized.json.status).toBe('FAILED');
    expect((await settledDeployment(ids.depDagOn)).statusReason).toContain('points outside it: dags/secrets -> ../../etc');

    const inside = await dagOnlyDeploy(ids.depDagOn, await bundleWithLink('dags/alias.py', 'hello.py'));
    expect(inside.finalized.json.status).toBe('DEPLOYED');
    expect((await settledDeployment(ids.depDagOn)).status).toBe('HEALTHY');

    const unsafe = await dagOnlyDeploy(ids.depDagOn, await dagBundle({ '../escape.py': sampleDag }));
    expect(unsafe.finalized.json.status).toBe('FAILED');
    expect((await settledDeployment(ids.depDagOn)).statusReason).toContain('unsafe path');
  });
});

async function dagBundleOfDirs(dirs: string[]): Promise<Buffer> {
  const tar = pack();
  for (const name of dirs) tar.entry({ name, type: 'directory' });
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  return gzipSync(Buffer.concat(chunks));
}

describe('an injected rollout failure', () => {
  it('leaves the deploy DEPLOYED and the Deployment UNHEALTHY with the reason, once', async () => {
    const set = await t.api('/_platform/faults', { method: 'POST', body: { rollout: { failNext: 1, reason: 'scheduler CrashLoopBackOff' } } });
    expect(set.json.rollout).toEqual({ remaining: 1, reason: 'scheduler CrashLoopBackOff' });
    const failed = await dagOnlyDeploy(ids.depDagOn, await dagBundle({ 'dags/hello.py': sampleDag }));
    expect(failed.finalized.json.status).toBe('DEPLOYED');
    const unhealthy = await settledDeployment(ids.depDagOn);
    expect(unhealthy).toMatchObject({ status: 'UNHEALTHY', statusReason: 'scheduler CrashLoopBackOff' });
    const next = await dagOnlyDeploy(ids.depDagOn, await dagBundle({ 'dags/hello.py': sampleDag }));
    expect(next.finalized.json.status).toBe('DEPLOYED');
    expect((await settledDeployment(ids.depDagOn)).status).toBe('HEALTHY');
  });

  it('refuses a malformed knob', async () => {
    const res = await t.api('/_platform/faults', { method: 'POST', body: { rollout: { failNext: -1 } } });
    expect(res.status).toBe(400);
  });
});
