import { describe, expect, it } from 'vitest';
import { createAstroClient } from '../../../src/platform/astro/client.js';
import { deploymentViewUrl, houstonUrl, legacySoftwareRegistry, platformOf, restBaseUrl } from '../../../src/platform/domain.js';

function recordingFetch(answer: unknown) {
  const calls: { url: string; method: string; body?: unknown }[] = [];
  const fetch = async (url: string, init: RequestInit) => {
    calls.push({ url, method: init.method ?? 'GET', body: init.body ? JSON.parse(String(init.body)) : undefined });
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { calls, fetch };
}

const deploy = { id: 'd1', imageRepository: 'r', imageTag: 't', status: 'INITIALIZED', type: 'IMAGE_AND_DAG' };

describe('createAstroClient createDeploy', () => {
  it('creates on v1, and on v1alpha1 (IMAGE / DAG types) when a named DAG bundle is asked for', async () => {
    const { calls, fetch } = recordingFetch(deploy);
    const client = createAstroClient({ baseUrl: 'http://api.test/v1', token: () => 'Bearer t', clientIdentifier: 'cli', clientVersion: '1', fetch });
    await client.createDeploy('o', 'dep', { type: 'IMAGE_AND_DAG', description: 'x' });
    await client.createDeploy('o', 'dep', { type: 'DAG_ONLY', description: 'x', dagBundleName: 'team-a' });
    await client.createDeploy('o', 'dep', { type: 'IMAGE_AND_DAG', description: 'x', dagBundleName: 'team-a' });
    expect(calls.map((c) => c.url)).toEqual([
      'http://api.test/v1/organizations/o/deployments/dep/deploys',
      'http://api.test/v1alpha1/organizations/o/deployments/dep/deploys',
      'http://api.test/v1alpha1/organizations/o/deployments/dep/deploys',
    ]);
    expect(calls[0]!.body).toEqual({ type: 'IMAGE_AND_DAG', description: 'x' });
    expect(calls[1]!.body).toEqual({ type: 'DAG', description: 'x', dagBundleName: 'team-a' });
    expect(calls[2]!.body).toEqual({ type: 'IMAGE', description: 'x', dagBundleName: 'team-a' });
  });
});

describe('domain rules', () => {
  it('decides Astro or Software once: API credentials and Astro domains are Astro, localhost follows local.platform', () => {
    expect(platformOf('astronomer.io')).toBe('astro');
    expect(platformOf('cloud.astronomer-dev.io')).toBe('astro');
    expect(platformOf('pr1234.astronomer-dev.io')).toBe('astro');
    expect(platformOf(undefined)).toBe('astro');
    expect(platformOf('software.example.com')).toBe('software');
    expect(platformOf('software.example.com', { apiToken: true })).toBe('astro');
    expect(platformOf('localhost')).toBe('astro');
    expect(platformOf('localhost', { localPlatform: 'software' })).toBe('software');
  });

  it('names every URL in one place', () => {
    const settings = { protocol: 'https', localCore: 'http://localhost:8888' };
    expect(restBaseUrl('astronomer.io', settings)).toBe('https://api.astronomer.io/v1');
    expect(restBaseUrl('localhost', settings)).toBe('http://localhost:8888/v1');
    expect(houstonUrl('software.example.com', { protocol: 'https', port: '443', localHouston: '' })).toBe('https://houston.software.example.com:443/v1');
    expect(legacySoftwareRegistry('software.example.com')).toBe('registry.software.example.com');
    expect(deploymentViewUrl('localhost', 'ws', 'dep')).toBe('http://localhost:5000/ws/deployments/dep');
    expect(deploymentViewUrl('astronomer.io', 'ws', 'dep')).toBe('https://cloud.astronomer.io/ws/deployments/dep');
  });
});
