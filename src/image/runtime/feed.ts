/**
 * The Astro Runtime updates feed (reference 7.5): which Runtime versions exist, which are stable, which were yanked
 * and why. The feed only ever adds advice to a deploy, so loading it never fails a command: it is fetched with a
 * short timeout, kept for a day in the cache directory, and when it cannot be had the caller gets `feed: undefined`
 * and a reason for the debug log.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as z from 'zod';

import { compareRuntimeVersions, isValidRuntimeVersion, maxRuntimeVersion } from './version.js';

export const DEFAULT_RUNTIME_FEED_URL = 'https://updates.astronomer.io/astronomer-runtime';
export const DEFAULT_FEED_TIMEOUT_MS = 3_000;
export const DEFAULT_FEED_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** How old a cached copy may be and still stand in when the network fails. */
export const DEFAULT_FEED_STALE_IF_ERROR_MS = 7 * 24 * 60 * 60 * 1000;
const maxFeedBytes = 16 * 1024 * 1024;
const clockSkewMs = 5 * 60 * 1000;

export const STABLE_CHANNEL = 'stable';

export type RuntimeGeneration = 'airflow2' | 'airflow3';

// Missing fields decode to empty values, as the platform's own client treats them; wrong types drop the entry.
const runtimeEntrySchema = z.looseObject({
  metadata: z.looseObject({
    airflowVersion: z.string().default(''),
    channel: z.string().default(''),
    releaseDate: z.string().default(''),
    pythonVersions: z.array(z.string()).nullish(),
    defaultPythonVersion: z.string().nullish(),
    yanked: z.boolean().nullish(),
    yankedReason: z.string().nullish(),
  }),
  migrations: z.looseObject({ airflowDatabase: z.boolean().default(false) }).nullish(),
});

const runtimeMapSchema = z.record(z.string(), z.unknown()).nullish();

export const runtimeFeedDocumentSchema = z.looseObject({
  version: z.string().nullish(),
  runtimeVersions: runtimeMapSchema,
  runtimeVersionsV3: runtimeMapSchema,
  clientVersions: z.record(z.string(), z.unknown()).nullish(),
  available_releases: z.array(z.unknown()).nullish(),
});

export interface RuntimeRelease {
  version: string;
  /** `airflow2` for entries of `runtimeVersions`, `airflow3` for `runtimeVersionsV3`. */
  generation: RuntimeGeneration;
  airflowVersion: string;
  channel: string;
  releaseDate: string;
  pythonVersions: string[];
  defaultPythonVersion?: string;
  yanked: boolean;
  yankedReason?: string;
  airflowDatabaseMigration: boolean;
}

export interface RuntimeFeed {
  releases: RuntimeRelease[];
  /** Keys whose entries did not match the schema and were left out. */
  dropped: string[];
}

export type RuntimeFeedParse = { ok: true; feed: RuntimeFeed } | { ok: false; reason: string };

function collect(map: Record<string, unknown> | null | undefined, generation: RuntimeGeneration, feed: RuntimeFeed): void {
  for (const [version, raw] of Object.entries(map ?? {})) {
    const entry = runtimeEntrySchema.safeParse(raw);
    if (!entry.success) {
      feed.dropped.push(version);
      continue;
    }
    const { metadata, migrations } = entry.data;
    const release: RuntimeRelease = {
      version,
      generation,
      airflowVersion: metadata.airflowVersion,
      channel: metadata.channel,
      releaseDate: metadata.releaseDate,
      pythonVersions: metadata.pythonVersions ?? [],
      yanked: metadata.yanked ?? false,
      airflowDatabaseMigration: migrations?.airflowDatabase ?? false,
    };
    if (metadata.defaultPythonVersion) release.defaultPythonVersion = metadata.defaultPythonVersion;
    if (metadata.yankedReason) release.yankedReason = metadata.yankedReason;
    feed.releases.push(release);
  }
}

/** Validates a decoded feed document. */
export function parseRuntimeFeed(document: unknown): RuntimeFeedParse {
  const parsed = runtimeFeedDocumentSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `unexpected feed shape${issue ? ` at ${issue.path.join('.') || '(root)'}: ${issue.message}` : ''}` };
  }
  const feed: RuntimeFeed = { releases: [], dropped: [] };
  collect(parsed.data.runtimeVersions, 'airflow2', feed);
  collect(parsed.data.runtimeVersionsV3, 'airflow3', feed);
  return { ok: true, feed };
}

