// The DAG bundle against real Azurite (behind the versioning and fault-injecting proxy of blob-stack.ts).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDagBundle } from '../../../src/bundle/tarball.js';
import { uploadDagBundle, type UploadEvent, type UploadRetryPolicy } from '../../../src/bundle/upload.js';
import { InterruptedError, UserError } from '../../../src/errors.js';
import { startBlobStack, type BlobStack, type RecordedRequest } from './blob-stack.js';

const MiB = 1024 * 1024;
const FAST: Partial<UploadRetryPolicy> = { baseDelayMs: 20, maxDelayMs: 200, tryTimeoutMs: 10_000 };

let stack: BlobStack;
let container = '';
let testIndex = 0;

beforeAll(async () => {
  stack = await startBlobStack();
});
afterAll(async () => {
  await stack?.stop();
});
beforeEach(async () => {
  stack.fault = undefined;
  stack.requests.length = 0;
  container = `deployment-${++testIndex}`;
  await stack.createContainer(container);
});

const sas = (options?: Parameters<BlobStack['sasUrl']>[2]) => stack.sasUrl(container, 'dags.tar.gz', options);
const uploads = () => stack.requests.filter((r) => r.method === 'PUT');
const blockRequests = () => stack.requests.filter((r) => r.comp === 'block');

async function upload(data: Buffer, extra: Partial<Parameters<typeof uploadDagBundle>[0]> = {}) {
  const events: UploadEvent[] = [];
  const result = await uploadDagBundle({ sasUrl: sas(), data, blockSize: MiB, concurrency: 3, retry: FAST, onProgress: (e) => events.push(e), ...extra });
  return { result, events };
}

function countBy(requests: RecordedRequest[], key: (r: RecordedRequest) => string | undefined): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>();
  for (const r of requests) counts.set(key(r), (counts.get(key(r)) ?? 0) + 1);
  return counts;
}

