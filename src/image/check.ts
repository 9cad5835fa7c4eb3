/**
 * `--image-name`: deploy an image the user built themselves. Nothing is built, so the image has to prove it can run
 * before anything is pushed: it must exist locally and be linux/amd64. Its labels are returned as they are: Astro
 * and Software each have their own rule for the Runtime version label, applied by their deploy.
 */
import { UserError } from '../errors.js';
import type { ImageEngine } from './engine.js';
import { RUNTIME_VERSION_LABEL } from './runtime/rules.js';

export interface PrebuiltImage {
  ref: string;
  imageId: string;
  /** The image's `io.astronomer.docker.runtime.version` label, when it has one. */
  runtimeVersion?: string;
  labels: Record<string, string>;
}

const DEPLOY_OS = 'linux';
const DEPLOY_ARCHITECTURE = 'amd64';

/** Checks a local image for `astro deploy --image-name <ref>`: present, and built for linux/amd64. */
export async function inspectPrebuiltImage(engine: ImageEngine, ref: string): Promise<PrebuiltImage> {
  const image = await engine.inspect(ref);
  if (!image) {
    throw new UserError(`The image '${ref}' was not found in the local Docker engine.`, {
      nextStep: `Build it first (docker build --platform=linux/amd64 -t ${ref} .), or check the name with docker images.`,
    });
  }
  if (image.os !== DEPLOY_OS || image.architecture !== DEPLOY_ARCHITECTURE) {
    const platform = [image.os || 'unknown', image.architecture || 'unknown', image.variant].filter(Boolean).join('/');
    throw new UserError(`The image '${ref}' is built for ${platform}, but Astronomer Deployments run linux/amd64 images only.`, {
      nextStep: `Rebuild it for linux/amd64 and deploy again: docker build --platform=linux/amd64 -t ${ref} .`,
    });
  }
  const label = image.labels[RUNTIME_VERSION_LABEL];
  return { ref, imageId: image.id, labels: image.labels, ...(label ? { runtimeVersion: label } : {}) };
}
