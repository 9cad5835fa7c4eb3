/**
 * The images this machine pushed, per repository: the local image's id and the digest of the manifest the registry
 * stored for it (and, once read, that manifest's text), kept in a small JSON file in astro's cache. A deploy whose
 * build makes an image already pushed to the Deployment's repository only puts that manifest under the new tag
 * (registry.ts tagPushedManifest) instead of having the engine push it again. Never a credential. A wrong or stale
 * entry costs a request: the registry checks the manifest's layers, and the manifest is checked against the image.
 */
import * as z from 'zod';
import { readJsonFile, rememberInFile } from '../util/json-file.js';
import { SHA256_DIGEST, type StoredManifest } from './registry.js';

/** Images remembered at most; beyond it the file starts again (a manifest is a few KB). */
const MAX_REMEMBERED = 20;

const pushedSchema = z.object({
  digest: z.string().regex(SHA256_DIGEST),
  manifest: z.object({ mediaType: z.string(), body: z.string() }).optional(),
});
export type PushedManifest = z.infer<typeof pushedSchema>;

const pushes = z.record(z.string(), pushedSchema);

export interface RememberedPushes {
  /**
   * What was pushed of image `imageId` to `repository` (with its registry host), if remembered. Never fails. Only an
   * image id (`sha256:…`) is a key, never a name, which moves: for anything else nothing is found or remembered.
   */
  find(repository: string, imageId: string): Promise<PushedManifest | undefined>;
  /** Remembers that `imageId` is `digest` in `repository`, with the manifest's text when known. Never fails. */
  remember(repository: string, imageId: string, digest: string, manifest?: StoredManifest): Promise<void>;
}

export function rememberedPushes(file: string): RememberedPushes {
  const key = (repository: string, imageId: string) => `${repository}@${imageId}`;
  return {
    find: async (repository, imageId) => (SHA256_DIGEST.test(imageId) ? (await readJsonFile(file, pushes))?.[key(repository, imageId)] : undefined),
    remember: async (repository, imageId, digest, manifest) => {
      if (!SHA256_DIGEST.test(imageId)) return;
      await rememberInFile(file, pushes, key(repository, imageId), manifest ? { digest, manifest } : { digest }, {
        max: MAX_REMEMBERED,
        // Remembered again after an engine push (no manifest text): the text already kept stays.
        same: (before, now) => before.digest === now.digest && (now.manifest === undefined || before.manifest?.body === now.manifest.body),
      });
    },
  };
}
