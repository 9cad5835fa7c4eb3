/**
 * Uploads a DAG bundle to the blob SAS URL Astro hands out, and returns the blob version Astro finalizes with.
 *
 * Small payloads go as one Put Blob (what Astro's own storage expects for < 1 MiB); larger ones as parallel Put Block
 * requests and one Put Block List. Every request is retried on its own, so a failed block never re-sends the blocks
 * already staged. Block ids carry a random per-upload prefix: when another deploy commits the same blob first, Azure
 * drops our uncommitted blocks and answers InvalidBlockList, and we stage ours again and commit, a bounded number of
 * times, so the blob always holds one whole bundle, never a mix of two.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { BugError, UserError } from '../errors.js';
import { usingPreconnected } from '../util/preconnect.js';
import { AttemptTimeoutError, parseRetryAfter, retry, throwIfAborted } from '../util/retry.js';

export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_UPLOAD_CONCURRENCY = 4;

export interface UploadRetryPolicy {
  /** Tries per request, the first included. */
  maxAttempts: number;
  /** First back-off; doubles per retry, capped at maxDelayMs, with random jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A request that has not finished by then is abandoned and retried. */
  tryTimeoutMs: number;
  /** Full stage-and-commit rounds when a concurrent deploy's commit discarded our staged blocks. */
  maxCommitRounds: number;
}

export const DEFAULT_UPLOAD_RETRY: UploadRetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  tryTimeoutMs: 60_000,
  maxCommitRounds: 3,
};

export type BlobRequestKind = 'put-blob' | 'put-block' | 'put-block-list';

export type UploadEvent =
  | { type: 'start'; totalBytes: number; method: 'put-blob' | 'blocks'; blockCount: number }
  | { type: 'progress'; loadedBytes: number; totalBytes: number }
  | { type: 'retry'; request: BlobRequestKind; blockIndex?: number; attempt: number; delayMs: number; reason: string }
  /** A concurrent commit discarded our staged blocks; progress restarts from zero for this round. */
  | { type: 'restage'; round: number; reason: string }
  | { type: 'done'; versionId: string; totalBytes: number };

export interface BlobRequestOptions {
  signal: AbortSignal;
  /** Bytes of this request's body sent so far. */
  onBytes?: (loadedBytes: number) => void;
}

/** The three storage operations the upload needs; the real one sends them to the SAS URL as plain REST requests. */
export interface BlockBlobTarget {
  putBlob(data: Buffer, options: BlobRequestOptions): Promise<{ versionId?: string }>;
  stageBlock(blockId: string, data: Buffer, options: BlobRequestOptions): Promise<void>;
  /** Commits the ids as `Latest`, so a retried commit of already committed blocks still succeeds. */
  commitBlockList(blockIds: string[], options: BlobRequestOptions): Promise<{ versionId?: string }>;
}

/** A failed storage request, reduced to what decides retrying. */
export class BlobRequestError extends Error {
  constructor(
    message: string,
    readonly details: {
      /** HTTP status; undefined when no answer arrived (reset, refused, timeout). */
      status?: number;
      /** `x-ms-error-code`, or the socket error code. */
      code?: string;
      retryAfterMs?: number;
    },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BlobRequestError';
  }
}

export interface UploadDagBundleOptions {
  /** Full blob SAS URL, used as-is. */
  sasUrl: string;
  data: Buffer;
  /** Block size, and the size from which blocks are used instead of one Put Blob. */
  blockSize?: number;
  /** Blocks in flight at once. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (event: UploadEvent) => void;
  retry?: Partial<UploadRetryPolicy>;
  /** Storage port; direct SAS requests to sasUrl (createSasBlockBlobTarget) when omitted. */
  target?: BlockBlobTarget;
  /** Clock for telling an expired SAS from a refused one. */
  now?: () => Date;
}

export interface UploadResult {
  /** The blob version (`x-ms-version-id`) to send as dagTarballVersion on finalize. */
  versionId: string;
}

type Classification = 'retry' | 'auth' | 'conflict' | 'fatal';

function classify(error: BlobRequestError): Classification {
  const { status, code } = error.details;
  if (status === undefined) return 'retry';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  if (status === 403) return 'auth';
  if (status === 400 && code === 'InvalidBlockList') return 'conflict';
  return 'fatal';
}

class ConflictError extends Error {}

