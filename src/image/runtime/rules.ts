/**
 * The deploy-time Runtime rules (reference 7.4 and the messages of section 9) as pure functions. Refusals throw a
 * UserError whose message is the text users know from Astronomer's CLI; advice comes back as notices for the CLI
 * layer to print. Nothing here reads the environment, prints, or has a "force" switch: a refusal is a refusal.
 */
import { UserError } from '../../errors.js';
import type { DockerfileStage } from './dockerfile.js';
import { findRuntimeRelease, latestRuntimeVersion, STABLE_CHANNEL, type RuntimeFeed, type RuntimeRelease } from './feed.js';
import { AIRFLOW2_RUNTIME_REPOSITORY, AIRFLOW3_RUNTIME_REPOSITORY } from './tag.js';
import { airflowMajorForRuntimeVersion, compareRuntimeVersions, isValidRuntimeVersion, maxRuntimeVersion } from './version.js';

import { RUNTIME_VERSION_LABEL } from '../labels.js';

export { RUNTIME_VERSION_LABEL };
export const AIRFLOW_VERSION_LABEL = 'io.astronomer.docker.airflow.version';
/** Printed by Astronomer's CLI after a refused deploy; the CLI layer prints it after the error. */
export const CANCELING_DEPLOY_MESSAGE = 'Canceling deploy...';
/** Runtime versions older than this cannot run the DAG parse test. */
export const DAG_PARSE_MIN_RUNTIME_VERSION = '4.1.0';
/** A deployment must be at least on this version before it can move from Airflow 2 to Airflow 3. */
export const AIRFLOW3_UPGRADE_MIN_RUNTIME_VERSION = '12.0.0';
export const PARSE_SKIPPED_MESSAGE = '\nruntime image is earlier than 4.1.0, this deploy will skip DAG parse...';

export type RuntimeNoticeCode = 'not-latest' | 'floating-tag' | 'parse-skipped' | 'not-runtime-repository' | 'digest-only' | 'label-differs-from-tag';

/** Advice for the user; the CLI layer decides how to show it. */
export interface RuntimeNotice {
  code: RuntimeNoticeCode;
  message: string;
}

