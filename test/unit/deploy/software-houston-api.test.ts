// Houston documents and their selection by platform version (src/platform/software/{versions,documents,deploy-api}.ts).
import { readFileSync } from 'node:fs';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createSoftwareDeployApi } from '../../../src/platform/software/deploy-api.js';
import * as documents from '../../../src/platform/software/documents.js';
import type { HoustonClient } from '../../../src/platform/software/houston.js';
import { gateVersion, parsePlatformVersion, pickForVersion, requirePlatformVersion, versionAtLeast } from '../../../src/platform/software/versions.js';

describe('platform versions', () => {
  it('parses Houston versions with a v prefix, missing parts and pre-release suffixes', () => {
    expect(parsePlatformVersion('v0.29.2')).toEqual([0, 29, 2]);
    expect(parsePlatformVersion('1.0')).toEqual([1, 0, 0]);
    expect(parsePlatformVersion('0.34.1-rc.2')).toEqual([0, 34, 1]);
    expect(parsePlatformVersion('')).toBeUndefined();
    expect(parsePlatformVersion('latest')).toBeUndefined();
  });

  it('picks the newest entry not above the platform version, else the newest of all', () => {
    const list = { '0.25.0': 'a', '1.0.1': 'c', '0.29.0': 'b' };
    expect(pickForVersion(list, '0.25.0')).toBe('a');
    expect(pickForVersion(list, '0.28.9')).toBe('a');
    expect(pickForVersion(list, '0.29.0-alpha')).toBe('b');
    expect(pickForVersion(list, '1.0.0')).toBe('b');
    expect(pickForVersion(list, '1.0.1')).toBe('c');
    expect(pickForVersion(list, '2.3.0')).toBe('c');
    expect(pickForVersion(list, '0.10.0')).toBe('c');
    expect(pickForVersion(list, '')).toBe('c');
  });

  it('gates operations, treating an unknown version as 1.0.0', () => {
    expect(versionAtLeast('0.29.2', '0.29.2')).toBe(true);
    expect(versionAtLeast('0.29.1', '0.29.2')).toBe(false);
    expect(gateVersion('')).toBe('1.0.0');
    expect(gateVersion('nonsense')).toBe('1.0.0');
    expect(() => requirePlatformVersion('0.28.0', '0.29.2', 'UpdateDeploymentImage')).toThrow(
      'UpdateDeploymentImage GraphQL API not implemented for the given Houston version',
    );
    expect(() => requirePlatformVersion('', '0.29.2', 'UpdateDeploymentImage')).not.toThrow();
  });
});

describe('documents', () => {
  // The local platform's schema is the union of what every Houston version serves: each document must validate.
  const schema = buildSchema(readFileSync('test/platform/server/houston.graphql', 'utf8'));
  const all: [string, string][] = [
    ['platform version', documents.PLATFORM_VERSION_QUERY],
    ['workspace', documents.GET_WORKSPACE_QUERY],
    ['runtimeReleases', documents.RUNTIME_RELEASES_QUERY],
    ...Object.entries(documents.WORKSPACE_DEPLOYMENTS_QUERIES).map(([v, q]) => [`workspaceDeployments ${v}`, q] as [string, string]),
    ...Object.entries(documents.DEPLOYMENT_QUERIES).map(([v, q]) => [`deployment ${v}`, q] as [string, string]),
    ...Object.entries(documents.APP_CONFIG_QUERIES).map(([v, q]) => [`appConfig ${v}`, q] as [string, string]),
    ...Object.entries(documents.DEPLOYMENT_CONFIG_QUERIES).map(([v, q]) => [`deploymentConfig ${v}`, q] as [string, string]),
    ...Object.entries(documents.IMAGE_UPDATE_MUTATIONS).map(([v, d]) => [`image update ${v}`, d.query] as [string, string]),
  ];
  it.each(all)('%s is valid against the Houston schema', (_name, query) => {
    expect(validate(schema, parse(query)).map((e) => e.message)).toEqual([]);
  });

  it('declares exactly the appConfig variables it may be sent', () => {
    for (const [version, query] of Object.entries(documents.APP_CONFIG_QUERIES)) {
      const declared = [...query.matchAll(/\$(\w+):/g)].map((m) => m[1]);
      expect(declared, version).toEqual(documents.APP_CONFIG_VARIABLES[version]);
    }
  });
});

