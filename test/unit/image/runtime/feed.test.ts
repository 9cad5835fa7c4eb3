import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  feedCachePath,
  findRuntimeRelease,
  latestRuntimeVersion,
  loadRuntimeFeed,
  parseRuntimeFeed,
  parseRuntimeFeedText,
  resolveFloatingVersion,
  type LoadRuntimeFeedOptions,
  type RuntimeFeed,
} from '../../../../src/image/runtime/feed.js';

const fixtureText = readFileSync(new URL('../../../platform/fixtures/updates-feed.json', import.meta.url), 'utf8');

function feedOf(document: unknown): RuntimeFeed {
  const parsed = parseRuntimeFeed(document);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.feed;
}

const entry = (channel: string, extra: Record<string, unknown> = {}) => ({
  metadata: { airflowVersion: '3.1.8', channel, releaseDate: '2026-01-01T00:00:00Z', ...extra },
  migrations: { airflowDatabase: false },
});

describe('parseRuntimeFeed', () => {
  it('reads the platform fixture', () => {
    const feed = feedOf(JSON.parse(fixtureText));
    expect(feed.dropped).toEqual([]);
    expect(feed.releases.filter((r) => r.generation === 'airflow3').map((r) => r.version)).toEqual([
      '3.0-7',
      '3.1-1',
      '3.1-7',
      '3.1-8',
      '3.1-9',
      '3.2-1',
      '3.2-2',
      '3.3-1-rc1',
    ]);
    expect(findRuntimeRelease(feed, '3.1-7')).toMatchObject({
      yanked: true,
      yankedReason: expect.stringContaining('DAG processor crash'),
      generation: 'airflow3',
    });
    expect(findRuntimeRelease(feed, '3.1-8')).toMatchObject({
      airflowVersion: '3.1.8',
      channel: 'stable',
      pythonVersions: ['3.10', '3.11', '3.12', '3.13'],
      defaultPythonVersion: '3.12',
      yanked: false,
      airflowDatabaseMigration: false,
    });
  });

  it.each([
    ['empty object', {}, 0],
    ['null maps', { runtimeVersions: null, runtimeVersionsV3: null }, 0],
    ['unknown top-level fields are tolerated', { somethingNew: [1, 2], runtimeVersionsV3: { '3.1-8': entry('stable') } }, 1],
    ['missing optional metadata', { runtimeVersionsV3: { '3.1-8': { metadata: {} } } }, 1],
  ])('accepts %s', (_name, document, count) => {
    expect(feedOf(document).releases).toHaveLength(count);
  });

  it('fills missing metadata with empty values, as the platform client does', () => {
    const [release] = feedOf({ runtimeVersionsV3: { '3.1-8': { metadata: {} } } }).releases;
    expect(release).toMatchObject({ version: '3.1-8', airflowVersion: '', channel: '', yanked: false, pythonVersions: [] });
  });

  it('drops entries of the wrong shape and keeps the rest', () => {
    const feed = feedOf({
      runtimeVersionsV3: {
        '3.1-8': entry('stable'),
        '3.1-9': { metadata: { channel: 7 } },
        '3.2-1': 'not an object',
        '3.2-2': { metadata: { channel: 'stable', yanked: 'yes' } },
      },
    });
    expect(feed.releases.map((r) => r.version)).toEqual(['3.1-8']);
    expect(feed.dropped).toEqual(['3.1-9', '3.2-1', '3.2-2']);
  });

  it.each([
    ['an array', []],
    ['a string', 'feed'],
    ['null', null],
    ['a map that is a list', { runtimeVersionsV3: [] }],
    ['a version that is a number', { version: 1 }],
  ])('rejects %s', (_name, document) => {
    const parsed = parseRuntimeFeed(document);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/unexpected feed shape/);
  });

  it('rejects text that is not JSON', () => {
    const parsed = parseRuntimeFeedText('{"runtimeVersionsV3": {');
    expect(parsed).toMatchObject({ ok: false, reason: expect.stringMatching(/not valid JSON/) });
  });
});

