import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rememberedChallenges } from '../../../src/image/registry-challenges.js';
import { inspectPushedImage, requestPushToken, type RegistryChallenge } from '../../../src/image/registry.js';
import { startFakeRegistry, type FakeRegistry } from './fake-registry.js';

// A registry that answers like docker-registry behind a token realm: 401 with a Bearer challenge, then the manifest
// (an index for `multi`), then the config blob. It records what it was asked.
let registry: FakeRegistry;
let seen: string[];
let host: string;

beforeAll(async () => {
  registry = await startFakeRegistry(
    () => 'pull-token',
    (req, res, url, host) => {
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
    },
  );
  ({ seen, host } = registry);
});

afterAll(() => registry.close());

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

  describe('with the challenge remembered from last time', () => {
    const auth = { username: 'cli', password: 'secret' };
    const remembered = (): RegistryChallenge => ({ realm: `http://${host}/token`, service: 'test-registry' });
    /** Reads `single` with `challenge` remembered; returns the image and the challenges the registry sent. */
    const inspectRemembering = async (challenge: RegistryChallenge) => {
      seen.length = 0;
      const heard: RegistryChallenge[] = [];
      const image = await inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'single', auth, challenge, onChallenge: (c) => heard.push(c) });
      return { image, heard };
    };

    it('asks the realm for its token first: no unauthenticated request, and nothing new to remember', async () => {
      const { image, heard } = await inspectRemembering(remembered());
      expect(image).toEqual({ digest: 'sha256:single', labels: { a: 'b' } });
      expect(seen).toEqual(['GET /token?repository:org/airflow:pull', 'GET /v2/org/airflow/manifests/single', 'GET /v2/org/airflow/blobs/sha256:cfg']);
      expect(heard).toEqual([]);
    });

    it("answers the registry's own challenge when the remembered realm is gone, and hands that challenge on", async () => {
      const { image, heard } = await inspectRemembering({ realm: `http://${host}/moved-token` });
      expect(image).toEqual({ digest: 'sha256:single', labels: { a: 'b' } });
      expect(seen).toEqual([
        'GET /moved-token',
        'GET /v2/org/airflow/manifests/single',
        'GET /token?repository:org/airflow:pull',
        'GET /v2/org/airflow/manifests/single',
        'GET /v2/org/airflow/blobs/sha256:cfg',
      ]);
      expect(heard).toEqual([remembered()]);
    });

    it('never sends the credentials to a remembered realm a challenge could not be trusted with', async () => {
      // Plain http to another machine: the remembered file is skipped, the registry challenges as without it.
      seen.length = 0;
      const image = await inspectPushedImage({
        repository: `${host}/org/airflow`,
        tag: 'single',
        auth,
        challenge: { realm: 'http://registry.example.invalid/token' },
      });
      expect(image?.digest).toBe('sha256:single');
      expect(seen[0]).toBe('GET /v2/org/airflow/manifests/single');
      await expect(
        inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'single', auth, challenge: { realm: 'not a url' } }).then((i) => i?.digest),
      ).resolves.toBe('sha256:single');
    });

    it('a refused token stays an error when the registry challenges again', async () => {
      await expect(
        inspectPushedImage({ repository: `${host}/org/airflow`, tag: 'single', auth: { username: 'cli', password: 'wrong' }, challenge: remembered() }),
      ).rejects.toThrow(/token service answered 401/);
    });
  });
});

describe('requestPushToken', () => {
  const auth = { username: 'cli', password: 'secret' };
  const repository = () => `${host}/org/airflow`;

  it("asks the remembered realm for the repository's pull and push scope with the push's credentials", async () => {
    seen.length = 0;
    const token = await requestPushToken({ repository: repository(), auth, challenge: { realm: `http://${host}/token`, service: 'test-registry' } });
    expect(token).toBe('pull-token');
    expect(seen).toEqual(['GET /token?repository:org/airflow:pull,push']);
  });

  it('gives none without a remembered realm, for one a challenge could not be trusted with, or when the realm refuses', async () => {
    seen.length = 0;
    expect(await requestPushToken({ repository: repository(), auth, challenge: undefined })).toBeUndefined();
    expect(await requestPushToken({ repository: repository(), auth, challenge: { realm: 'http://registry.example.invalid/token' } })).toBeUndefined();
    expect(seen).toEqual([]);
    expect(
      await requestPushToken({ repository: repository(), auth: { ...auth, password: 'wrong' }, challenge: { realm: `http://${host}/token` } }),
    ).toBeUndefined();
    expect(await requestPushToken({ repository: repository(), auth, challenge: { realm: `http://${host}/moved-token` } })).toBeUndefined();
  });
});

describe('rememberedChallenges', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-registry-challenges-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps one challenge per registry host, writes only a change, and reads a damaged file as nothing', async () => {
    const file = path.join(dir, 'registry-challenges.json');
    const challenges = rememberedChallenges(file);
    expect(await challenges.read('images.example.com')).toBeUndefined();
    await challenges.remember('images.example.com', { realm: 'https://auth.example.com/token', service: 'images' });
    await challenges.remember('localhost:5000', { realm: 'http://localhost:5000/token' });
    expect(await challenges.read('images.example.com')).toEqual({ realm: 'https://auth.example.com/token', service: 'images' });
    const written = fs.statSync(file).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await challenges.remember('images.example.com', { realm: 'https://auth.example.com/token', service: 'images' });
    expect(fs.statSync(file).mtimeMs).toBe(written);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      'images.example.com': { realm: 'https://auth.example.com/token', service: 'images' },
      'localhost:5000': { realm: 'http://localhost:5000/token' },
    });
    fs.writeFileSync(file, '{"images.example.com": {"realm": 7}}');
    expect(await challenges.read('images.example.com')).toBeUndefined();
    fs.writeFileSync(file, 'not json');
    expect(await challenges.read('images.example.com')).toBeUndefined();
    await challenges.remember('images.example.com', { realm: 'https://auth.example.com/token' });
    expect(await challenges.read('images.example.com')).toEqual({ realm: 'https://auth.example.com/token' });
  });
});