export function parseRuntimeFeedText(text: string): RuntimeFeedParse {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `the feed is not valid JSON (${(error as Error).message})` };
  }
  return parseRuntimeFeed(document);
}

export interface LatestRuntimeOptions {
  /** Only Runtime versions built on this Airflow version. */
  airflowVersion?: string;
  /** Only one generation; by default both maps count, so Airflow 3 versions always win. */
  generation?: RuntimeGeneration;
}

/** The latest stable, non-yanked Runtime version, or undefined when the feed offers none. */
export function latestRuntimeVersion(feed: RuntimeFeed, options: LatestRuntimeOptions = {}): string | undefined {
  return maxRuntimeVersion(
    feed.releases
      .filter((release) => release.channel === STABLE_CHANNEL && !release.yanked)
      .filter((release) => options.airflowVersion === undefined || release.airflowVersion === options.airflowVersion)
      .filter((release) => options.generation === undefined || release.generation === options.generation)
      .map((release) => release.version),
  );
}

/** The feed entry for a version: the exact key first, then any key that compares equal (`v3.1-8`, `12.5`). */
export function findRuntimeRelease(feed: RuntimeFeed, version: string): RuntimeRelease | undefined {
  return (
    feed.releases.find((release) => release.version === version) ??
    (isValidRuntimeVersion(version) ? feed.releases.find((release) => compareRuntimeVersions(release.version, version) === 0) : undefined)
  );
}

/**
 * The pinned version a floating tag stands for: the highest non-yanked version whose key continues the tag with `-`
 * or `.` (`3.1` -> `3.1-9`). Airflow 3 tags look only in `runtimeVersionsV3`, as the registry's floating tags do.
 * Stable releases are preferred; other channels count only when a minor has no stable release at all.
 */
export function resolveFloatingVersion(feed: RuntimeFeed, floating: string, generation: RuntimeGeneration = 'airflow3'): string | undefined {
  const candidates = feed.releases.filter(
    (release) =>
      release.generation === generation && !release.yanked && (release.version.startsWith(`${floating}-`) || release.version.startsWith(`${floating}.`)),
  );
  const stable = candidates.filter((release) => release.channel === STABLE_CHANNEL);
  return maxRuntimeVersion((stable.length > 0 ? stable : candidates).map((release) => release.version));
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

export interface FeedHttpResponse {
  ok: boolean;
  status: number;
  text(): Promise<string>;
}

/** The subset of `fetch` the loader needs; `globalThis.fetch` satisfies it. */
export type FeedFetch = (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<FeedHttpResponse>;

export interface LoadRuntimeFeedOptions {
  url: string;
  /** Directory for the day-long cache; no caching when undefined. */
  cacheDir?: string;
  fetch?: FeedFetch;
  timeoutMs?: number;
  maxAgeMs?: number;
  staleIfErrorMs?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  signal?: AbortSignal;
  onDebug?: (message: string) => void;
}

export type RuntimeFeedSource = 'network' | 'cache' | 'stale-cache' | 'unavailable';

export interface RuntimeFeedLoad {
  feed: RuntimeFeed | undefined;
  source: RuntimeFeedSource;
  /** When the feed in hand was fetched (ISO 8601). */
  fetchedAt?: string;
  /** Why the network copy was not used, for the debug log. */
  reason?: string;
}

const cacheFileSchema = z.object({
  url: z.string(),
  fetchedAt: z.iso.datetime(),
  document: z.unknown(),
});

export function feedCachePath(cacheDir: string, url: string): string {
  const key = createHash('sha256').update(url).digest('hex').slice(0, 16);
  return join(cacheDir, 'runtime-feed', `${key}.json`);
}

interface CachedFeed {
  feed: RuntimeFeed;
  fetchedAtMs: number;
  fetchedAt: string;
}

async function readCache(path: string, url: string, debug: (message: string) => void): Promise<CachedFeed | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') debug(`runtime feed cache unreadable: ${(error as Error).message}`);
    return undefined;
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch {
    debug(`runtime feed cache ${path} is corrupt; ignoring it`);
    return undefined;
  }
  const file = cacheFileSchema.safeParse(decoded);
  if (!file.success || file.data.url !== url) {
    debug(`runtime feed cache ${path} does not hold a feed for ${url}; ignoring it`);
    return undefined;
  }
  const parsed = parseRuntimeFeed(file.data.document);
  if (!parsed.ok) {
    debug(`runtime feed cache ${path} holds an invalid feed (${parsed.reason}); ignoring it`);
    return undefined;
  }
  return { feed: parsed.feed, fetchedAtMs: Date.parse(file.data.fetchedAt), fetchedAt: file.data.fetchedAt };
}

async function writeCache(path: string, url: string, fetchedAt: string, document: unknown, debug: (message: string) => void): Promise<void> {
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(temporary, JSON.stringify({ url, fetchedAt, document }), 'utf8');
    await rename(temporary, path);
  } catch (error) {
    debug(`could not write the runtime feed cache: ${(error as Error).message}`);
  }
}

