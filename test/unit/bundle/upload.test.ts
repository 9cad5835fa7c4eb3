import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BlobRequestError,
  uploadDagBundle,
  type BlobRequestOptions,
  type BlockBlobTarget,
  type UploadEvent,
  type UploadRetryPolicy,
} from '../../../src/bundle/upload.js';
import { InterruptedError, UserError } from '../../../src/errors.js';

const FAST: Partial<UploadRetryPolicy> = { baseDelayMs: 1, maxDelayMs: 5, tryTimeoutMs: 5_000 };
const future = new Date(Date.now() + 3_600_000).toISOString();
const SAS = `https://acct.blob.core.windows.net/dep/dags.tar.gz?sv=2023-11-03&se=${encodeURIComponent(future)}&sr=b&sp=cw&sig=c2lnbmF0dXJl`;

type Call = { op: 'putBlob' | 'stageBlock' | 'commit'; blockId?: string; bytes?: number; ids?: string[] };
type Script = (call: Call, n: number) => BlobRequestError | 'hang' | undefined;

/**
 * An in-memory block blob that behaves like Azure: staged blocks are per blob, a commit resolves ids against them
 * ("Latest") and then drops every uncommitted block. `script` decides failures per call.
 */
class FakeBlob implements BlockBlobTarget {
  calls: Call[] = [];
  staged = new Map<string, Buffer>();
  committed = new Map<string, Buffer>();
  content: Buffer | undefined;
  version = 0;
  inFlight = 0;
  maxInFlight = 0;
  returnVersion = true;

  constructor(private readonly script: Script = () => undefined) {}

  private async request<T>(call: Call, options: BlobRequestOptions, bytes: number, apply: () => T): Promise<T> {
    this.calls.push(call);
    const verdict = this.script(call, this.calls.length);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2));
      if (verdict === 'hang') {
        await new Promise((_, reject) => {
          const abort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          if (options.signal.aborted) abort();
          else options.signal.addEventListener('abort', abort);
        });
      }
      if (verdict instanceof BlobRequestError) throw verdict;
      options.onBytes?.(bytes);
      return apply();
    } finally {
      this.inFlight--;
    }
  }

  putBlob(data: Buffer, options: BlobRequestOptions) {
    return this.request({ op: 'putBlob', bytes: data.length }, options, data.length, () => {
      this.content = Buffer.from(data);
      this.staged.clear();
      return { versionId: this.returnVersion ? `v${++this.version}` : undefined };
    });
  }

  stageBlock(blockId: string, data: Buffer, options: BlobRequestOptions) {
    return this.request({ op: 'stageBlock', blockId, bytes: data.length }, options, data.length, () => {
      this.staged.set(blockId, Buffer.from(data));
    });
  }

  commitBlockList(ids: string[], options: BlobRequestOptions) {
    return this.request({ op: 'commit', ids }, options, 0, () => {
      const blocks = ids.map((id) => this.staged.get(id) ?? this.committed.get(id));
      if (blocks.some((b) => b === undefined)) throw new BlobRequestError('The specified block list is invalid.', { status: 400, code: 'InvalidBlockList' });
      this.committed = new Map(ids.map((id, i) => [id, blocks[i]!]));
      this.content = Buffer.concat(blocks as Buffer[]);
      this.staged.clear();
      return { versionId: this.returnVersion ? `v${++this.version}` : undefined };
    });
  }

  stageCalls(): Call[] {
    return this.calls.filter((c) => c.op === 'stageBlock');
  }
}

const serverError = () => new BlobRequestError('Internal error', { status: 500, code: 'InternalError' });