describe('feed queries', () => {
  const fixture = feedOf(JSON.parse(fixtureText));

  it.each([
    ['latest stable non-yanked over both maps', {}, '3.2-1'], // 3.2-2 is yanked, 3.3-1-rc1 is alpha
    ['Airflow 2 only', { generation: 'airflow2' as const }, '13.1.0'],
    ['Airflow 3 only', { generation: 'airflow3' as const }, '3.2-1'],
    ['for an Airflow version', { airflowVersion: '3.1.8' }, '3.1-9'],
    ['for an Airflow 2 version', { airflowVersion: '2.10.5' }, '12.5.0'],
    ['for an Airflow version only yanked releases have', { airflowVersion: '3.2.1' }, undefined],
    ['for an unknown Airflow version', { airflowVersion: '9.9.9' }, undefined],
  ])('latestRuntimeVersion: %s', (_name, options, expected) => {
    expect(latestRuntimeVersion(fixture, options)).toBe(expected);
  });

  it.each([
    ['empty feed', {}, undefined],
    ['only yanked', { runtimeVersionsV3: { '3.1-8': entry('stable', { yanked: true }) } }, undefined],
    ['only non-stable', { runtimeVersionsV3: { '3.1-8': entry('alpha') } }, undefined],
    ['yanked latest falls back to the previous', { runtimeVersionsV3: { '3.1-8': entry('stable'), '3.1-9': entry('stable', { yanked: true }) } }, '3.1-8'],
    ['new format beats old format', { runtimeVersions: { '13.9.0': entry('stable') }, runtimeVersionsV3: { '3.0-1': entry('stable') } }, '3.0-1'],
    ['invalid keys rank lowest', { runtimeVersionsV3: { garbage: entry('stable'), '3.0-1': entry('stable') } }, '3.0-1'],
  ])('latestRuntimeVersion edge case: %s', (_name, document, expected) => {
    expect(latestRuntimeVersion(feedOf(document))).toBe(expected);
  });

  it.each([
    ['3.1', 'airflow3' as const, '3.1-9'],
    ['3.2', 'airflow3' as const, '3.2-1'], // the newer 3.2-2 is yanked
    ['3.3', 'airflow3' as const, '3.3-1-rc1'], // no stable 3.3 yet: the pre-release is all there is
    ['3.0', 'airflow3' as const, '3.0-7'],
    ['3', 'airflow3' as const, '3.2-1'], // single-number tags match on '.'
    ['3.9', 'airflow3' as const, undefined],
    ['3.1-8', 'airflow3' as const, undefined],
    ['12.5', 'airflow2' as const, '12.5.0'],
    ['12.4', 'airflow2' as const, undefined], // 12.4.0 is yanked
    ['13', 'airflow2' as const, '13.1.0'],
  ])('resolveFloatingVersion(%s, %s) = %s', (tag, generation, expected) => {
    expect(resolveFloatingVersion(fixture, tag, generation)).toBe(expected);
  });

  it('floating tags look only in runtimeVersionsV3', () => {
    expect(resolveFloatingVersion(fixture, '12.5')).toBeUndefined();
  });

  it.each([
    ['3.1-8', '3.1-8'],
    ['v3.1-8', '3.1-8'],
    ['12.5', '12.5.0'],
    ['12.5.0', '12.5.0'],
    ['3.1-6', undefined],
    ['latest', undefined],
  ])('findRuntimeRelease(%s)', (version, expected) => {
    expect(findRuntimeRelease(fixture, version)?.version).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Loading over real HTTP

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

describe('loadRuntimeFeed', () => {
  let server: Server;
  let baseUrl: string;
  let handler: Handler;
  let requests: IncomingMessage[];
  let cacheDir: string;
  let debug: string[];
  const hanging = new Set<ServerResponse>();

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests.push(request);
      handler(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(async () => {
    requests = [];
    debug = [];
    cacheDir = await mkdtemp(join(tmpdir(), 'astro-feed-'));
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(fixtureText);
    };
  });

  afterEach(async () => {
    for (const response of hanging) response.destroy();
    hanging.clear();
    await rm(cacheDir, { recursive: true, force: true });
  });

  const options = (extra: Partial<LoadRuntimeFeedOptions> = {}): LoadRuntimeFeedOptions => ({
    url: `${baseUrl}/updates/astronomer-runtime`,
    cacheDir,
    timeoutMs: 1_000,
    onDebug: (message) => debug.push(message),
    ...extra,
  });

  const day = 24 * 60 * 60 * 1000;
  const t0 = Date.parse('2026-07-01T12:00:00Z');

  it('fetches the feed with Accept: application/json and caches it', async () => {
    const load = await loadRuntimeFeed(options({ now: () => t0 }));
    expect(load.source).toBe('network');
    expect(load.fetchedAt).toBe('2026-07-01T12:00:00.000Z');
    expect(load.feed && latestRuntimeVersion(load.feed)).toBe('3.2-1');
    expect(requests).toHaveLength(1);
    expect(requests[0]?.method).toBe('GET');
    expect(requests[0]?.url).toBe('/updates/astronomer-runtime');
    expect(requests[0]?.headers.accept).toBe('application/json');

    const cached = JSON.parse(await readFile(feedCachePath(cacheDir, options().url), 'utf8'));
    expect(cached).toMatchObject({ url: options().url, fetchedAt: '2026-07-01T12:00:00.000Z' });
    expect(cached.document).toEqual(JSON.parse(fixtureText));
  });

  it('serves a cache younger than a day without asking the network', async () => {
    await loadRuntimeFeed(options({ now: () => t0 }));
    const load = await loadRuntimeFeed(options({ now: () => t0 + day - 1 }));
    expect(load.source).toBe('cache');
    expect(load.fetchedAt).toBe('2026-07-01T12:00:00.000Z');
    expect(load.feed && latestRuntimeVersion(load.feed)).toBe('3.2-1');
    expect(requests).toHaveLength(1);
  });

  it('refetches once the cache is a day old', async () => {
    await loadRuntimeFeed(options({ now: () => t0 }));
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ runtimeVersionsV3: { '3.4-1': entry('stable') } }));
    };
    const load = await loadRuntimeFeed(options({ now: () => t0 + day }));
    expect(load.source).toBe('network');
    expect(requests).toHaveLength(2);
    expect(load.feed && latestRuntimeVersion(load.feed)).toBe('3.4-1');
    const again = await loadRuntimeFeed(options({ now: () => t0 + day + 1 }));
    expect(again.source).toBe('cache');
    expect(again.feed && latestRuntimeVersion(again.feed)).toBe('3.4-1');
  });

  it('does not trust a cache stamped in the future', async () => {
    await loadRuntimeFeed(options({ now: () => t0 + 2 * day }));
    const load = await loadRuntimeFeed(options({ now: () => t0 }));
    expect(load.source).toBe('network');
    expect(requests).toHaveLength(2);
  });

  it.each([
    ['not JSON', 'this is { not json'],
    ['the wrong shape', JSON.stringify({ url: 'x', fetchedAt: 'yesterday', document: {} })],
    ['another URL', JSON.stringify({ url: 'http://elsewhere/feed', fetchedAt: new Date(t0).toISOString(), document: {} })],
    ['an invalid feed', JSON.stringify({ url: '__URL__', fetchedAt: new Date(t0).toISOString(), document: [] })],
  ])('ignores a corrupt cache holding %s', async (_name, content) => {
    const path = feedCachePath(cacheDir, options().url);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content.replace('__URL__', options().url));
    const load = await loadRuntimeFeed(options({ now: () => t0 }));
    expect(load.source).toBe('network');
    expect(load.feed && latestRuntimeVersion(load.feed)).toBe('3.2-1');
    expect(debug.join('\n')).toMatch(/ignoring it/);
  });

  it('keeps one cache per URL', async () => {
    expect(feedCachePath(cacheDir, 'http://a/feed')).not.toBe(feedCachePath(cacheDir, 'http://b/feed'));
  });

  it('works without a cache directory', async () => {
    const { cacheDir: _unused, ...withoutCache } = options();
    const first = await loadRuntimeFeed(withoutCache);
    const second = await loadRuntimeFeed(withoutCache);
    expect([first.source, second.source]).toEqual(['network', 'network']);
    expect(requests).toHaveLength(2);
  });

  it('still returns the feed when the cache cannot be written', async () => {
    const blocked = join(cacheDir, 'blocked');
    await writeFile(blocked, 'a file where a directory should be');
    const load = await loadRuntimeFeed(options({ cacheDir: blocked }));
    expect(load.source).toBe('network');
    expect(debug.join('\n')).toMatch(/could not write the runtime feed cache/);
  });

  it('an empty feed is a valid feed with nothing in it', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    };
    const load = await loadRuntimeFeed(options());
    expect(load.source).toBe('network');
    expect(load.feed?.releases).toEqual([]);
    expect(load.feed && latestRuntimeVersion(load.feed)).toBeUndefined();
  });

  it.each([
    ['malformed JSON', 200, '{"runtimeVersionsV3": {"3.1-8": ', /not valid JSON/],
    ['JSON of the wrong shape', 200, '[1, 2, 3]', /unexpected feed shape/],
    ['an HTML error page', 200, '<html>502 Bad Gateway</html>', /not valid JSON/],
    ['HTTP 500', 500, '{"message": "boom"}', /HTTP 500/],
    ['HTTP 404', 404, 'not found', /HTTP 404/],
  ])('is silent about %s: no feed, a reason, nothing cached', async (_name, status, body, reason) => {
    handler = (_request, response) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body);
    };
    const load = await loadRuntimeFeed(options());
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: expect.stringMatching(reason) });
    await expect(readFile(feedCachePath(cacheDir, options().url), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(debug.join('\n')).toMatch(reason);
  });

  it('gives up after the timeout when the server never answers', async () => {
    handler = (_request, response) => {
      hanging.add(response);
    };
    const started = Date.now();
    const load = await loadRuntimeFeed(options({ timeoutMs: 200 }));
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: 'no answer within 200 ms' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('gives up after the timeout when the body never finishes', async () => {
    handler = (_request, response) => {
      hanging.add(response);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"runtimeVersionsV3": {');
    };
    const load = await loadRuntimeFeed(options({ timeoutMs: 200 }));
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: 'no answer within 200 ms' });
  });

  it('times out even with a fetch port that ignores the abort signal', async () => {
    const load = await loadRuntimeFeed(options({ timeoutMs: 100, fetch: () => new Promise(() => undefined) }));
    expect(load).toMatchObject({ source: 'unavailable', reason: 'no answer within 100 ms' });
  });

  it('is silent when offline (connection refused)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const load = await loadRuntimeFeed(options({ url: `http://127.0.0.1:${port}/updates/astronomer-runtime` }));
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: expect.stringMatching(/could not be reached \(ECONNREFUSED\)/) });
  });

  it('falls back to a cache up to a week old when the network fails', async () => {
    await loadRuntimeFeed(options({ now: () => t0 }));
    handler = (request, response) => {
      request.socket.destroy();
      response.destroy();
    };
    const load = await loadRuntimeFeed(options({ now: () => t0 + 3 * day }));
    expect(load.source).toBe('stale-cache');
    expect(load.fetchedAt).toBe('2026-07-01T12:00:00.000Z');
    expect(load.reason).toMatch(/could not be reached/);
    expect(load.feed && latestRuntimeVersion(load.feed)).toBe('3.2-1');
  });

  it('does not use a cache older than a week', async () => {
    await loadRuntimeFeed(options({ now: () => t0 }));
    handler = (_request, response) => {
      response.writeHead(503);
      response.end();
    };
    const load = await loadRuntimeFeed(options({ now: () => t0 + 8 * day }));
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: 'the feed answered HTTP 503' });
  });

  it('stops when the caller cancels', async () => {
    handler = (_request, response) => {
      hanging.add(response);
    };
    const controller = new AbortController();
    const pending = loadRuntimeFeed(options({ signal: controller.signal, timeoutMs: 10_000 }));
    setTimeout(() => controller.abort(), 50);
    const load = await pending;
    expect(load).toMatchObject({ feed: undefined, source: 'unavailable', reason: 'the request was cancelled' });
  });
});
