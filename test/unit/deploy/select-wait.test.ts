import { describe, expect, it } from 'vitest';
import { NeedsInputError } from '../../../src/errors.js';
import { chooseDeployment, type SelectionInput } from '../../../src/deploy/astro/select.js';
import { parseDuration, pollUntilHealthy } from '../../../src/deploy/astro/wait.js';
import { ApiError } from '../../../src/platform/http.js';
import type { AstroControlPlane } from '../../../src/platform/astro/client.js';
import type { Deployment } from '../../../src/platform/astro/schemas.js';

const dep = (id: string, name: string, extra: Partial<Deployment> = {}) =>
  ({
    id,
    name,
    namespace: `ns-${id}`,
    organizationId: 'o',
    workspaceId: 'ws-1',
    status: 'HEALTHY',
    isDagDeployEnabled: true,
    createdAt: `2026-01-0${id.at(-1)}T00:00:00Z`,
    ...extra,
  }) as Deployment;

function plane(list: Deployment[]): AstroControlPlane {
  return {
    listDeployments: async () => list,
    getDeployment: async (_o: string, id: string) => {
      const found = list.find((d) => d.id === id);
      if (!found) throw Object.assign(new Error('not found'), { status: 404 });
      return found;
    },
  } as unknown as AstroControlPlane;
}

const input: SelectionInput = { organizationId: 'o', workspaceId: 'ws-1', prompt: false, autoSelect: false };
const noTty = async (): Promise<Deployment> => {
  throw new NeedsInputError('no terminal', ['<deployment-id>', '--deployment-name']);
};

describe('chooseDeployment', () => {
  const list = [dep('d2', 'staging'), dep('d1', 'prod'), dep('d3', 'prod')];

  it('uses the id, and says so when a name was given too', async () => {
    const notices: string[] = [];
    const chosen = await chooseDeployment(
      { ...input, deploymentId: 'd2', deploymentName: 'prod' },
      { controlPlane: plane(list), choose: noTty, notice: (m) => notices.push(m) },
    );
    expect(chosen.id).toBe('d2');
    expect(notices[0]).toMatch(/The Deployment ID d2 will be used/);
  });

  it('finds by name, warns on duplicates, refuses unknown names', async () => {
    const notices: string[] = [];
    expect(
      (await chooseDeployment({ ...input, deploymentName: 'prod' }, { controlPlane: plane(list), choose: noTty, notice: (m) => notices.push(m) })).id,
    ).toBe('d1');
    expect(notices).toContain('More than one Deployment with the name prod was found');
    await expect(chooseDeployment({ ...input, deploymentName: 'nope' }, { controlPlane: plane(list), choose: noTty, notice: () => {} })).rejects.toThrow(
      /No Deployment with the name nope was found/,
    );
  });

  it('uses the saved id unless --prompt', async () => {
    expect((await chooseDeployment({ ...input, savedDeploymentId: 'd3' }, { controlPlane: plane(list), choose: noTty, notice: () => {} })).id).toBe('d3');
    await expect(
      chooseDeployment({ ...input, savedDeploymentId: 'd3', prompt: true }, { controlPlane: plane(list), choose: noTty, notice: () => {} }),
    ).rejects.toBeInstanceOf(NeedsInputError);
  });

  it('takes the only Deployment for API tokens, and asks (or needs flags) otherwise', async () => {
    const one = [dep('d1', 'prod')];
    expect((await chooseDeployment({ ...input, autoSelect: true }, { controlPlane: plane(one), choose: noTty, notice: () => {} })).id).toBe('d1');
    const error = await chooseDeployment(input, { controlPlane: plane(one), choose: noTty, notice: () => {} }).catch((e: unknown) => e);
    expect((error as NeedsInputError).missing).toEqual(['<deployment-id>', '--deployment-name']);
    const offered: string[] = [];
    await chooseDeployment(input, {
      controlPlane: plane(list),
      choose: async (_t, c) => {
        offered.push(...c.map((x) => x.value.id));
        return c[0]!.value;
      },
      notice: () => {},
    });
    expect(offered).toEqual(['d1', 'd2', 'd3']);
  });

  it('refuses a Deployment outside --workspace-id, and an unknown id', async () => {
    await expect(
      chooseDeployment({ ...input, deploymentId: 'd1', workspaceFlag: 'ws-9' }, { controlPlane: plane(list), choose: noTty, notice: () => {} }),
    ).rejects.toThrow(/Invalid workspace id ws-9/);
    await expect(chooseDeployment({ ...input, deploymentId: 'zz' }, { controlPlane: plane(list), choose: noTty, notice: () => {} })).rejects.toThrow(
      /Deployment zz was not found/,
    );
  });
});

