/**
 * The two moments a deploy consults the Runtime rules:
 *
 * - before any build or push (`preflightRuntimeImage`): every Runtime FROM in the Dockerfile must be a valid tag,
 *   the deployed stage must not be pinned to a non-amd64 platform, a pinned version must not be yanked and must
 *   suit the Deployment, and a floating tag is resolved through the updates feed;
 * - after the build (`checkBuiltRuntimeImage`): the image label is the authority on the Runtime version, so the
 *   non-Runtime refusal and the Deployment checks run again on it, and the advice notices are produced.
 */
import { UserError } from '../../errors.js';
import type { DockerfileStage, ParsedDockerfile } from './dockerfile.js';
import { latestRuntimeVersion, resolveFloatingVersion, type RuntimeFeed } from './feed.js';
import { formatImageReference } from './reference.js';
import {
  checkDeploymentRuntimeVersion,
  checkNotYanked,
  checkStagePlatform,
  floatingTagNotice,
  notLatestNotice,
  parseSkippedNotice,
  requireRuntimeLabel,
  type RuntimeLabelSource,
  type RuntimeNotice,
} from './rules.js';
import { classifyBaseImage, formatRuntimeTag, RuntimeImageError, type BaseImageClass } from './tag.js';
import { compareRuntimeVersions } from './version.js';

export interface DeploymentRuntime {
  /** The Deployment's current Runtime version; empty or undefined when it has none yet. */
  runtimeVersion?: string;
  /** `deployment-options.runtimeReleases[].version`. */
  supportedVersions: readonly string[];
}

export interface RuntimePreflightOptions {
  dockerfile: ParsedDockerfile;
  /** The updates feed, when it could be loaded. */
  feed?: RuntimeFeed;
  /** When given, a version known before the build is checked against the Deployment already. */
  deployment?: DeploymentRuntime;
}

export interface RuntimePreflight {
  /** The stage the deployed image is built on. */
  stage: DockerfileStage;
  /** The first stage's image as written: what the non-Runtime warning names, as Astronomer's CLI does. */
  fromImage: string;
  image: BaseImageClass | { kind: 'scratch' };
  /** The Runtime version the build should produce, when the tag pins it (or the feed resolved a floating tag). */
  expectedVersion?: string;
  notices: RuntimeNotice[];
}

function locate(error: RuntimeImageError, dockerfile: ParsedDockerfile, stage: DockerfileStage): RuntimeImageError {
  const where = `${dockerfile.path}:${stage.line}`;
  if (error.correctedImage === undefined) return error.at(where, undefined);
  const nextStep =
    stage.imageAsWritten === stage.image
      ? `Change line ${stage.line} of ${dockerfile.path} to: FROM ${stage.platformAsWritten ? `--platform=${stage.platformAsWritten} ` : ''}${error.correctedImage}${stage.name ? ` AS ${stage.name}` : ''}`
      : `Line ${stage.line} of ${dockerfile.path} reads FROM ${stage.imageAsWritten}, which expands to ${stage.image}; change it (or the ARG values) so that it names ${error.correctedImage}.`;
  return error.at(where, nextStep);
}

function classifyStage(stage: DockerfileStage, dockerfile: ParsedDockerfile, feed: RuntimeFeed | undefined): BaseImageClass | undefined {
  if (stage.reference === undefined) return undefined;
  try {
    return classifyBaseImage(stage.reference, feed === undefined ? {} : { feed });
  } catch (error) {
    if (error instanceof RuntimeImageError) throw locate(error, dockerfile, stage);
    throw error;
  }
}