export class RuntimeRuleError extends UserError {
  override readonly kind: string;
  constructor(kind: string, message: string, nextStep?: string) {
    super(message, nextStep === undefined ? {} : { nextStep });
    this.kind = kind;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Is it Astro Runtime at all?

export function notRuntimeBaseImageMessage(fromImage: string): string {
  return `WARNING! The image in your Dockerfile '${fromImage}' is not based on Astro Runtime and is not supported. Change your Dockerfile with an image that pulls from 'quay.io/astronomer/astro-runtime' to proceed.`;
}

export function notRuntimeImageNameMessage(imageName: string): string {
  return `WARNING! The image '${imageName}' does not appear to be based on Astro Runtime (the '${RUNTIME_VERSION_LABEL}' label is missing). Ensure your image is built FROM quay.io/astronomer/astro-runtime to proceed.`;
}

const runtimeRegistriesHint = `Airflow 3 images: FROM ${AIRFLOW3_RUNTIME_REPOSITORY}:<version>; Airflow 2 images: FROM ${AIRFLOW2_RUNTIME_REPOSITORY}:<version>.`;

export type RuntimeLabelSource = { fromImage: string } | { imageName: string };

/**
 * The Runtime version carried by a built (or `--image-name`) image's label. An image without the label is not
 * based on Astro Runtime and the deploy is refused with the warning users know; nothing turns this off.
 */
export function requireRuntimeLabel(label: string | undefined, source: RuntimeLabelSource): string {
  const version = label?.trim() ?? '';
  const message = 'fromImage' in source ? notRuntimeBaseImageMessage(source.fromImage) : notRuntimeImageNameMessage(source.imageName);
  if (version === '') throw new RuntimeRuleError('not-runtime-image', message, runtimeRegistriesHint);
  if (!isValidRuntimeVersion(version)) {
    throw new RuntimeRuleError(
      'not-runtime-image',
      `The image's ${RUNTIME_VERSION_LABEL} label is '${version}', which is not an Astro Runtime version.`,
      runtimeRegistriesHint,
    );
  }
  return version;
}

// ---------------------------------------------------------------------------------------------------------------
// Deployment version checks (reference 7.4, steps 2 to 5)

export function downgradeMessage(deploymentVersion: string): string {
  return `Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to ${deploymentVersion} or higher in your Dockerfile`;
}

export function unsupportedMessage(supportedVersions: readonly string[]): string {
  return `Cannot deploy an unsupported Astro Runtime version. Modify your Astro Runtime version to a supported version in your Dockerfile\nSupported versions: ${supportedVersions.join(', ')}`;
}

export const AIRFLOW3_UPGRADE_MESSAGE = 'Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro Runtime 12.0.0 or higher';

export interface DeploymentRuntimeCheck {
  /** The Runtime version of the image about to be deployed (label, or a pinned Dockerfile tag before the build). */
  imageVersion: string;
  /** The Deployment's current `runtimeVersion`; empty or undefined for old Deployments without one. */
  deploymentVersion?: string;
  /** `deployment-options.runtimeReleases[].version`. */
  supportedVersions: readonly string[];
}

export function isDowngrade(imageVersion: string, deploymentVersion: string): boolean {
  return compareRuntimeVersions(imageVersion, deploymentVersion) < 0;
}

export function isSupportedVersion(imageVersion: string, supportedVersions: readonly string[]): boolean {
  return supportedVersions.some((supported) => compareRuntimeVersions(imageVersion, supported) === 0);
}

/** Moving a Deployment from Airflow 2 to Airflow 3 requires it to be on Runtime 12.0.0 or later first. */
export function isBlockedAirflow3Upgrade(imageVersion: string, deploymentVersion: string): boolean {
  return (
    airflowMajorForRuntimeVersion(deploymentVersion) === '2' &&
    airflowMajorForRuntimeVersion(imageVersion) === '3' &&
    compareRuntimeVersions(deploymentVersion, AIRFLOW3_UPGRADE_MIN_RUNTIME_VERSION) < 0
  );
}

/**
 * Refuses a version the Deployment cannot take, in the order Astronomer's CLI checks: downgrade, unsupported,
 * Airflow 2 -> 3 from below 12.0.0. A Deployment without a recorded version accepts anything.
 */
export function checkDeploymentRuntimeVersion(check: DeploymentRuntimeCheck): void {
  const { imageVersion, supportedVersions } = check;
  const deploymentVersion = check.deploymentVersion ?? '';
  if (deploymentVersion === '') return;
  if (isDowngrade(imageVersion, deploymentVersion)) {
    throw new RuntimeRuleError('runtime-downgrade', downgradeMessage(deploymentVersion));
  }
  if (!isSupportedVersion(imageVersion, supportedVersions)) {
    const newest = maxRuntimeVersion(supportedVersions);
    throw new RuntimeRuleError(
      'runtime-unsupported',
      unsupportedMessage(supportedVersions),
      newest === undefined ? undefined : `The newest version this Deployment supports is ${newest}.`,
    );
  }
  if (isBlockedAirflow3Upgrade(imageVersion, deploymentVersion)) {
    throw new RuntimeRuleError(
      'runtime-airflow3-upgrade',
      AIRFLOW3_UPGRADE_MESSAGE,
      `Deploy an Airflow 2 Runtime version of 12.0.0 or later first (this Deployment runs ${deploymentVersion}).`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Advice

export function notLatestMessage(version: string, latest: string): string {
  return `WARNING! You are currently running Astro Runtime Version ${version}\nConsider upgrading to the latest version, Astro Runtime ${latest}`;
}

/** The "not latest" warning, when the updates feed knows a newer stable version. */
export function notLatestNotice(version: string, latest: string | undefined): RuntimeNotice | undefined {
  if (latest === undefined || compareRuntimeVersions(version, latest) >= 0) return undefined;
  return { code: 'not-latest', message: notLatestMessage(version, latest) };
}

export function isParseSkipped(version: string): boolean {
  return compareRuntimeVersions(version, DAG_PARSE_MIN_RUNTIME_VERSION) < 0;
}

export function parseSkippedNotice(version: string): RuntimeNotice | undefined {
  return isParseSkipped(version) ? { code: 'parse-skipped', message: PARSE_SKIPPED_MESSAGE } : undefined;
}

export function floatingTagNotice(floatingImage: string, pinnedImage: string, pinnedVersion: string): RuntimeNotice {
  return {
    code: 'floating-tag',
    message:
      `'${floatingImage}' is a floating tag: today it resolves to Astro Runtime ${pinnedVersion}. ` +
      `For production deployments, pin a specific patch version for reproducibility: FROM ${pinnedImage}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Yanked releases

/** `3.1-8` -> `3.1`, `12.5.0` -> `12.5`: the minor line a patch release belongs to. */
function minorLine(release: RuntimeRelease): string {
  return release.generation === 'airflow3' ? (release.version.split('-')[0] as string) : release.version.split('.').slice(0, 2).join('.');
}

/** A non-yanked replacement: the newest stable release of the same minor line, else of the same major, else of the generation. */
function replacementFor(feed: RuntimeFeed, release: RuntimeRelease): string | undefined {
  const candidates = feed.releases.filter((r) => r.generation === release.generation && r.channel === STABLE_CHANNEL && !r.yanked);
  const newestWhere = (same: (r: RuntimeRelease) => boolean): string | undefined => maxRuntimeVersion(candidates.filter(same).map((r) => r.version));
  const major = (r: RuntimeRelease): string => r.version.split('.')[0] as string;
  return (
    newestWhere((r) => minorLine(r) === minorLine(release)) ??
    newestWhere((r) => major(r) === major(release)) ??
    latestRuntimeVersion(feed, { generation: release.generation })
  );
}

/** Refuses a version the updates feed marks as yanked, with the feed's reason. Without a feed there is nothing to check. */
export function checkNotYanked(feed: RuntimeFeed | undefined, version: string): void {
  if (feed === undefined) return;
  const release = findRuntimeRelease(feed, version);
  if (release === undefined || !release.yanked) return;
  const replacement = replacementFor(feed, release);
  throw new RuntimeRuleError(
    'runtime-yanked',
    `Astro Runtime ${version} has been yanked and must not be deployed${release.yankedReason ? `: ${release.yankedReason}` : '.'}`,
    replacement === undefined ? 'Change your Dockerfile to another Astro Runtime version.' : `Change your Dockerfile to Astro Runtime ${replacement}.`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Platform

const amd64Platforms = new Set(['linux/amd64', 'linux/x86_64', 'linux/amd64/v1', 'linux/amd64/v2', 'linux/amd64/v3']);

/** Astro runs linux/amd64 only; a deployed stage pinned to another platform would build an image it cannot run. */
export function checkStagePlatform(stage: DockerfileStage, dockerfilePath: string): void {
  if (stage.platform === undefined) return;
  if (amd64Platforms.has(stage.platform.toLowerCase())) return;
  const written = stage.platformAsWritten !== undefined && stage.platformAsWritten !== stage.platform ? ` (${stage.platformAsWritten})` : '';
  throw new RuntimeRuleError(
    'runtime-platform',
    `${dockerfilePath}:${stage.line}: FROM --platform=${stage.platform}${written} builds an image for ${stage.platform}, but Astro runs linux/amd64 images only.`,
    `Remove --platform from that FROM line or set it to linux/amd64: FROM --platform=linux/amd64 ${stage.imageAsWritten}`,
  );
}
