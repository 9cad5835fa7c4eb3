/**
 * Deployment, Organization and Cluster answers carry every field of Astro's v1 schema that a typed client decodes
 * as required, plus the optional ones Astronomer's CLI dereferences (`deployment inspect` panics on a missing one).
 * Field lists follow the v1 API models (Deployment, Organization, BasicSubjectProfile, WorkerQueue, Cluster, NodePool).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ids, removeDir, startTestStack, type TestStack } from './helpers.js';

let t: TestStack;
const orgToken = () => t.token('cltokorgstellar0000000000');
const nebulaToken = () => t.token('cltokorgnebula00000000000');

const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** Non-pointer fields of v1 `Deployment`, with the JSON type each must have. */
const deploymentRequired: Record<string, 'string' | 'number' | 'boolean' | 'object' | 'time'> = {
  airflowVersion: 'string',
  apiUrl: 'string',
  astroRuntimeVersion: 'string',
  createdAt: 'time',
  createdBy: 'object',
  id: 'string',
  imageRepository: 'string',
  imageTag: 'string',
  isCicdEnforced: 'boolean',
  isDagDeployEnabled: 'boolean',
  name: 'string',
  namespace: 'string',
  organizationId: 'string',
  runtimeVersion: 'string',
  schedulerCpu: 'string',
  schedulerMemory: 'string',
  schedulerReplicas: 'number',
  status: 'string',
  uiUrl: 'string',
  updatedAt: 'time',
  updatedBy: 'object',
  webServerAirflowApiUrl: 'string',
  webServerCpu: 'string',
  webServerIngressHostname: 'string',
  webServerMemory: 'string',
  webServerUrl: 'string',
  workspaceId: 'string',
};

/** Optional in the schema, dereferenced by `deployment inspect` for every Deployment type. */
const inspectAlways = [
  'type',
  'executor',
  'workspaceName',
  'description',
  'isHighAvailability',
  'isDevelopmentMode',
  'region',
  'workerQueues',
  'environmentVariables',
];
/** Dereferenced for Standard and Dedicated Deployments. */
const inspectHosted = ['schedulerSize', 'defaultTaskPodCpu', 'defaultTaskPodMemory', 'resourceQuotaCpu', 'resourceQuotaMemory'];
/** Dereferenced for Dedicated and Hybrid Deployments. */
const inspectOnCluster = ['clusterId', 'clusterName'];

const organizationRequired: Record<string, 'string' | 'boolean' | 'object' | 'time' | 'array'> = {
  allowEnhancedSupportAccess: 'boolean',
  createdAt: 'time',
  createdBy: 'object',
  hasAllowedIpAddressRanges: 'boolean',
  id: 'string',
  isBlockedEnableAiFeatures: 'boolean',
  isScimEnabled: 'boolean',
  name: 'string',
  productPlans: 'array',
  shouldEnforceDedicatedClusters: 'boolean',
  updatedAt: 'time',
  updatedBy: 'object',
};

function expectTyped(object: Record<string, unknown>, fields: Record<string, string>, what: string): void {
  for (const [field, type] of Object.entries(fields)) {
    const value = object[field];
    expect(value, `${what}.${field}`).not.toBeUndefined();
    expect(value, `${what}.${field}`).not.toBeNull();
    if (type === 'time') expect(value, `${what}.${field}`).toMatch(rfc3339);
    else if (type === 'array') expect(Array.isArray(value), `${what}.${field} is an array`).toBe(true);
    else expect(typeof value, `${what}.${field}`).toBe(type);
  }
}