export async function uploadDagBundle(options: UploadDagBundleOptions): Promise<UploadResult> {
  const { data, onProgress } = options;
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
  const policy: UploadRetryPolicy = { ...DEFAULT_UPLOAD_RETRY, ...options.retry };
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new BugError(`Invalid block size ${blockSize}.`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new BugError(`Invalid upload concurrency ${concurrency}.`);
  const sasUrl = parseSasUrl(options.sasUrl);
  const signal = options.signal ?? new AbortController().signal;
  throwIfAborted(signal);

  const target = options.target ?? createSasBlockBlobTarget(options.sasUrl);
  const context: RequestContext = { policy, signal, onProgress, sasUrl, now: options.now ?? (() => new Date()) };

  let versionId: string | undefined;
  if (data.length < blockSize) {
    onProgress?.({ type: 'start', totalBytes: data.length, method: 'put-blob', blockCount: 1 });
    const progress = new ByteProgress(data.length, 1, onProgress);
    const answer = await withRetries(context, { request: 'put-blob' }, (attemptSignal) => {
      progress.set(0, 0);
      return target.putBlob(data, { signal: attemptSignal, onBytes: (n) => progress.set(0, n) });
    }).catch(failWith(context));
    versionId = answer.versionId;
  } else {
    versionId = await uploadInBlocks(target, context, data, blockSize, concurrency);
  }

  if (versionId === undefined || versionId === '') {
    throw new UserError('the storage did not return a version for the uploaded DAGs (no x-ms-version-id in its answer).', {
      nextStep: 'Astro needs that version to finalize the deploy. Run the deploy again; if it keeps happening, contact Astronomer Support.',
    });
  }
  onProgress?.({ type: 'done', versionId, totalBytes: data.length });
  return { versionId };
}

interface RequestContext {
  policy: UploadRetryPolicy;
  signal: AbortSignal;
  onProgress?: (event: UploadEvent) => void;
  sasUrl: URL;
  now: () => Date;
}

async function uploadInBlocks(
  target: BlockBlobTarget,
  context: RequestContext,
  data: Buffer,
  blockSize: number,
  concurrency: number,
): Promise<string | undefined> {
  const blockCount = Math.ceil(data.length / blockSize);
  const blockIds = newBlockIds(blockCount);
  const block = (i: number) => data.subarray(i * blockSize, Math.min(data.length, (i + 1) * blockSize));
  context.onProgress?.({ type: 'start', totalBytes: data.length, method: 'blocks', blockCount });

  for (let round = 1; ; round++) {
    const progress = new ByteProgress(data.length, blockCount, context.onProgress);
    try {
      await forEachParallel(blockCount, concurrency, context.signal, (i, signal) =>
        withRetries({ ...context, signal }, { request: 'put-block', blockIndex: i }, (attemptSignal) => {
          progress.set(i, 0);
          return target.stageBlock(blockIds[i]!, block(i), { signal: attemptSignal, onBytes: (n) => progress.set(i, n) });
        }),
      );
      const answer = await withRetries(context, { request: 'put-block-list' }, (attemptSignal) => target.commitBlockList(blockIds, { signal: attemptSignal }));
      return answer.versionId;
    } catch (error) {
      if (!(error instanceof ConflictError)) failWith(context)(error);
      if (round >= context.policy.maxCommitRounds) {
        throw new UserError(`Another upload to the same Deployment kept replacing the DAG bundle; ${round} attempts to commit ours were discarded.`, {
          nextStep: 'Wait until the other deploy to this Deployment has finished, then run the deploy again.',
          cause: error,
        });
      }
      context.onProgress?.({ type: 'restage', round: round + 1, reason: 'another upload committed first and discarded the staged blocks' });
    }
  }
}

/**
 * 16 raw bytes, the shape of the Go SDK's block ids that Astronomer's CLI sends (Azure refuses a block whose id length
 * differs from the blob's other uncommitted blocks): 12 random bytes unique to this upload, then the block number.
 */
function newBlockIds(count: number): string[] {
  const prefix = randomBytes(12);
  return Array.from({ length: count }, (_, i) => {
    const id = Buffer.alloc(16);
    prefix.copy(id, 0);
    id.writeUInt32BE(i, 12);
    return id.toString('base64');
  });
}

class ByteProgress {
  private readonly perBlock: number[];
  private sum = 0;
  private last = -1;

  constructor(
    private readonly totalBytes: number,
    blocks: number,
    private readonly onProgress: ((event: UploadEvent) => void) | undefined,
  ) {
    this.perBlock = new Array<number>(blocks).fill(0);
  }

  set(index: number, loaded: number): void {
    this.sum += loaded - (this.perBlock[index] ?? 0);
    this.perBlock[index] = loaded;
    if (this.sum === this.last) return;
    this.last = this.sum;
    this.onProgress?.({ type: 'progress', loadedBytes: this.sum, totalBytes: this.totalBytes });
  }
}

/** Runs `task` for 0..count-1 with at most `concurrency` in flight; the first failure cancels the rest. */
async function forEachParallel(
  count: number,
  concurrency: number,
  signal: AbortSignal,
  task: (index: number, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const failed = new AbortController();
  const combined = AbortSignal.any([signal, failed.signal]);
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < count && firstError === undefined && !combined.aborted) {
      const index = next++;
      try {
        await task(index, combined);
      } catch (error) {
        if (firstError === undefined) firstError = error;
        failed.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (firstError !== undefined) throw firstError;
  throwIfAborted(signal);
}

/** One request with its own retries; throws ConflictError for InvalidBlockList and the last error otherwise. */
async function withRetries<T>(
  context: Pick<RequestContext, 'policy' | 'signal' | 'onProgress'>,
  what: { request: BlobRequestKind; blockIndex?: number },
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { policy } = context;
  try {
    return await retry((_n, signal) => attempt(signal), {
      policy: { attempts: policy.maxAttempts, baseDelayMs: policy.baseDelayMs, maxDelayMs: policy.maxDelayMs, attemptTimeoutMs: policy.tryTimeoutMs },
      signal: context.signal,
      classify: (error) => {
        const blobError = asBlobRequestError(error);
        return blobError && classify(blobError) === 'retry'
          ? { retry: true, reason: describe(blobError), retryAfterMs: blobError.details.retryAfterMs }
          : { retry: false };
      },
      onRetry: ({ attempt: next, delayMs, reason }) => context.onProgress?.({ type: 'retry', ...what, attempt: next, delayMs, reason }),
    });
  } catch (raw) {
    const error = asBlobRequestError(raw) ?? raw;
    if (error instanceof BlobRequestError && classify(error) === 'conflict') throw new ConflictError(error.message, { cause: error });
    throw error;
  }
}

/** A per-try timeout is a failed request like a reset: no answer arrived. */
function asBlobRequestError(error: unknown): BlobRequestError | undefined {
  if (error instanceof BlobRequestError) return error;
  if (error instanceof AttemptTimeoutError) return new BlobRequestError(error.message, { code: 'ETIMEDOUT' }, { cause: error.cause });
  return undefined;
}

function describe(error: BlobRequestError): string {
  const { status, code } = error.details;
  const head = status === undefined ? (code ?? 'network error') : code === undefined ? `HTTP ${status}` : `HTTP ${status} ${code}`;
  const firstLine = error.message.split('\n')[0]?.trim().replace(/\.$/, '');
  return firstLine && firstLine !== code ? `${head}: ${firstLine}` : head;
}

/** Turns the final failure of a request into the message the user sees. */
function failWith(context: RequestContext): (error: unknown) => never {
  return (error: unknown) => {
    throwIfAborted(context.signal);
    if (!(error instanceof BlobRequestError)) throw error;
    const kind = classify(error);
    if (kind === 'auth') {
      const expiry = sasExpiry(context.sasUrl);
      const expired = expiry !== undefined && expiry.getTime() <= context.now().getTime();
      throw new UserError(
        expired
          ? `The DAG upload URL expired (at ${expiry.toISOString().replace(/\.\d{3}Z$/, 'Z')}) before the upload finished.`
          : `The storage refused the DAG upload URL (${describe(error)}).`,
        { nextStep: 'Run the deploy again: each deploy asks Astro for a fresh upload URL.', cause: error },
      );
    }
    if (kind === 'retry') {
      throw new UserError(`Uploading the DAG bundle failed after ${context.policy.maxAttempts} attempts: ${describe(error)}.`, {
        nextStep: 'Check the network connection to Azure Blob Storage and run the deploy again.',
        cause: error,
      });
    }
    throw new UserError(`The storage refused the DAG bundle upload: ${describe(error)}.`, {
      nextStep: 'Run the deploy again; if it keeps happening, contact Astronomer Support with this message.',
      cause: error,
    });
  };
}

function parseSasUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError('Astro returned a DAG upload URL that is not a valid URL.', {
      nextStep: 'Run the deploy again; if it keeps happening, contact Astronomer Support.',
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UserError(`Astro returned a DAG upload URL with the unsupported scheme ${url.protocol}`, {
      nextStep: 'Run the deploy again; if it keeps happening, contact Astronomer Support.',
    });
  }
  return url;
}

function sasExpiry(url: URL): Date | undefined {
  const se = url.searchParams.get('se');
  if (se === null) return undefined;
  const date = new Date(se);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Blob REST version sent with every request: it has blob versioning (x-ms-version-id) and is one Azurite and Azure
 * both accept.
 */
const BLOB_API_VERSION = '2023-11-03';

/**
 * The three Blob REST calls as plain HTTP requests to the SAS URL. The Azure SDK does the same through about 300
 * modules that take 130-180 ms to load on a busy machine, longer than a small bundle's upload itself; retries and
 * timeouts are ours either way (uploadDagBundle). One keep-alive agent per upload, so blocks reuse connections, and
 * the first may use one opened before the upload URL was known (util/preconnect.ts).
 */
export function createSasBlockBlobTarget(sasUrl: string): BlockBlobTarget {
  const base = new URL(sasUrl);
  const secure = base.protocol === 'https:';
  // The first request may go over a connection opened before the URL was known (preconnect, by the deploy).
  const agent = secure ? usingPreconnected(new https.Agent({ keepAlive: true }), 'https:') : usingPreconnected(new http.Agent({ keepAlive: true }), 'http:');
  const withQuery = (extra: Record<string, string>) => {
    const url = new URL(base);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    return url;
  };
  const put = (url: URL, body: Buffer, headers: Record<string, string>, { signal, onBytes }: BlobRequestOptions) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = (secure ? https : http).request(
        url,
        { method: 'PUT', agent, signal, headers: { 'x-ms-version': BLOB_API_VERSION, 'content-length': String(body.length), ...headers } },
        (response) => {
          answered = true;
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => reject(networkFailure(error)));
          response.on('end', () => {
            if (response.statusCode === 201) return resolve(response);
            reject(statusFailure(response, Buffer.concat(chunks).toString('utf8')));
          });
          // A connection cut in the middle of the answer may end the stream with neither 'end' nor 'error'.
          response.on('close', () => {
            if (!response.complete) reject(connectionCut());
          });
        },
      );
      let answered = false;
      request.on('error', (error) => reject(signal.aborted ? error : networkFailure(error)));
      request.on('close', () => {
        if (!answered) reject(signal.aborted ? signal.reason : connectionCut());
      });
      request.end(body, () => onBytes?.(body.length));
    });
  const versionOf = (response: http.IncomingMessage) => {
    const header = response.headers['x-ms-version-id'];
    return { versionId: typeof header === 'string' ? header : undefined };
  };
  return {
    async putBlob(data, options) {
      return versionOf(await put(base, data, { 'x-ms-blob-type': 'BlockBlob', 'content-type': 'application/octet-stream' }, options));
    },
    async stageBlock(blockId, data, options) {
      await put(withQuery({ comp: 'block', blockid: blockId }), data, {}, options);
    },
    async commitBlockList(blockIds, options) {
      const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${blockIds.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
      return versionOf(await put(withQuery({ comp: 'blocklist' }), Buffer.from(xml, 'utf8'), { 'content-type': 'application/xml' }, options));
    },
  };
}

/** The connection closed before a whole answer arrived: a reset, retried like one. */
function connectionCut(): BlobRequestError {
  return new BlobRequestError('the connection closed before the answer was complete', { code: 'ECONNRESET' });
}

/** No answer arrived: the socket error code decides retrying. The URL (with the SAS signature) is never kept. */
function networkFailure(error: Error): BlobRequestError {
  const code = (error as NodeJS.ErrnoException).code;
  return new BlobRequestError(error.message, { code: typeof code === 'string' ? code : undefined });
}

function statusFailure(response: http.IncomingMessage, body: string): BlobRequestError {
  const header = response.headers['x-ms-error-code'];
  const code = typeof header === 'string' ? header : /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1]?.split('\n')[0]?.trim();
  const retryAfter = response.headers['retry-after'];
  return new BlobRequestError(message || `HTTP ${response.statusCode}`, {
    status: response.statusCode,
    code,
    retryAfterMs: parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined),
  });
}
