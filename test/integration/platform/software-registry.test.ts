/**
 * The registry as Astronomer's CLI meets it on the `localhost` Software domain: it skips registry login and pushes
 * with an empty username, so Docker asks the token endpoint anonymously. Software repositories take that push (as the
 * registry of that setup does); Astro repositories still refuse anything without a login.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyImage, pushImage, removeDir, removeImage, startTestStack, waitFor, type TestStack } from './helpers.js';

let t: TestStack;
const images: string[] = [];
const houstonToken = () => t.stack.tokens.houston.userTokens[0]!.token;

async function tokenRequestsSince(seq: number) {
  const res = await t.api(`/_platform/requests?listener=platform&path=/registry/token&since=${seq}`);
  return res.json.requests as { status: number; headers?: Record<string, string> }[];
}

async function lastSeq(): Promise<number> {
  return (await t.api('/_platform/requests?listener=platform')).json.lastSeq;
}

async function build(ref: string) {
  await buildTinyImage(ref, { labels: { 'io.astronomer.docker.runtime.version': '3.1-8' } });
  images.push(ref);
}

beforeAll(async () => {
  t = await startTestStack();
});

afterAll(async () => {
  await Promise.all(images.map(removeImage));
  await t?.stop();
  if (t) removeDir(t.stateDir);
});

describe('Software registry on localhost', () => {
  it("takes a push with an empty username (what Astronomer's CLI sends there) without a single 401", async () => {
    const host = t.stack.endpoints.registry.host;
    const ref = `${host}/galactic-image-1111/airflow:deploy-7`;
    await build(ref);
    const since = await lastSeq();
    // The CLI passes the Houston token as password with no username; Docker then sends no Basic credentials at all.
    const pushed = await pushImage(ref, { username: '', password: houstonToken(), serveraddress: host });
    expect(pushed.error).toBeUndefined();
    const requests = await tokenRequestsSince(since);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.map((r) => r.status)).toEqual(requests.map(() => 200));

    // The push notification still moves the Deployment to the new tag.
    const state = await waitFor('deployInfo to follow the anonymous push', async () => {
      const s = (await t.api('/_platform/state')).json;
      const d = s.software.deployments.find((x: any) => x.releaseName === 'galactic-image-1111');
      return d?.deployInfo.current === 'deploy-7' ? s : undefined;
    });
    expect(state.registryPushes.some((p: any) => p.repository === 'galactic-image-1111/airflow' && p.tag === 'deploy-7' && p.actor === 'anonymous')).toBe(true);
  });

  it('refuses an anonymous push to an Astro Deployment repository', async () => {
    const host = t.stack.endpoints.registry.host;
    const ref = `${host}/stellar-orbit-1234/airflow:deploy-anonymous`;
    await build(ref);
    const since = await lastSeq();
    const pushed = await pushImage(ref, { username: '', password: '', serveraddress: host });
    expect(pushed.error).toMatch(/unauthorized|denied|authentication required/i);
    const requests = await tokenRequestsSince(since);
    expect(requests.some((r) => r.status === 401)).toBe(true);
  });

  it('asks for credentials for an anonymous token request without any Software scope', async () => {
    const base = `http://127.0.0.1:${t.stack.endpoints.platform.port}/registry/token?service=astro-local-registry`;
    const astro = await fetch(`${base}&scope=repository:stellar-orbit-1234/airflow:push,pull`);
    expect(astro.status).toBe(401);
    expect(astro.headers.get('www-authenticate')).toContain('Basic');
    const none = await fetch(base);
    expect(none.status).toBe(401);
    // A request naming both: only the Software repository is granted.
    const mixed = await fetch(`${base}&scope=repository:stellar-orbit-1234/airflow:push&scope=repository:galactic-image-1111/airflow:push`);
    expect(mixed.status).toBe(200);
    const { token } = (await mixed.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.access).toEqual([{ type: 'repository', name: 'galactic-image-1111/airflow', actions: ['push'] }]);
  });

  it('keeps refusing anonymous Software pushes when the platform is not served as localhost', async () => {
    const remote = await startTestStack({ publicHost: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${remote.stack.endpoints.platform.port}/registry/token?service=astro-local-registry`;
      expect((await fetch(`${base}&scope=repository:galactic-image-1111/airflow:push`)).status).toBe(401);
    } finally {
      await remote.stop();
      removeDir(remote.stateDir);
    }
  });
});