function expectSubject(value: any, what: string): void {
  expect(typeof value?.id, `${what}.id`).toBe('string');
  expect(value.id.length, `${what}.id`).toBeGreaterThan(0);
  expect(['USER', 'SERVICEKEY'], `${what}.subjectType`).toContain(value.subjectType);
  if (value.subjectType === 'USER') expect(value, what).toMatchObject({ username: expect.any(String), fullName: expect.any(String) });
  else expect(value.apiTokenName, `${what}.apiTokenName`).toEqual(expect.any(String));
}

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('Deployment objects', () => {
  it('carry every required field and what inspect dereferences, for each Deployment type', async () => {
    const all = [
      ...(await t.api(`/v1/organizations/${ids.orgStellar}/deployments?limit=1000`, { token: orgToken() })).json.deployments,
      ...(await t.api(`/v1/organizations/${ids.orgNebula}/deployments?limit=1000`, { token: nebulaToken() })).json.deployments,
    ];
    expect(new Set(all.map((d: any) => d.type))).toEqual(new Set(['STANDARD', 'DEDICATED', 'HYBRID']));
    for (const d of all) {
      const what = `deployment ${d.name} (${d.type})`;
      expectTyped(d, deploymentRequired, what);
      for (const field of inspectAlways) expect(d[field], `${what}.${field}`).toBeDefined();
      if (d.type !== 'HYBRID') for (const field of inspectHosted) expect(d[field], `${what}.${field}`).toEqual(expect.any(String));
      if (d.type !== 'STANDARD') for (const field of inspectOnCluster) expect(d[field], `${what}.${field}`).toEqual(expect.any(String));
      if (d.type === 'HYBRID') expect(d.schedulerAu, `${what}.schedulerAu`).toEqual(expect.any(Number));
      expectSubject(d.createdBy, `${what}.createdBy`);
      expectSubject(d.updatedBy, `${what}.updatedBy`);
      expect(d.workerQueues.length, `${what} has its default worker queue`).toBeGreaterThan(0);
      for (const q of d.workerQueues) {
        expect(q, `${what} queue`).toMatchObject({
          id: expect.any(String),
          name: expect.any(String),
          isDefault: expect.any(Boolean),
          maxWorkerCount: expect.any(Number),
          minWorkerCount: expect.any(Number),
          workerConcurrency: expect.any(Number),
          podCpu: expect.any(String),
          podMemory: expect.any(String),
        });
        // Hosted queues name an Astro machine; Hybrid ones a node pool of their cluster.
        if (d.type === 'HYBRID') expect(q.nodePoolId, `${what} queue nodePoolId`).toEqual(expect.any(String));
        else expect(q.astroMachine, `${what} queue astroMachine`).toEqual(expect.any(String));
      }
    }
  });

  it('say how the Airflow UI is really served: webServerUrl and uiUrl are http URLs that answer', async () => {
    const d = (await t.api(`/v1/organizations/${ids.orgStellar}/deployments/${ids.depDagOn}`, { token: orgToken() })).json;
    expect(d.webServerUrl).toBe(`http://localhost:${t.stack.endpoints.platform.port}/airflow/stellar-orbit-1234`);
    expect(d.uiUrl).toBe(d.webServerUrl);
    expect(d.apiUrl).toBe(`${d.webServerUrl}/api/v2`);
    expect(d.webServerIngressHostname).toBe('localhost');
    const page = await fetch(d.webServerUrl.replace('localhost', '127.0.0.1'));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('dag-deploy-on');
  });

  it('name a cluster that GET /clusters/{id} answers with its node pools, the one Hybrid queues use', async () => {
    const hybrid = (await t.api(`/v1/organizations/${ids.orgNebula}/deployments/${ids.depHybrid}`, { token: nebulaToken() })).json;
    const cluster = await t.api(`/v1/organizations/${ids.orgNebula}/clusters/${hybrid.clusterId}`, { token: nebulaToken() });
    expect(cluster.status).toBe(200);
    expect(cluster.json).toMatchObject({ id: hybrid.clusterId, name: hybrid.clusterName, type: 'HYBRID', organizationId: ids.orgNebula, status: 'CREATED' });
    expect(cluster.json.nodePools.map((p: any) => p.id)).toContain(hybrid.workerQueues[0].nodePoolId);
    expect(cluster.json.nodePools.map((p: any) => p.id)).toContain(hybrid.taskPodNodePoolId);
    // Another organization's cluster is not found there; an unknown id neither.
    expect((await t.api(`/v1/organizations/${ids.orgStellar}/clusters/${hybrid.clusterId}`, { token: orgToken() })).status).toBe(404);
    expect((await t.api(`/v1/organizations/${ids.orgStellar}/clusters/clclusternosuch000000000`, { token: orgToken() })).status).toBe(404);
    expect((await t.api(`/v1/organizations/${ids.orgNebula}/clusters/${hybrid.clusterId}`, { token: orgToken() })).status).toBe(403);
  });
});

describe('Organization objects', () => {
  it('carry every required field, createdBy and productPlans included, in the list and by id', async () => {
    const user = t.stack.tokens.userAccessTokens.find((u) => u.userId === ids.userAda)!.token;
    const list = (await t.api('/v1/organizations', { token: user })).json.organizations;
    expect(list.length).toBe(2);
    for (const org of list) {
      expectTyped(org, organizationRequired, `organization ${org.name}`);
      expectSubject(org.createdBy, `organization ${org.name}.createdBy`);
      expect(org.productPlans).toEqual([
        { astronomerProduct: 'ASTRO', organizationId: org.id, productPlanId: expect.any(String), productPlanName: expect.any(String) },
      ]);
      const byId = (await t.api(`/v1/organizations/${org.id}`, { token: user })).json;
      expect(byId).toEqual(org);
    }
  });
});
