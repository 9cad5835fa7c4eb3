/**
 * `--image-name`: deploy an image the user built themselves. Nothing is built, so the image has to prove it can run
 * on Astro before anything is pushed: it must exist locally, be linux/amd64, and carry the Astro Runtime version
 * label (which the Runtime rules then check against the Deployment).
 */
import { UsageError, UserError } from '../errors.js';
import type { ImageEngine } from './engine.js';
import { checkBuiltRuntimeImage, type DeploymentRuntime } from './runtime/preflight.js';
import type { RuntimeFeed } from './runtime/feed.js';
import { RUNTIME_VERSION_LABEL, type RuntimeNotice } from './runtime/rules.js';

export interface PrebuiltImageCheckOptions {
  /** When given, the label's version is also checked against the Deployment (downgrade, unsupported, AF2 → 3). */
  deployment?: DeploymentRuntime;
  /** The updates feed, for the yanked check and the "not latest" notice. */
  feed?: RuntimeFeed;
}

export interface PrebuiltImage {
  ref: string;
  imageId: string;
  /** The image's `io.astronomer.docker.runtime.version` label. */
  runtimeVersion: string;
  labels: Record<string, string>;
  /** Advice for the CLI layer to print (newer Runtime available, parse skipped, ...). */
  notices: RuntimeNotice[];
  parseSkipped: boolean;
}

const DEPLOY_OS = 'linux';
const DEPLOY_ARCHITECTURE = 'amd64';

/** Checks a local image for `astro deploy --image-name <ref>` and returns its Runtime version. */
export async function checkPrebuiltImage(engine: ImageEngine, ref: string, options: PrebuiltImageCheckOptions = {}): Promise<PrebuiltImage> {
  const image = await engine.inspect(ref);
  if (!image) {
    throw new UserError(`The image '${ref}' was not found in the local Docker engine.`, {
      nextStep: `Build it first (docker build --platform=linux/amd64 -t ${ref} .), or check the name with docker images.`,
    });
  }
  if (image.os !== DEPLOY_OS || image.architecture !== DEPLOY_ARCHITECTURE) {
    const platform = [image.os || 'unknown', image.architecture || 'unknown', image.variant].filter(Boolean).join('/');
    throw new UserError(`The image '${ref}' is built for ${platform}, but Astro Deployments run linux/amd64 images only.`, {
      nextStep: `Rebuild it for linux/amd64 and deploy again: docker build --platform=linux/amd64 -t ${ref} .`,
    });
  }
  const check = checkBuiltRuntimeImage({
    label: image.labels[RUNTIME_VERSION_LABEL],
    source: { imageName: ref },
    ...(options.deployment ? { deployment: options.deployment } : {}),
    ...(options.feed ? { feed: options.feed } : {}),
  });
  return {
    ref,
    imageId: image.id,
    runtimeVersion: check.version,
    labels: image.labels,
    notices: check.notices,
    parseSkipped: check.parseSkipped,
  };
}

/** The flags Astronomer's CLI refuses next to `--image-name`, by their flag names. */
export const IMAGE_NAME_CONFLICTS = ['dags', 'dags-path', 'no-dags-base-dir', 'pytest', 'parse', 'build-secrets', 'dag-bundle-name'] as const;
export type ImageNameConflict = (typeof IMAGE_NAME_CONFLICTS)[number];

/**
 * Refuses flags that make no sense without a build, with the message users know. `given` lists the flags the user
 * passed (by flag name, without dashes).
 */
export function assertImageNameFlagsCompatible(given: Iterable<string>): void {
  const passed = new Set(given);
  for (const flag of IMAGE_NAME_CONFLICTS) {
    if (passed.has(flag)) throw new UsageError(`cannot use --${flag} with --image-name; --image-name implies an image-only deploy`);
  }
}
