// tagPushedManifest against a registry that behaves like distribution for manifests: it serves a manifest by digest,
// takes one under a tag only when its config and layers are in the repository (400 MANIFEST_BLOB_UNKNOWN else), and
// sits behind a token realm that grants pull or pull,push. rememberedPushes: the file it is remembered in.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rememberedPushes } from '../../../src/image/pushed-images.js';
import { tagPushedManifest } from '../../../src/image/registry.js';
import { startFakeRegistry, type FakeRegistry } from './fake-registry.js';

const MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const CONFIG = sha('config');
const LAYER = sha('layer');
const manifestOf = (config: string, layer: string) =>
  JSON.stringify(
    { schemaVersion: 2, mediaType: MEDIA_TYPE, config: { mediaType: 'c', size: 6, digest: config }, layers: [{ size: 5, digest: layer }] },
    null,
    3,
  );
const MANIFEST = manifestOf(CONFIG, LAYER);
const DIGEST = sha(MANIFEST);
/** Names a layer the repository does not have. */
const ORPHAN = manifestOf(CONFIG, sha('gone'));

/** Manifests by digest and by tag, as stored; blobs present in the repository. */
let manifests: Map<string, { type: string; body: string }>;
const blobs = new Set([CONFIG, LAYER]);
let registry: FakeRegistry;
let seen: string[];
let host: string;

beforeAll(async () => {
  registry = await startFakeRegistry(
    (scope) => (scope.endsWith(':pull,push') ? 'push-token' : 'pull-token'),
    (req, res, url, host) => {
      const auth = req.headers.authorization;
      const pushing = req.method === 'PUT';
      if (auth !== 'Bearer push-token' && (pushing || auth !== 'Bearer pull-token')) {
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:org/airflow:pull,push"` })
          .end();
        return;
      }
      const match = /^\/v2\/org\/airflow\/manifests\/(.+)$/.exec(url.pathname);
      if (!match) return void res.writeHead(404).end();
      const reference = decodeURIComponent(match[1]!);
      if (req.method === 'GET') {
        const stored = manifests.get(reference);
        if (!stored) return void res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
        return void res.writeHead(200, { 'content-type': stored.type, 'docker-content-digest': sha(stored.body) }).end(stored.body);
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const parsed = JSON.parse(body) as { config: { digest: string }; layers: { digest: string }[] };
        if (![parsed.config.digest, ...parsed.layers.map((l) => l.digest)].every((d) => blobs.has(d))) {
          return void res.writeHead(400).end('{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN"}]}');
        }
        const stored = { type: String(req.headers['content-type']), body };
        manifests.set(reference, stored);
        manifests.set(sha(body), stored);
        res.writeHead(201, { 'docker-content-digest': sha(body) }).end();
      });
    },
  );
  ({ seen, host } = registry);
});

afterAll(() => registry.close());

beforeEach(() => {
  seen.length = 0;
  manifests = new Map([
    [DIGEST, { type: MEDIA_TYPE, body: MANIFEST }],
    [sha(ORPHAN), { type: MEDIA_TYPE, body: ORPHAN }],
  ]);
});

const auth = { username: 'cli', password: 'secret' };
const tag = (input: Partial<Parameters<typeof tagPushedManifest>[0]> = {}) =>
  tagPushedManifest({ repository: `${host}/org/airflow`, tag: 'deploy-2', digest: DIGEST, imageId: CONFIG, auth, ...input });