describe('DAG bundle upload to Azure Blob (Azurite)', () => {
  it('uploads a real DAG bundle as one Put Blob and returns the version that holds exactly those bytes', async () => {
    const project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-upload-'));
    try {
      await fs.mkdir(path.join(project, 'dags', 'lib'), { recursive: true });
      await fs.writeFile(path.join(project, 'dags', 'etl.py'), 'from airflow.sdk import dag\n');
      await fs.writeFile(path.join(project, 'dags', 'lib', 'util.py'), 'X = 1\n');
      const bundle = await createDagBundle({ sourceDir: path.join(project, 'dags') });

      const { result, events } = await upload(bundle.data);
      expect(result.versionId).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
      expect(uploads().map((r) => [r.comp, r.status])).toEqual([[undefined, 201]]);
      const stored = await stack.download(container, 'dags.tar.gz', result.versionId);
      expect(stored.equals(bundle.data)).toBe(true);
      expect(gunzipSync(stored).toString('latin1')).toContain('dags/lib/util.py');
      expect(events.at(-1)).toEqual({ type: 'done', versionId: result.versionId, totalBytes: bundle.bytes });
      expect(await fs.readdir(project)).toEqual(['dags']);
    } finally {
      await fs.rm(project, { recursive: true, force: true });
    }
  });

  it('uploads a large payload as parallel blocks and one block list', async () => {
    const data = randomBytes(3 * MiB + 12_345);
    const { result, events } = await upload(data);
    expect(blockRequests()).toHaveLength(4);
    expect(new Set(blockRequests().map((r) => r.blockId)).size).toBe(4);
    expect(uploads().at(-1)).toMatchObject({ comp: 'blocklist', status: 201 });
    expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data)).toBe(true);
    expect(events.filter((e) => e.type === 'progress').at(-1)).toEqual({ type: 'progress', loadedBytes: data.length, totalBytes: data.length });
  });

  it('retries a block that got a 500 and re-sends no block already staged', async () => {
    let blocksSeen = 0;
    stack.fault = (r) => (r.comp === 'block' && ++blocksSeen === 2 ? { kind: 'status', status: 500, code: 'InternalError' } : undefined);
    const data = randomBytes(4 * MiB);
    const { result, events } = await upload(data, { concurrency: 1 });

    const perBlock = countBy(blockRequests(), (r) => r.blockId);
    expect([...perBlock.values()].sort()).toEqual([1, 1, 1, 2]);
    expect(perBlock.get(blockRequests()[1]!.blockId)).toBe(2);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'retry', request: 'put-block', blockIndex: 1, reason: expect.stringContaining('HTTP 500 InternalError') }),
    );
    expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data)).toBe(true);
  });

  it('retries a 408 on the block list without staging again', async () => {
    let commits = 0;
    stack.fault = (r) => (r.comp === 'blocklist' && ++commits === 1 ? { kind: 'status', status: 408, code: 'OperationTimedOut' } : undefined);
    const data = randomBytes(2 * MiB + 1);
    const { result } = await upload(data);
    expect(blockRequests()).toHaveLength(3);
    expect(
      uploads()
        .filter((r) => r.comp === 'blocklist')
        .map((r) => r.status),
    ).toEqual([408, 201]);
    expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data)).toBe(true);
  });

  it('survives connection resets before and after the storage applied a request', async () => {
    let blocks = 0;
    let commits = 0;
    stack.fault = (r) => {
      if (r.comp === 'block') {
        blocks++;
        if (blocks === 1) return { kind: 'reset-before' };
        if (blocks === 3) return { kind: 'reset-after' };
      }
      if (r.comp === 'blocklist' && ++commits === 1) return { kind: 'reset-after' };
      return undefined;
    };
    const data = randomBytes(3 * MiB);
    const { result, events } = await upload(data, { concurrency: 1 });
    expect(blockRequests()).toHaveLength(5);
    expect(uploads().filter((r) => r.comp === 'blocklist')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(3);
    expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data)).toBe(true);
  });

  it('retries a small upload whose answer was lost, and honours Retry-After on 503', async () => {
    let puts = 0;
    stack.fault = () => {
      puts++;
      if (puts === 1) return { kind: 'status', status: 503, code: 'ServerBusy', retryAfterSeconds: 0 };
      if (puts === 2) return { kind: 'reset-after' };
      return undefined;
    };
    const data = randomBytes(10_000);
    const { result } = await upload(data);
    expect(uploads()).toHaveLength(3);
    expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data)).toBe(true);
  });

  it('gives up with a clear error when the storage keeps failing', async () => {
    stack.fault = () => ({ kind: 'status', status: 503, code: 'ServerBusy' });
    const error = await upload(randomBytes(1000), { retry: { ...FAST, maxAttempts: 3 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe('Uploading the DAG bundle failed after 3 attempts: HTTP 503 ServerBusy: Injected by the test proxy.');
    expect(uploads()).toHaveLength(3);
  });

  it('says the upload URL expired, and what to run, when the SAS has expired', async () => {
    const sasUrl = sas({ expiresInSeconds: -60 });
    const error = await uploadDagBundle({ sasUrl, data: randomBytes(1000), retry: FAST }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    // Nothing in the error, causes included, may carry the SAS signature (it would end up in --verbose output).
    const signature = new URL(sasUrl).searchParams.get('sig')!;
    expect(inspect(error, { depth: 20 })).not.toContain(signature);
    expect(inspect(error, { depth: 20 })).not.toContain(encodeURIComponent(signature));
    expect((error as UserError).message).toMatch(/^The DAG upload URL expired \(at .+Z\) before the upload finished\.$/);
    expect((error as UserError).nextStep).toMatch(/Run the deploy again/);
    expect(uploads().map((r) => r.status)).toEqual([403]);
  });

  it('refuses a tampered SAS without retrying', async () => {
    const tampered = sas().replace(/sig=[^&]+/, 'sig=AAAA');
    const error = await uploadDagBundle({ sasUrl: tampered, data: randomBytes(1000), retry: FAST }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/^The storage refused the DAG upload URL \(HTTP 403 /);
    expect(uploads()).toHaveLength(1);
  });

  it('ends two concurrent uploads to the same blob consistently: both succeed, each version is whole', async () => {
    const data = [randomBytes(3 * MiB), randomBytes(3 * MiB + 500)];
    // Hold every commit until both uploads have staged all their blocks, so the first commit discards the
    // other's staged blocks, as happens when two deploys race.
    let release!: () => void;
    const bothStaged = new Promise<void>((resolve) => (release = resolve));
    stack.fault = (r) => {
      if (r.comp === 'block' && stack.requests.filter((x) => x.comp === 'block').length >= 7) release();
      return r.comp === 'blocklist' ? { kind: 'hold', until: bothStaged } : undefined;
    };
    const events: UploadEvent[][] = [[], []];
    const results = await Promise.all(
      data.map((d, i) => uploadDagBundle({ sasUrl: sas(), data: d, blockSize: MiB, concurrency: 2, retry: FAST, onProgress: (e) => events[i]!.push(e) })),
    );

    expect(events.flat().filter((e) => e.type === 'restage')).toHaveLength(1);
    expect(stack.requests.filter((r) => r.comp === 'blocklist').map((r) => r.status)).toEqual(expect.arrayContaining([201, 201, 400]));
    for (const [i, result] of results.entries()) {
      expect((await stack.download(container, 'dags.tar.gz', result.versionId)).equals(data[i]!)).toBe(true);
    }
    const restaged = events.findIndex((list) => list.some((e) => e.type === 'restage'));
    expect((await stack.download(container, 'dags.tar.gz')).equals(data[restaged]!)).toBe(true);
  });

  it('stops with an interruption when cancelled mid-upload', async () => {
    const controller = new AbortController();
    let blocks = 0;
    stack.fault = (r) => {
      if (r.comp === 'block' && ++blocks === 2) controller.abort('SIGINT');
      return undefined;
    };
    const error = await upload(randomBytes(6 * MiB), { concurrency: 1, signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(uploads().filter((r) => r.comp === 'blocklist')).toHaveLength(0);
    expect(blockRequests().length).toBeLessThan(6);
  });
});