/** A Houston client that records what it was asked and answers from a script. */
function fakeClient(answer: (query: string, variables: Record<string, unknown> | undefined) => unknown) {
  const calls: { query: string; variables: Record<string, unknown> | undefined }[] = [];
  const client: HoustonClient = {
    async request<T>(query: string, variables: Record<string, unknown> | undefined, schema: z.ZodType<T>) {
      calls.push({ query, variables });
      return schema.parse(answer(query, variables));
    },
  };
  return { client, calls };
}

describe('createSoftwareDeployApi', () => {
  it('sends appConfig variables only when the shape declares them and they are set', async () => {
    const { client, calls } = fakeClient(() => ({ appConfig: { version: '2.0.0', featureFlags: { dagOnlyDeployment: true } } }));
    const api = createSoftwareDeployApi(client);
    await api.appConfig({ clusterId: 'c1', workspaceId: 'w1', deploymentId: 'd1' }, '0.29.2');
    await api.appConfig({ clusterId: 'c1', workspaceId: 'w1', deploymentId: 'd1' }, '1.0.0');
    await api.appConfig({ clusterId: 'c1', workspaceId: '', deploymentId: 'd1' }, '2.0.0');
    expect(calls.map((c) => c.variables)).toEqual([undefined, { clusterId: 'c1' }, { clusterId: 'c1', deploymentUuid: 'd1' }]);
    expect(calls[0]!.query).toContain('byoUpdateRegistryHost');
    expect(calls[0]!.query).not.toContain('$clusterId');
  });

  it('reads feature flags, and takes the top-level booleans of platforms without them', async () => {
    const modern = createSoftwareDeployApi(
      fakeClient(() => ({ appConfig: { featureFlags: { byoUpdateRegistryEnabled: true, dagOnlyDeployment: 'yes' } } })).client,
    );
    expect((await modern.appConfig({}, '1.0.0')).flags).toMatchObject({ byoUpdateRegistryEnabled: true, dagOnlyDeployment: false });
    const old = createSoftwareDeployApi(
      fakeClient(() => ({ appConfig: { version: '0.25.3', nfsMountDagDeployment: true, hardDeleteDeployment: true } })).client,
    );
    expect((await old.appConfig({}, '0.25.3')).flags).toMatchObject({ nfsMountDagDeployment: true, hardDeleteDeployment: true, dagOnlyDeployment: false });
  });

  it('sends the image update in the shape of the platform version, and refuses platforms older than 0.29.2', async () => {
    const { client, calls } = fakeClient((query) => {
      const field = query.includes('upsertDeployment(') ? 'upsertDeployment' : 'updateDeploymentImage';
      return { [field]: { releaseName: 'r1', runtimeVersion: '3.1-8' } };
    });
    const api = createSoftwareDeployApi(client);
    const update = { releaseName: 'r1', image: 'host/repo:tag', runtimeVersion: '3.1-8', airflowVersion: '3.1.8' };
    expect(await api.updateDeploymentImage(update, '0.30.0')).toEqual({ releaseName: 'r1', runtimeVersion: '3.1-8', airflowVersion: undefined });
    await api.updateDeploymentImage(update, '1.0.1');
    await api.updateDeploymentImage(update, '2.1.0');
    expect(calls[0]!.variables).toEqual({ releaseName: 'r1', image: 'host/repo:tag', runtimeVersion: '3.1-8', airflowVersion: '3.1.8' });
    expect(calls[1]!.variables).toEqual({ releaseName: 'r1', image: 'host/repo:tag', runtimeVersion: '3.1-8' });
    expect(calls[2]!.query).toContain('upsertDeployment(');
    await expect(api.updateDeploymentImage(update, '0.29.1')).rejects.toThrow('UpdateDeploymentImage GraphQL API not implemented');
    expect(calls).toHaveLength(3);
  });

  it('selects deployment fields by version and maps a missing deployment to undefined', async () => {
    const { client, calls } = fakeClient((query) => (query.includes('deployment(where') ? { deployment: null } : { workspaceDeployments: [] }));
    const api = createSoftwareDeployApi(client);
    expect(await api.getDeployment('d1', '0.25.0')).toBeUndefined();
    await api.getDeployment('d1', '1.0.0');
    await api.listDeployments('w1', '0.29.0');
    expect(calls[0]!.query).toContain('desiredAirflowVersion');
    expect(calls[0]!.query).not.toContain('dagDeployment');
    expect(calls[1]!.query).toContain('dagDeployment { type }');
    expect(calls[1]!.query).not.toContain('desiredRuntimeVersion');
    expect(calls[2]!.query).toContain('airflowVersion runtimeVersion');
    expect(calls[2]!.variables).toEqual({ workspaceId: 'w1' });
  });
});
