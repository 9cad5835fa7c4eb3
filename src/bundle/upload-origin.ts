/**
 * Where a Deployment's DAG bundles went last time: the origin (scheme, host and port, never the path or the SAS
 * token) of its upload URL, kept in astro's cache. The URL itself arrives only with the deploy it belongs to; a
 * connection to the remembered origin, opened while that deploy is being created, saves the upload its handshakes
 * (a TCP round trip, and TLS's for https). A wrong guess costs one unused connection.
 */
import path from 'node:path';
import * as z from 'zod';
import { readJsonFile, writeJsonFileAtomic } from '../util/json-file.js';
import { connectionOrigin, preconnect } from '../util/preconnect.js';

/** Deployments remembered at most; beyond it the file starts again (it is a guess, not a record). */
const MAX_REMEMBERED = 200;

const origins = z.record(z.string(), z.string().regex(/^https?:\/\/[^/?#\s]+$/));

function originsFile(cacheDir: string): string {
  return path.join(cacheDir, 'upload-origins.json');
}

/** Opens a connection to where this Deployment's last bundle went, if astro remembers it, and returns that origin. */
export async function preconnectUpload(cacheDir: string, deploymentId: string): Promise<string | undefined> {
  const known = await readJsonFile(originsFile(cacheDir), origins);
  const origin = known?.[deploymentId];
  if (origin !== undefined) preconnect(origin);
  return origin;
}

/**
 * Remembers where this Deployment's bundle went, when it changed. `remembered`: what preconnectUpload found for it
 * this run (the file is not read again when the bundle went there). Never fails: it is only a speed-up.
 */
export async function rememberUploadOrigin(cacheDir: string, deploymentId: string, uploadUrl: string, remembered?: string): Promise<void> {
  const origin = connectionOrigin(uploadUrl);
  if (origin === undefined || origin === remembered) return;
  const file = originsFile(cacheDir);
  const known = (await readJsonFile(file, origins)) ?? {};
  if (known[deploymentId] === origin) return;
  const next = Object.keys(known).length >= MAX_REMEMBERED ? {} : known;
  next[deploymentId] = origin;
  await writeJsonFileAtomic(file, next).catch(() => undefined);
}