describe('pollUntilHealthy', () => {
  const seq = (statuses: Partial<Deployment>[]) => {
    let i = 0;
    return async () => dep('d1', 'prod', statuses[Math.min(i++, statuses.length - 1)]);
  };

  it('waits through DEPLOYING and a stale HEALTHY until the deployed tag is live', async () => {
    const outcome = await pollUntilHealthy(
      seq([
        { status: 'HEALTHY', imageTag: 'old' },
        { status: 'DEPLOYING', imageTag: 'new' },
        { status: 'HEALTHY', imageTag: 'new' },
      ]),
      {
        timeoutMs: 10_000,
        intervalMs: 1,
        expect: { imageTag: 'new' },
      },
    );
    expect(outcome.status).toBe('HEALTHY');
  });

  it('fails on UNHEALTHY with the reason', async () => {
    await expect(
      pollUntilHealthy(seq([{ status: 'UNHEALTHY', statusReason: 'bundle is not a tar.gz' }]), { timeoutMs: 1000, intervalMs: 1, expect: {} }),
    ).rejects.toThrow(/UNHEALTHY after the deploy: bundle is not a tar.gz/);
  });

  it('says at once that another deploy replaced this one, instead of waiting out --wait-time', async () => {
    let calls = 0;
    const get = async () => (calls++, dep('d1', 'prod', { status: 'HEALTHY', imageTag: 'theirs', dagTarballVersion: 'v-theirs' }));
    const error = await pollUntilHealthy(get, {
      timeoutMs: 300_000,
      intervalMs: 1,
      expect: { imageTag: 'ours', dagTarballVersion: 'v-ours' },
      previous: { imageTag: 'before', dagTarballVersion: 'v-before' },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('Deployment prod now runs another deploy (image tag theirs): this deploy was replaced before it became healthy.');
    expect(calls).toBe(1);
  });

  it('keeps polling through an API that does not answer, within --wait-time', async () => {
    let calls = 0;
    const statuses: string[] = [];
    const get = async () => {
      calls++;
      if (calls <= 3) throw new ApiError('Could not reach the Astro API at http://x: the connection was refused (ECONNREFUSED)', undefined);
      return dep('d1', 'prod', { status: 'HEALTHY', imageTag: 'ours' });
    };
    const outcome = await pollUntilHealthy(get, { timeoutMs: 60_000, intervalMs: 1, expect: { imageTag: 'ours' }, onStatus: (s) => statuses.push(s) });
    expect(outcome.status).toBe('HEALTHY');
    expect(calls).toBe(4);
    expect(statuses.filter((s) => s.includes('did not answer'))).toHaveLength(3);
  });

  it('gives up on the API only when --wait-time is over, and at once on a refusal that will not change', async () => {
    let t = 0;
    const down = async (): Promise<Deployment> => {
      throw new ApiError('Could not reach the Astro API', undefined);
    };
    await expect(pollUntilHealthy(down, { timeoutMs: 50, intervalMs: 1, expect: {}, now: () => (t += 10) })).rejects.toThrow('Could not reach the Astro API');
    let refusals = 0;
    const forbidden = async (): Promise<Deployment> => {
      refusals++;
      throw new ApiError('forbidden', 403);
    };
    await expect(pollUntilHealthy(forbidden, { timeoutMs: 60_000, intervalMs: 1, expect: {} })).rejects.toThrow('forbidden');
    expect(refusals).toBe(1);
  });

  it('times out with the message users know', async () => {
    let t = 0;
    await expect(pollUntilHealthy(seq([{ status: 'DEPLOYING' }]), { timeoutMs: 50, intervalMs: 1, expect: {}, now: () => (t += 10) })).rejects.toThrow(
      /timed out waiting for the Deployment to enter a Healthy state/,
    );
  });
});

describe('parseDuration', () => {
  it.each([
    ['300s', 300_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['90', 90_000],
    ['1.5s', 1500],
    ['250ms', 250],
  ])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', 'abc', '5x', '5m junk', '-5s'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});