/** Checks the Dockerfile's Runtime images before anything is built. Throws a UserError for anything that must stop the deploy. */
export function preflightRuntimeImage(options: RuntimePreflightOptions): RuntimePreflight {
  const { dockerfile, feed } = options;
  const notices: RuntimeNotice[] = [];

  // Every Runtime FROM is checked, so a wrong tag in a builder stage is caught too.
  const classes = new Map<number, BaseImageClass | undefined>();
  for (const stage of dockerfile.stages) classes.set(stage.index, classifyStage(stage, dockerfile, feed));

  const stage = dockerfile.finalBase;
  checkStagePlatform(stage, dockerfile.path);
  const result: RuntimePreflight = { stage, fromImage: dockerfile.base.imageAsWritten, image: { kind: 'scratch' }, notices };
  const image = classes.get(stage.index);
  if (image === undefined) {
    notices.push({
      code: 'not-runtime-repository',
      message: `The deployed image is built FROM ${stage.scratch ? 'scratch' : `'${stage.image}'`}, which is not an Astro Runtime image; astro will check the built image's Runtime label before pushing.`,
    });
    return result;
  }
  result.image = image;
  if (image.kind === 'not-runtime') {
    notices.push({
      code: 'not-runtime-repository',
      message: `'${image.reference.name}' is not an Astro Runtime repository; astro will check the built image's Runtime label before pushing.`,
    });
    return result;
  }

  const tag = image.tag;
  if (tag === undefined) {
    notices.push({ code: 'digest-only', message: `'${image.reference.raw}' is pinned by digest; its Runtime version will be read from the built image.` });
    return result;
  }

  if (tag.floating) {
    // What a floating tag builds depends on the local image, so its resolution is advice and the label decides later.
    if (feed === undefined) {
      notices.push({
        code: 'floating-tag',
        message: `'${image.reference.raw}' is a floating tag that follows the latest ${tag.version} patch. For production deployments, pin a specific patch version for reproducibility (for example ${tag.version}-<patch>).`,
      });
      return result;
    }
    const resolved = resolveFloatingVersion(feed, tag.version);
    if (resolved === undefined) {
      throw new UserError(`no runtime version found matching '${tag.version}'`, {
        nextStep: `Check line ${stage.line} of ${dockerfile.path}: ${latestRuntimeVersion(feed, { generation: 'airflow3' }) ?? 'a released version'} is the latest Airflow 3 Runtime.`,
      });
    }
    const pinnedImage = formatImageReference({ name: image.repository, tag: formatRuntimeTag({ ...tag, version: resolved, floating: false }) });
    notices.push(floatingTagNotice(image.reference.raw, pinnedImage, resolved));
    result.expectedVersion = resolved;
    return result;
  }

  result.expectedVersion = tag.version;
  if (options.deployment !== undefined) {
    checkDeploymentRuntimeVersion({
      imageVersion: tag.version,
      deploymentVersion: options.deployment.runtimeVersion ?? '',
      supportedVersions: options.deployment.supportedVersions,
    });
  }
  checkNotYanked(feed, tag.version);
  return result;
}

export interface BuiltImageCheckOptions {
  /** The `io.astronomer.docker.runtime.version` label of the built (or `--image-name`) image. */
  label: string | undefined;
  /** What the non-Runtime warning should name: the Dockerfile's FROM image, or the `--image-name` image. */
  source: RuntimeLabelSource;
  deployment?: DeploymentRuntime;
  feed?: RuntimeFeed;
  /** From {@link preflightRuntimeImage}; a different label gets a notice. */
  expectedVersion?: string;
}

export interface BuiltImageCheck {
  version: string;
  /** The parse test cannot run on Runtime older than 4.1.0. */
  parseSkipped: boolean;
  notices: RuntimeNotice[];
}

/** Checks the built image's Runtime label against the Deployment. Throws a UserError for anything that must stop the deploy. */
export function checkBuiltRuntimeImage(options: BuiltImageCheckOptions): BuiltImageCheck {
  const version = requireRuntimeLabel(options.label, options.source);
  if (options.deployment !== undefined) {
    checkDeploymentRuntimeVersion({
      imageVersion: version,
      deploymentVersion: options.deployment.runtimeVersion ?? '',
      supportedVersions: options.deployment.supportedVersions,
    });
  }
  checkNotYanked(options.feed, version);

  const notices: RuntimeNotice[] = [];
  if (options.expectedVersion !== undefined && compareRuntimeVersions(options.expectedVersion, version) !== 0) {
    notices.push({
      code: 'label-differs-from-tag',
      message: `The Dockerfile names Astro Runtime ${options.expectedVersion}, but the built image is labelled ${version}; the local base image may be stale (docker pull it to refresh).`,
    });
  }
  const notLatest = notLatestNotice(version, options.feed ? latestRuntimeVersion(options.feed) : undefined);
  if (notLatest) notices.push(notLatest);
  const skipped = parseSkippedNotice(version);
  if (skipped) notices.push(skipped);
  return { version, parseSkipped: skipped !== undefined, notices };
}
