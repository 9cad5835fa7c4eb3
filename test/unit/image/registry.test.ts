import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectPushedImage } from '../../../src/image/registry.js';

// A registry that answers like docker-registry behind a token realm: 401 with a Bearer challenge, then the manifest
// (an index for `multi`), then the config blob. It records what it was asked.
const seen: string[] = [];
let server: http.Server;
let host: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push(`${req.method} ${url.pathname}${url.pathname === '/token' ? `?${url.searchParams.get('scope')}` : ''}`);
    if (url.pathname === '/token') {
      const ok = req.headers.authorization === `Basic ${Buffer.from('cli:secret').toString('base64')}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? JSON.stringify({ token: 'pull-token' }) : '{}');
      return;
    }
    if (req.headers.authorization !== 'Bearer pull-token') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:org/airflow:pull"` }).end();
      return;
    }
    const send = (body: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    if (url.pathname === '/v2/org/airflow/manifests/single')
      return send({ mediaType: 'x', config: { digest: 'sha256:cfg' } }, { 'docker-content-digest': 'sha256:single' });
    if (url.pathname === '/v2/org/airflow/manifests/multi') {
      return send(
        {
          manifests: [
            { digest: 'sha256:arm', platform: { os: 'linux', architecture: 'arm64' } },
            { digest: 'sha256:amd', platform: { os: 'linux', architecture: 'amd64' } },
          ],
        },
        { 'docker-content-digest': 'sha256:index' },
      );
    }
    if (url.pathname === '/v2/org/airflow/manifests/sha256:amd') return send({ config: { digest: 'sha256:cfg' } });
    if (url.pathname === '/v2/org/airflow/blobs/sha256:cfg') return send({ config: { Labels: { a: 'b' } } });
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => server.close());

describe('inspectPushedImage', () => {
  it("answers the Bearer challenge for a pull scope only, and returns the tag's digest and the image labels", async () => {
    seen.length = 0;
    const image = await inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'single', auth: { username: 'cli', password: 'secret' } });
    expect(image).toEqual({ digest: 'sha256:single', labels: { a: 'b' } });
    expect(seen).toEqual([
      'GET /v2/org/airflow/manifests/single',
      'GET /token?repository:org/airflow:pull',
      'GET /v2/org/airflow/manifests/single',
      'GET /v2/org/airflow/blobs/sha256:cfg',
    ]);
    expect(seen.every((s) => s.startsWith('GET '))).toBe(true);
  });

  it('takes the linux/amd64 image of an index, keeping the index digest', async () => {
    const image = await inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'multi', auth: { username: 'cli', password: 'secret' } });
    expect(image).toEqual({ digest: 'sha256:index', labels: { a: 'b' } });
  });

  it('says undefined for a tag the registry does not have, and throws when the token is refused', async () => {
    expect(await inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'gone', auth: { username: 'cli', password: 'secret' } })).toBeUndefined();
    await expect(inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'single', auth: { username: 'cli', password: 'wrong' } })).rejects.toThrow(
      /token service answered 401/,
    );
  });
});
