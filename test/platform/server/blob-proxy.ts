/**
 * The blob endpoint clients see. It forwards every request to Azurite unchanged (Azurite does the SAS checks), and
 * makes up for what Azurite lacks: after a committed upload (Put Blob, Put Block List → 201) it takes a snapshot and
 * returns its time as `x-ms-version-id`, like a versioned storage account. Commits to one blob are serialised so a
 * snapshot always captures the upload it is reported for. Also the place for injected faults.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Platform } from '../platform.js';
import type { RequestLog, RequestLogEntry } from './http.js';

function azureError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-ms-error-code': code,
    'x-ms-request-id': crypto.randomUUID(),
  });
  res.end(body);
}

export function createBlobProxy(platform: Platform, requests: RequestLog): Server {
  const locks = new Map<string, Promise<unknown>>();
  const lastSnapshotAt = new Map<string, number>();

  /** Runs `task` after every earlier task for the same blob has settled. */
  const serialised = <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = locks.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(task);
    locks.set(key, next);
    const unlock = () => {
      if (locks.get(key) === next) locks.delete(key);
    };
    // Not next.finally(): its copy of a failure would be a second, unhandled rejection (the caller handles `next`).
    next.then(unlock, unlock);
    return next;
  };

  /**
   * Sends the client's request on to Azurite. A client that goes away before its whole request arrived (a connection
   * reset half-way) takes the request to Azurite with it, as a cut request is dropped by Azure Storage: otherwise
   * Azurite waits for the rest of the body until its own request timeout (5 minutes), and a commit holds its blob's
   * lock all that time, so every later upload of that blob waits behind it.
   */
  const forward = (req: IncomingMessage, url: URL): Promise<{ status: number; headers: IncomingMessage['headers']; upstream: IncomingMessage }> =>
    new Promise((resolve, reject) => {
      const gone = () => new Error('the client closed the connection before its request was complete');
      // Waited for the lock of its blob while the client went away.
      if (req.destroyed && !req.complete) return reject(gone());
      const target = new URL(platform.blobStore().azuriteUrl);
      const headers = { ...req.headers, host: target.host };
      const upstreamReq = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: url.pathname + url.search, headers }, (upstream) =>
        resolve({ status: upstream.statusCode ?? 502, headers: upstream.headers, upstream }),
      );
      upstreamReq.on('error', reject);
      req.on('close', () => {
        if (!req.complete) upstreamReq.destroy(gone());
      });
      req.pipe(upstreamReq);
    });

  const snapshotAfterCommit = async (container: string, blob: string, operation: string): Promise<string> => {
    const key = `${container}/${blob}`;
    // Snapshot times have millisecond resolution; two in the same millisecond would collide.
    const wait = (lastSnapshotAt.get(key) ?? 0) + 2 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const versionId = await platform.blobStore().snapshot(container, blob);
    lastSnapshotAt.set(key, Date.now());
    platform.state.update((s) => {
      const versions = (s.blobVersions[key] ??= []);
      versions.push({ versionId, createdAt: platform.isoNow(), operation });
      if (versions.length > 200) versions.splice(0, versions.length - 200);
    });
    return versionId;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL, log: RequestLogEntry) => {
    const fault = platform.faults.blob;
    if (fault.remaining > 0) {
      fault.remaining--;
      req.resume();
      azureError(res, fault.status, fault.status === 503 ? 'ServerBusy' : 'InternalError', 'Fault injected by the local platform.');
      return;
    }
    const comp = url.searchParams.get('comp');
    const isCommit =
      req.method === 'PUT' &&
      (comp === 'blocklist' || (comp === null && String(req.headers['x-ms-blob-type'] ?? '') === 'BlockBlob' && !req.headers['x-ms-copy-source']));
    const parts = url.pathname.split('/').filter(Boolean);
    if (!isCommit || parts.length < 3) {
      const { status, headers, upstream } = await forward(req, url);
      res.writeHead(status, headers);
      upstream.pipe(res);
      return;
    }
    const container = decodeURIComponent(parts[1]!);
    const blob = decodeURIComponent(parts.slice(2).join('/'));
    await serialised(`${container}/${blob}`, async () => {
      const { status, headers, upstream } = await forward(req, url);
      const chunks: Buffer[] = [];
      for await (const chunk of upstream) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const out = { ...headers };
      if (status === 201) {
        try {
          out['x-ms-version-id'] = await snapshotAfterCommit(container, blob, comp === 'blocklist' ? 'PutBlockList' : 'PutBlob');
        } catch (error) {
          log.error = `snapshot failed: ${(error as Error).message}`;
          azureError(res, 500, 'InternalError', 'The upload was stored but no version id could be created.');
          return;
        }
      }
      res.writeHead(status, out);
      res.end(body);
    });
  };

  return createServer((req, res) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const log = requests.start('blob-proxy', req, url);
    res.on('finish', () => {
      log.status = res.statusCode;
      log.durationMs = Math.round(performance.now() - started);
      log.finishedAtMs = performance.timeOrigin + performance.now();
    });
    handle(req, res, url, log).catch((error: unknown) => {
      log.error = (error as Error).message;
      if (res.headersSent) res.destroy();
      else azureError(res, 502, 'InternalError', `The local platform could not reach blob storage: ${(error as Error).message}`);
    });
  });
}