describe('tagPushedManifest', () => {
  it('reads the manifest by its digest and puts the same bytes under the new tag, with a pull,push token', async () => {
    const tagged = await tag();
    expect(tagged).toEqual({ digest: DIGEST, manifest: { mediaType: MEDIA_TYPE, body: MANIFEST } });
    expect(manifests.get('deploy-2')).toEqual({ type: MEDIA_TYPE, body: MANIFEST });
    expect(seen).toEqual([
      `GET /v2/org/airflow/manifests/${DIGEST}`,
      'GET /token?repository:org/airflow:pull,push',
      `GET /v2/org/airflow/manifests/${DIGEST}`,
      'PUT /v2/org/airflow/manifests/deploy-2',
    ]);
  });

  it('with the manifest remembered and a push token in hand, is one request', async () => {
    const tagged = await tag({ known: { mediaType: MEDIA_TYPE, body: MANIFEST }, bearer: 'push-token' });
    expect(tagged?.digest).toBe(DIGEST);
    expect(seen).toEqual(['PUT /v2/org/airflow/manifests/deploy-2']);
  });

  it('reads the manifest again when the remembered text is not of that digest', async () => {
    const tagged = await tag({ known: { mediaType: MEDIA_TYPE, body: `${MANIFEST} ` }, bearer: 'push-token' });
    expect(tagged?.manifest.body).toBe(MANIFEST);
    expect(seen).toEqual([`GET /v2/org/airflow/manifests/${DIGEST}`, 'PUT /v2/org/airflow/manifests/deploy-2']);
  });

  it('leaves the push to the engine (undefined) when the registry lost the manifest or a layer, or the manifest is of another image', async () => {
    manifests.delete(DIGEST);
    expect(await tag({ bearer: 'push-token' })).toBeUndefined();
    expect(await tag({ digest: sha(ORPHAN), bearer: 'push-token' })).toBeUndefined();
    expect(seen.at(-1)).toBe('PUT /v2/org/airflow/manifests/deploy-2');
    manifests.set(DIGEST, { type: MEDIA_TYPE, body: MANIFEST });
    seen.length = 0;
    expect(await tag({ imageId: sha('another image'), bearer: 'push-token' })).toBeUndefined();
    expect(seen).toEqual([`GET /v2/org/airflow/manifests/${DIGEST}`]);
    expect(await tag({ digest: 'latest', bearer: 'push-token' })).toBeUndefined();
    expect(manifests.has('deploy-2')).toBe(false);
  });

  it('takes an engine that names an image by its manifest digest', async () => {
    expect((await tag({ imageId: DIGEST, bearer: 'push-token' }))?.digest).toBe(DIGEST);
  });

  it('throws when the token realm refuses the credentials', async () => {
    await expect(tag({ auth: { username: 'cli', password: 'wrong' } })).rejects.toThrow(/token service answered 401/);
    expect(manifests.has('deploy-2')).toBe(false);
  });
});

describe('rememberedPushes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-pushed-images-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("keeps each image's digest per repository, keeps a manifest's text when the push is remembered again, and reads a damaged file as nothing", async () => {
    const file = path.join(dir, 'pushed-images.json');
    const pushes = rememberedPushes(file);
    const repo = 'images.example.com/org/airflow';
    expect(await pushes.find(repo, CONFIG)).toBeUndefined();
    await pushes.remember(repo, CONFIG, DIGEST);
    expect(await pushes.find(repo, CONFIG)).toEqual({ digest: DIGEST });
    expect(await pushes.find('images.example.com/other/airflow', CONFIG)).toBeUndefined();
    // A name is never a key (it moves from build to build): neither remembered nor found.
    await pushes.remember(repo, 'ns/airflow:latest', DIGEST);
    expect(await pushes.find(repo, 'ns/airflow:latest')).toBeUndefined();
    expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')) as object)).toEqual([`${repo}@${CONFIG}`]);
    await pushes.remember(repo, CONFIG, DIGEST, { mediaType: MEDIA_TYPE, body: MANIFEST });
    await pushes.remember(repo, CONFIG, DIGEST);
    expect(await pushes.find(repo, CONFIG)).toEqual({ digest: DIGEST, manifest: { mediaType: MEDIA_TYPE, body: MANIFEST } });
    await pushes.remember(repo, CONFIG, sha(ORPHAN));
    expect(await pushes.find(repo, CONFIG)).toEqual({ digest: sha(ORPHAN) });
    fs.writeFileSync(file, JSON.stringify({ [`${repo}@${CONFIG}`]: { digest: 'latest' } }));
    expect(await pushes.find(repo, CONFIG)).toBeUndefined();
    fs.writeFileSync(file, 'not json');
    expect(await pushes.find(repo, CONFIG)).toBeUndefined();
    for (let i = 0; i < 21; i++) await pushes.remember(repo, sha(`image ${i}`), DIGEST);
    expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')) as object).length).toBeLessThanOrEqual(20);
  });
});