async function upload(target: BlockBlobTarget, data: Buffer, extra: Partial<Parameters<typeof uploadDagBundle>[0]> = {}) {
  const events: UploadEvent[] = [];
  const result = await uploadDagBundle({
    sasUrl: SAS,
    data,
    target,
    blockSize: 1024,
    concurrency: 3,
    retry: FAST,
    onProgress: (e) => events.push(e),
    ...extra,
  });
  return { result, events };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe('uploadDagBundle', () => {
  it('sends a payload smaller than a block as one Put Blob and returns its version', async () => {
    const blob = new FakeBlob();
    const data = randomBytes(1023);
    const { result, events } = await upload(blob, data);
    expect(result).toEqual({ versionId: 'v1' });
    expect(blob.calls.map((c) => c.op)).toEqual(['putBlob']);
    expect(blob.content!.equals(data)).toBe(true);
    expect(events[0]).toEqual({ type: 'start', totalBytes: 1023, method: 'put-blob', blockCount: 1 });
    expect(events.filter((e) => e.type === 'progress').at(-1)).toEqual({ type: 'progress', loadedBytes: 1023, totalBytes: 1023 });
    expect(events.at(-1)).toEqual({ type: 'done', versionId: 'v1', totalBytes: 1023 });
  });

  it('stages blocks in parallel with 16-byte ids unique to the upload and commits them in order', async () => {
    const blob = new FakeBlob();
    const data = randomBytes(10 * 1024 + 100);
    const { result } = await upload(blob, data);
    expect(result.versionId).toBe('v1');
    expect(blob.content!.equals(data)).toBe(true);

    const staged = blob.stageCalls();
    expect(staged).toHaveLength(11);
    const commit = blob.calls.at(-1)!;
    expect(commit.op).toBe('commit');
    const ids = commit.ids!;
    expect(new Set(ids).size).toBe(11);
    const raw = ids.map((id) => Buffer.from(id, 'base64'));
    expect(raw.every((b) => b.length === 16)).toBe(true);
    expect(raw.every((b) => b.subarray(0, 12).equals(raw[0]!.subarray(0, 12)))).toBe(true);
    expect(raw.map((b) => b.readUInt32BE(12))).toEqual([...Array(11).keys()]);
    expect(staged.map((c) => c.bytes).at(-1)).toBe(100);
    expect(blob.maxInFlight).toBe(3);

    const again = new FakeBlob();
    await upload(again, data);
    const otherPrefix = Buffer.from(again.calls.at(-1)!.ids![0]!, 'base64').subarray(0, 12);
    expect(otherPrefix.equals(raw[0]!.subarray(0, 12))).toBe(false);
  });

  it('reports byte progress that ends at the total', async () => {
    const blob = new FakeBlob();
    const data = randomBytes(5000);
    const { events } = await upload(blob, data);
    const progress = events.filter((e) => e.type === 'progress').map((e) => (e as { loadedBytes: number }).loadedBytes);
    expect(progress.at(-1)).toBe(5000);
    expect(progress.every((n, i) => i === 0 || n >= progress[i - 1]!)).toBe(true);
  });

  it('retries a failed block alone, without sending the staged ones again', async () => {
    const blob = new FakeBlob((call, n) => (call.op === 'stageBlock' && n === 2 ? serverError() : undefined));
    const data = randomBytes(4096);
    const { events } = await upload(blob, data, { concurrency: 1 });
    expect(blob.content!.equals(data)).toBe(true);
    const ids = blob.stageCalls().map((c) => c.blockId);
    expect(ids).toHaveLength(5);
    expect(ids[1]).toBe(ids[2]);
    expect(new Set(ids).size).toBe(4);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'retry', request: 'put-block', blockIndex: 1, attempt: 2, reason: 'HTTP 500 InternalError: Internal error' }),
    );
  });

  it('retries 408, 429, 503 and network errors, and honours Retry-After', async () => {
    const faults = [
      new BlobRequestError('timeout', { status: 408 }),
      new BlobRequestError('slow down', { status: 429, code: 'TooManyRequests', retryAfterMs: 40 }),
      new BlobRequestError('busy', { status: 503, code: 'ServerBusy' }),
      new BlobRequestError('socket hang up', { code: 'ECONNRESET' }),
    ];
    const blob = new FakeBlob((call, n) => (n <= faults.length ? faults[n - 1] : undefined));
    const { events } = await upload(blob, randomBytes(100), { retry: { ...FAST, maxAttempts: 5 } });
    expect(blob.calls).toHaveLength(5);
    const retries = events.filter((e) => e.type === 'retry') as Extract<UploadEvent, { type: 'retry' }>[];
    expect(retries.map((r) => r.attempt)).toEqual([2, 3, 4, 5]);
    // Back-off alone would be 1-2 ms here; Retry-After (40 ms) raises it (the retry helper honours it up to 30 s).
    expect(retries[1]!.delayMs).toBe(40);
    expect(retries[3]!.reason).toBe('ECONNRESET: socket hang up');
  });

  it('gives up after the attempts of the policy with a message saying what failed', async () => {
    const blob = new FakeBlob(() => new BlobRequestError('busy', { status: 503, code: 'ServerBusy' }));
    const error = await failure(upload(blob, randomBytes(100), { retry: { ...FAST, maxAttempts: 3 } }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe('Uploading the DAG bundle failed after 3 attempts: HTTP 503 ServerBusy: busy.');
    expect(blob.calls).toHaveLength(3);
  });

  it('retries a commit without staging the blocks again', async () => {
    let commits = 0;
    const blob = new FakeBlob((call) => (call.op === 'commit' && ++commits === 1 ? serverError() : undefined));
    const data = randomBytes(3000);
    await upload(blob, data);
    expect(blob.calls.map((c) => c.op)).toEqual(['stageBlock', 'stageBlock', 'stageBlock', 'commit', 'commit']);
    expect(blob.content!.equals(data)).toBe(true);
  });

  it('survives a commit that succeeded but whose answer was lost', async () => {
    let lost = false;
    const blob = new FakeBlob();
    const original = blob.commitBlockList.bind(blob);
    blob.commitBlockList = async (ids, options) => {
      const answer = await original(ids, options);
      if (!lost) {
        lost = true;
        throw new BlobRequestError('socket hang up', { code: 'ECONNRESET' });
      }
      return answer;
    };
    const data = randomBytes(3000);
    const { result } = await upload(blob, data);
    expect(result.versionId).toBe('v2');
    expect(blob.content!.equals(data)).toBe(true);
    expect(blob.stageCalls()).toHaveLength(3);
  });

  it('stages again and commits when another upload committed first (InvalidBlockList)', async () => {
    let intruded = false;
    const blob = new FakeBlob((call) => {
      if (call.op === 'commit' && !intruded) {
        intruded = true;
        // A concurrent deploy commits its own bundle, which drops our uncommitted blocks.
        blob.staged.clear();
        blob.content = Buffer.from('other bundle');
      }
      return undefined;
    });
    const data = randomBytes(3000);
    const { events, result } = await upload(blob, data);
    expect(blob.content!.equals(data)).toBe(true);
    expect(result.versionId).toBe('v1');
    expect(blob.stageCalls()).toHaveLength(6);
    expect(events).toContainEqual({ type: 'restage', round: 2, reason: 'another upload committed first and discarded the staged blocks' });
  });

  it('stops after a bounded number of discarded commits', async () => {
    const blob = new FakeBlob((call) => {
      if (call.op === 'commit') blob.staged.clear();
      return undefined;
    });
    const error = await failure(upload(blob, randomBytes(2048), { retry: { ...FAST, maxCommitRounds: 2 } }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(/Another upload to the same Deployment kept replacing the DAG bundle; 2 attempts/);
    expect(blob.calls.filter((c) => c.op === 'commit')).toHaveLength(2);
  });

  it('says the upload URL expired when the storage refuses a SAS past its expiry, without retrying', async () => {
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const sasUrl = SAS.replace(/se=[^&]+/, `se=${encodeURIComponent(past.toISOString())}`);
    const blob = new FakeBlob(() => new BlobRequestError('Server failed to authenticate the request.', { status: 403, code: 'AuthenticationFailed' }));
    const error = (await failure(upload(blob, randomBytes(100), { sasUrl }))) as UserError;
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`The DAG upload URL expired (at ${past.toISOString().replace('.000Z', 'Z')}) before the upload finished.`);
    expect(error.nextStep).toMatch(/Run the deploy again/);
    expect(blob.calls).toHaveLength(1);
  });

  it('says the storage refused the URL when a 403 arrives before the expiry', async () => {
    const blob = new FakeBlob(() => new BlobRequestError('Not authorized.', { status: 403, code: 'AuthorizationPermissionMismatch' }));
    const error = await failure(upload(blob, randomBytes(100)));
    expect(error.message).toBe('The storage refused the DAG upload URL (HTTP 403 AuthorizationPermissionMismatch: Not authorized).');
    expect(error.message).not.toContain('sig=');
  });

  it('does not retry other client errors', async () => {
    const blob = new FakeBlob(() => new BlobRequestError('The specified container does not exist.', { status: 404, code: 'ContainerNotFound' }));
    const error = await failure(upload(blob, randomBytes(100)));
    expect(error.message).toBe('The storage refused the DAG bundle upload: HTTP 404 ContainerNotFound: The specified container does not exist.');
    expect(blob.calls).toHaveLength(1);
  });

  it('fails clearly when the storage returns no version id', async () => {
    const blob = new FakeBlob();
    blob.returnVersion = false;
    const error = await failure(upload(blob, randomBytes(3000)));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(/^the storage did not return a version for the uploaded DAGs/);
  });

  it('abandons a request that hangs past the try timeout and retries it', async () => {
    const blob = new FakeBlob((call, n) => (n === 1 ? 'hang' : undefined));
    const { events } = await upload(blob, randomBytes(100), { retry: { ...FAST, tryTimeoutMs: 50 } });
    expect(blob.calls).toHaveLength(2);
    expect(events).toContainEqual(expect.objectContaining({ type: 'retry', reason: 'ETIMEDOUT: no answer within 50 ms' }));
  });

  it('stops with an interruption when the signal is aborted mid-upload, sending nothing more', async () => {
    const controller = new AbortController();
    const blob = new FakeBlob((call, n) => {
      if (n === 2) controller.abort('SIGINT');
      return n >= 2 ? 'hang' : undefined;
    });
    const error = await failure(upload(blob, randomBytes(8192), { concurrency: 1, signal: controller.signal }));
    expect(error).toBeInstanceOf(InterruptedError);
    expect(blob.calls).toHaveLength(2);
  });

  it('cancels the blocks in flight when one fails for good', async () => {
    const blob = new FakeBlob((call, n) => (n === 1 ? new BlobRequestError('bad', { status: 400, code: 'InvalidHeaderValue' }) : 'hang'));
    const error = await failure(upload(blob, randomBytes(8192), { concurrency: 3 }));
    expect(error.message).toBe('The storage refused the DAG bundle upload: HTTP 400 InvalidHeaderValue: bad.');
    expect(blob.calls.length).toBeLessThanOrEqual(3);
  });

  it('refuses a URL that is not one', async () => {
    const error = await failure(uploadDagBundle({ sasUrl: 'not a url', data: randomBytes(10), target: new FakeBlob() }));
    expect(error).toBeInstanceOf(UserError);
  });
});
