/**
 * Where a Deployment's DAG bundles went last time (util/remembered-origins.ts): the upload URL itself arrives only
 * with the deploy it belongs to; a connection to the remembered origin, opened while that deploy is being created,
 * saves the upload its handshakes.
 */
import path from 'node:path';
import { preconnectRemembered, rememberOrigin } from '../util/remembered-origins.js';

function originsFile(cacheDir: string): string {
  return path.join(cacheDir, 'upload-origins.json');
}

/** Opens a connection to where this Deployment's last bundle went, if astro remembers it, and returns that origin. */
export function preconnectUpload(cacheDir: string, deploymentId: string): Promise<string | undefined> {
  return preconnectRemembered(originsFile(cacheDir), deploymentId);
}

/** Remembers where this Deployment's bundle went, when it changed (`remembered`: what preconnectUpload found). */
export function rememberUploadOrigin(cacheDir: string, deploymentId: string, uploadUrl: string, remembered?: string): Promise<void> {
  return rememberOrigin(originsFile(cacheDir), deploymentId, uploadUrl, remembered);
}