/** Settles with the promise, or rejects as soon as the signal aborts (for ports that ignore the signal). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (name === 'AbortError') return 'the request was cancelled';
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
  return `the feed could not be reached (${detail})`;
}

async function fetchDocument(
  options: LoadRuntimeFeedOptions,
  timeoutMs: number,
): Promise<{ ok: true; document: unknown; feed: RuntimeFeed } | { ok: false; reason: string }> {
  const doFetch: FeedFetch = options.fetch ?? (globalThis.fetch as unknown as FeedFetch);
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  let text: string;
  try {
    const response = await raceAbort(doFetch(options.url, { signal, headers: { accept: 'application/json' } }), signal);
    if (!response.ok) return { ok: false, reason: `the feed answered HTTP ${response.status}` };
    text = await raceAbort(response.text(), signal);
  } catch (error) {
    return { ok: false, reason: describeFetchError(timeout.aborted ? timeout.reason : error, timeoutMs) };
  }
  if (text.length > maxFeedBytes) return { ok: false, reason: `the feed is larger than ${maxFeedBytes} bytes` };
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `the feed is not valid JSON (${(error as Error).message})` };
  }
  const parsed = parseRuntimeFeed(document);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  return { ok: true, document, feed: parsed.feed };
}

/**
 * Loads the updates feed: a fresh cached copy if there is one, else the network, else a cached copy up to
 * `staleIfErrorMs` old. Never throws; `feed` is undefined when nothing usable was found.
 */
export async function loadRuntimeFeed(options: LoadRuntimeFeedOptions): Promise<RuntimeFeedLoad> {
  const now = options.now ?? Date.now;
  const debug = options.onDebug ?? ((): void => undefined);
  const timeoutMs = options.timeoutMs ?? DEFAULT_FEED_TIMEOUT_MS;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_FEED_MAX_AGE_MS;
  const staleIfErrorMs = options.staleIfErrorMs ?? DEFAULT_FEED_STALE_IF_ERROR_MS;
  const cachePath = options.cacheDir === undefined ? undefined : feedCachePath(options.cacheDir, options.url);

  const cached = cachePath === undefined ? undefined : await readCache(cachePath, options.url, debug);
  const startedAt = now();
  const ageOf = (entry: CachedFeed): number => startedAt - entry.fetchedAtMs;
  // A timestamp from the future (clock changes, copied caches) is not trusted as fresh.
  const usable = cached !== undefined && cached.fetchedAtMs <= startedAt + clockSkewMs ? cached : undefined;
  if (usable && ageOf(usable) < maxAgeMs) {
    debug(`runtime feed from cache (fetched ${usable.fetchedAt})`);
    return { feed: usable.feed, source: 'cache', fetchedAt: usable.fetchedAt };
  }

  const fetched = await fetchDocument(options, timeoutMs);
  if (fetched.ok) {
    const fetchedAt = new Date(now()).toISOString();
    if (fetched.feed.dropped.length > 0) debug(`runtime feed entries with an unexpected shape were ignored: ${fetched.feed.dropped.join(', ')}`);
    if (cachePath !== undefined) await writeCache(cachePath, options.url, fetchedAt, fetched.document, debug);
    return { feed: fetched.feed, source: 'network', fetchedAt };
  }

  debug(`runtime feed ${options.url} unavailable: ${fetched.reason}`);
  if (usable && ageOf(usable) < staleIfErrorMs) {
    debug(`using the cached runtime feed from ${usable.fetchedAt}`);
    return { feed: usable.feed, source: 'stale-cache', fetchedAt: usable.fetchedAt, reason: fetched.reason };
  }
  return { feed: undefined, source: 'unavailable', reason: fetched.reason };
}
