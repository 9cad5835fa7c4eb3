// A push to a distant registry goes through astro's relay (src/image/registry-relay.ts): the local platform's registry
// is put behind a latency proxy (test/platform/latency-proxy.ts, 15 ms each way and a round trip per new connection),
// and the connections the proxy accepts during a deploy's push show who made them: Docker's engine opens one per
// registry request, the relay keeps a few alive. Against the same registry with ASTRO_PUSH_RELAY=0, and near (no
// proxy: no relay chosen).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../platform/stack.js';
import { latencyProxy, type LatencyProxy } from '../../platform/latency-proxy.js';
import { runCli } from '../../helpers/cli.js';
import { provisioned } from '../../helpers/provisioned.js';

const DEPLOYMENT = 'cldepdagon000000000000000';
let stack: Stack;
let proxy: LatencyProxy;
let dir: string;
let home: string;
let runs = 0;

beforeAll(async () => {
  proxy = await latencyProxy(15);
  stack = await startStack({ ports: 0, healthDelayMs: 100, registryPublicHost: `localhost:${proxy.port}` });
  proxy.upstream = stack.endpoints.registry.port;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-relay-project-'));
  await fs.cp(path.resolve('fixtures/example-project'), dir, { recursive: true });
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-relay-home-'));
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${stack.endpoints.platform.url}\n`);
});

afterAll(async () => {
  await stack?.stop();
  proxy?.close();
  for (const d of [dir, home]) if (d) await fs.rm(d, { recursive: true, force: true });
});

/** A full deploy of a project with one file changed (a new image, so the engine has a layer to push). */
async function deploy(env: Record<string, string> = {}) {
  await fs.writeFile(path.join(dir, 'include', 'relay.txt'), `run ${++runs} ${process.pid}\n`);
  const token = stack.tokens.apiTokens.find((x) => x.id === 'cltokwsdataplatform000000')!.token;
  const before = proxy.connections;
  const run = await runCli(['deploy', DEPLOYMENT, '-f', '--json', '--verbose'], {
    cwd: dir,
    env: {
      ASTRO_HOME: home,
      ASTRO_API_TOKEN: token,
      ASTRO_CACHE_DIR: path.join(home, 'cache'),
      ASTRONOMER_SKIP_PARSE: '1',
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      ...env,
    },
  });
  expect(run.code, run.stderr).toBe(0);
  const doc = JSON.parse(run.stdout) as { image: { digest: string; repository: string; tag: string } };
  return { doc, stderr: run.stderr, connections: proxy.connections - before };
}

describe('a push to a distant registry', () => {
  it('goes through the relay: a handful of kept-alive connections where the engine opens one per request', async () => {
    // The first deploy tells astro where this Deployment's images go (the next ones measure that registry early).
    await deploy();
    const direct = await deploy({ ASTRO_PUSH_RELAY: '0' });
    const relayed = await deploy();

    const measured = /The registry at http:\/\/localhost:\d+ answered on a new connection in (\d+) ms\./.exec(relayed.stderr);
    expect(measured, relayed.stderr).not.toBeNull();
    expect(Number(measured![1])).toBeGreaterThanOrEqual(20);
    expect(relayed.stderr).not.toContain('relay did not go through');
    expect(direct.stderr).not.toContain('answered on a new connection');

    // The engine's own push: a connection per request (the ping, the layer checks, the uploads, the manifest).
    expect(direct.connections).toBeGreaterThanOrEqual(12);
    // Through the relay: the early measurement's connection and the five opened as the relay started (6 here), and
    // one more if the measurement's was closed as idle before the push (a slow build).
    expect(relayed.connections).toBeLessThanOrEqual(8);

    // Either way the registry holds the image under the Deployment's repository, as the deploy says.
    for (const { doc } of [direct, relayed]) {
      const [, ...name] = doc.image.repository.split('/');
      const answer = await fetch(`http://${stack.endpoints.registry.host}/v2/${name.join('/')}/manifests/${doc.image.tag}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', authorization: `Bearer ${await registryToken(name.join('/'))}` },
      });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('docker-content-digest')).toBe(doc.image.digest);
    }
  });
});

/** A pull token for `name` from the registry's realm, with the API token as the password (as the CLIs push with). */
async function registryToken(name: string): Promise<string> {
  const challenge = (await fetch(`http://${stack.endpoints.registry.host}/v2/`)).headers.get('www-authenticate')!;
  const realm = /realm="([^"]+)"/.exec(challenge)![1]!;
  const service = /service="([^"]+)"/.exec(challenge)?.[1];
  const url = new URL(realm);
  if (service) url.searchParams.set('service', service);
  url.searchParams.set('scope', `repository:${name}:pull`);
  const token = stack.tokens.apiTokens.find((x) => x.id === 'cltokwsdataplatform000000')!.token;
  const answer = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`cli:${token}`).toString('base64')}` } });
  return ((await answer.json()) as { token: string }).token;
}
