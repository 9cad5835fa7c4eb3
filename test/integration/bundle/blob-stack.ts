/**
 * Real Azurite behind a small proxy, for the DAG upload tests and the bundle bench.
 *
 * Azurite does not version blobs, while Astro's storage answers every committed upload with `x-ms-version-id`. The
 * proxy forwards each request to Azurite and, after a 201 Put Blob or Put Block List, takes a snapshot and returns its
 * time as the version id (commit and snapshot run under one lock per blob, so the snapshot is that commit's content).
 * It records every request and can inject faults before or after forwarding.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RecordedRequest {
  method: string;
  /** `block`, `blocklist`, … or undefined for Put Blob / Get Blob. */
  comp?: string;
  blockId?: string;
  blob: string;
  bodyBytes: number;
  /** Status sent to the client; undefined when the connection was reset. */
  status?: number;
  injected: boolean;
}

export type Fault =
  | { kind: 'status'; status: number; code: string; retryAfterSeconds?: number }
  /** Drop the connection without forwarding. */
  | { kind: 'reset-before' }
  /** Forward (the storage applies the request), then drop the connection without answering. */
  | { kind: 'reset-after' }
  /** Wait, then forward normally. */
  | { kind: 'hold'; until: Promise<unknown> };

export type FaultHook = (request: Omit<RecordedRequest, 'status' | 'injected'>, index: number) => Fault | undefined;

export interface BlobStack {
  /** Base URL of the proxy (what SAS URLs point at). */
  proxyUrl: string;
  azuriteUrl: string;
  requests: RecordedRequest[];
  /** Set per test; consulted for every request before it is forwarded. */
  fault?: FaultHook;
  createContainer(name: string): Promise<void>;
  /** A blob SAS URL through the proxy; write-only (create + write) unless told otherwise. */
  sasUrl(container: string, blob: string, options?: { expiresInSeconds?: number; permissions?: string }): string;
  download(container: string, blob: string, versionId?: string): Promise<Buffer>;
  stop(): Promise<void>;
}

const VERSIONED_COMMIT = (method: string, comp: string | undefined) => method === 'PUT' && (comp === undefined || comp === 'blocklist');

export async function startBlobStack(): Promise<BlobStack> {
  const location = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-azurite-'));
  const { child, port } = await startAzurite(location);
  const azuriteUrl = `http://127.0.0.1:${port}/${DEV_ACCOUNT}`;
  const credential = new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY);
  const service = new BlobServiceClient(azuriteUrl, credential);
  const blobLocks = new Map<string, Promise<unknown>>();

  const stack: BlobStack = {
    proxyUrl: '',
    azuriteUrl,
    requests: [],
    async createContainer(name) {
      await service.getContainerClient(name).createIfNotExists();
    },
    sasUrl(container, blob, options = {}) {
      const expiresOn = new Date(Date.now() + (options.expiresInSeconds ?? 15 * 60) * 1000);
      const sas = generateBlobSASQueryParameters(
        { containerName: container, blobName: blob, permissions: BlobSASPermissions.parse(options.permissions ?? 'cw'), expiresOn },
        credential,
      );
      return `${stack.proxyUrl}/${DEV_ACCOUNT}/${container}/${blob}?${sas.toString()}`;
    },
    async download(container, blob, versionId) {
      const client = service.getContainerClient(container).getBlobClient(blob);
      return (versionId === undefined ? client : client.withSnapshot(versionId)).downloadToBuffer();
    },
    async stop() {
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      });
      await stopChild(child);
      await fs.rm(location, { recursive: true, force: true });
    },
  };

  const proxy = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy error: ${error instanceof Error ? error.message : String(error)}`);
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://proxy');
    const parts = url.pathname.split('/').filter(Boolean);
    const seen = {
      method: req.method ?? 'GET',
      comp: url.searchParams.get('comp') ?? undefined,
      blockId: url.searchParams.get('blockid') ?? undefined,
      blob: parts.slice(1).join('/'),
      bodyBytes: body.length,
    };
    const record: RecordedRequest = { ...seen, injected: false };
    const index = stack.requests.push(record) - 1;
    const fault = stack.fault?.(seen, index);

    if (fault?.kind === 'status') {
      record.injected = true;
      record.status = fault.status;
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/xml', 'x-ms-error-code': fault.code };
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      res.writeHead(fault.status, headers);
      res.end(`<?xml version="1.0" encoding="utf-8"?><Error><Code>${fault.code}</Code><Message>Injected by the test proxy.</Message></Error>`);
      return;
    }
    if (fault?.kind === 'reset-before') {
      record.injected = true;
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'hold') await fault.until;

    const isCommit = VERSIONED_COMMIT(seen.method, seen.comp) && parts.length >= 3;
    const answer = isCommit
      ? await withLock(blobLocks, seen.blob, async () => {
          const forwarded = await forward(req, body, port);
          if (forwarded.status === 201) {
            const container = parts[1]!;
            const blobName = parts.slice(2).join('/');
            const snapshot = await service.getContainerClient(container).getBlobClient(blobName).createSnapshot();
            forwarded.headers['x-ms-version-id'] = snapshot.snapshot;
          }
          return forwarded;
        })
      : await forward(req, body, port);

    if (fault?.kind === 'reset-after') {
      record.injected = true;
      req.socket.destroy();
      return;
    }
    record.status = answer.status;
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  stack.proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return stack;
}

async function withLock<T>(locks: Map<string, Promise<unknown>>, key: string, run: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(run);
  locks.set(key, current);
  try {
    return await current;
  } finally {
    if (locks.get(key) === current) locks.delete(key);
  }
}

interface Forwarded {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

function forward(req: http.IncomingMessage, body: Buffer, port: number): Promise<Forwarded> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: `127.0.0.1:${port}`, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
        resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    upstream.on('error', reject);
    upstream.end(body);
  });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function startAzurite(location: string): Promise<{ child: ChildProcess; port: number }> {
  const bin = path.resolve('node_modules/.bin/azurite-blob');
  const child = spawn(bin, ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location, '--disableTelemetry', '--skipApiVersionCheck', '--silent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited with ${code} before listening:\n${output}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, port };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
