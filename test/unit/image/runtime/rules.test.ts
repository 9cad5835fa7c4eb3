import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { UserError } from '../../../../src/errors.js';
import { parseDockerfile } from '../../../../src/image/runtime/dockerfile.js';
import { parseRuntimeFeed, parseRuntimeFeedText, type RuntimeFeed } from '../../../../src/image/runtime/feed.js';
import {
  AIRFLOW3_UPGRADE_MESSAGE,
  checkDeploymentRuntimeVersion,
  checkNotYanked,
  checkStagePlatform,
  isBlockedAirflow3Upgrade,
  isParseSkipped,
  notLatestNotice,
  notRuntimeBaseImageMessage,
  notRuntimeImageNameMessage,
  PARSE_SKIPPED_MESSAGE,
  parseSkippedNotice,
  requireRuntimeLabel,
  RuntimeRuleError,
} from '../../../../src/image/runtime/rules.js';

function fixtureFeed(): RuntimeFeed {
  const parsed = parseRuntimeFeedText(readFileSync(new URL('../../../platform/fixtures/updates-feed.json', import.meta.url), 'utf8'));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.feed;
}

function thrownBy(action: () => unknown): UserError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('expected a UserError');
}

describe('requireRuntimeLabel (section 9 warnings)', () => {
  it('returns the label version', () => {
    expect(requireRuntimeLabel('3.1-8', { fromImage: 'astrocrpublic.azurecr.io/runtime:3.1-8' })).toBe('3.1-8');
    expect(requireRuntimeLabel(' 12.5.0\n', { imageName: 'my-image:1' })).toBe('12.5.0');
  });

  it.each([undefined, '', '   '])('refuses a built image without the label (%j) with the exact warning', (label) => {
    const error = thrownBy(() => requireRuntimeLabel(label, { fromImage: 'python:3.12-slim' }));
    expect(error.message).toBe(
      "WARNING! The image in your Dockerfile 'python:3.12-slim' is not based on Astro Runtime and is not supported. Change your Dockerfile with an image that pulls from 'quay.io/astronomer/astro-runtime' to proceed.",
    );
    expect(error.message).toBe(notRuntimeBaseImageMessage('python:3.12-slim'));
    expect(error.kind).toBe('not-runtime-image');
    expect(error.nextStep).toContain('astrocrpublic.azurecr.io/runtime');
  });

  it('refuses an --image-name image without the label with its own warning', () => {
    const error = thrownBy(() => requireRuntimeLabel(undefined, { imageName: 'custom:latest' }));
    expect(error.message).toBe(
      "WARNING! The image 'custom:latest' does not appear to be based on Astro Runtime (the 'io.astronomer.docker.runtime.version' label is missing). Ensure your image is built FROM quay.io/astronomer/astro-runtime to proceed.",
    );
    expect(error.message).toBe(notRuntimeImageNameMessage('custom:latest'));
  });

  it('refuses a label that is not a Runtime version', () => {
    const error = thrownBy(() => requireRuntimeLabel('banana', { fromImage: 'x' }));
    expect(error.message).toMatch(/label is 'banana', which is not an Astro Runtime version/);
  });

  it('has no switch to skip it: the only inputs are the label and what to name', () => {
    expect(requireRuntimeLabel.length).toBe(2);
  });
});

describe('checkDeploymentRuntimeVersion (reference 7.4 steps 2-5)', () => {
  const supported = ['11.3.0', '12.5.0', '13.1.0', '3.0-7', '3.1-1', '3.1-8', '3.1-9', '3.2-1'];

  it.each([
    ['no deployment version accepts anything', '2.0.0', '', ['9.9.9']],
    ['undefined deployment version accepts anything', '3.1-8', undefined, []],
    ['same version', '3.1-8', '3.1-8', supported],
    ['patch upgrade', '3.1-9', '3.1-8', supported],
    ['minor upgrade', '3.2-1', '3.1-8', supported],
    ['Airflow 2 upgrade', '13.1.0', '12.5.0', supported],
    ['Airflow 2 -> 3 from 12.5.0', '3.1-8', '12.5.0', supported],
    ['Airflow 2 -> 3 from exactly 12.0.0', '3.0-7', '12.0.0', ['3.0-7']],
    ['supported compares equal across spellings', '12.5', '12.5.0', ['12.5.0']],
  ])('accepts: %s', (_name, image, deployment, options) => {
    expect(() =>
      checkDeploymentRuntimeVersion({
        imageVersion: image,
        ...(deployment === undefined ? {} : { deploymentVersion: deployment }),
        supportedVersions: options,
      }),
    ).not.toThrow();
  });

  it.each([
    ['patch downgrade', '3.1-8', '3.1-9', 'runtime-downgrade'],
    ['minor downgrade', '3.0-7', '3.1-1', 'runtime-downgrade'],
    ['Airflow 3 -> 2 is a downgrade', '13.1.0', '3.0-7', 'runtime-downgrade'],
    ['Airflow 2 downgrade', '12.5.0', '13.1.0', 'runtime-downgrade'],
    ['an invalid image version is lower than any', 'latest', '3.1-8', 'runtime-downgrade'],
  ])('refuses a downgrade: %s', (_name, image, deployment, kind) => {
    const error = thrownBy(() => checkDeploymentRuntimeVersion({ imageVersion: image, deploymentVersion: deployment, supportedVersions: supported }));
    expect(error.message).toBe(
      `Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to ${deployment} or higher in your Dockerfile`,
    );
    expect(error.kind).toBe(kind);
  });

  it('refuses an unsupported version and lists the supported ones', () => {
    const error = thrownBy(() =>
      checkDeploymentRuntimeVersion({ imageVersion: '3.1-10', deploymentVersion: '3.1-8', supportedVersions: ['3.1-8', '3.1-9', '3.2-1'] }),
    );
    expect(error.message).toBe(
      'Cannot deploy an unsupported Astro Runtime version. Modify your Astro Runtime version to a supported version in your Dockerfile\nSupported versions: 3.1-8, 3.1-9, 3.2-1',
    );
    expect(error.kind).toBe('runtime-unsupported');
    expect(error.nextStep).toBe('The newest version this Deployment supports is 3.2-1.');
  });

  it('refuses when the Deployment offers no versions at all', () => {
    const error = thrownBy(() => checkDeploymentRuntimeVersion({ imageVersion: '3.1-8', deploymentVersion: '3.1-8', supportedVersions: [] }));
    expect(error.message).toMatch(/Supported versions: $/);
  });

  it('downgrade is checked before support', () => {
    const error = thrownBy(() => checkDeploymentRuntimeVersion({ imageVersion: '3.0-1', deploymentVersion: '3.1-8', supportedVersions: [] }));
    expect(error.kind).toBe('runtime-downgrade');
  });

  it.each([
    ['11.3.0', '3.1-8'],
    ['11.99.0', '3.0-7'],
    ['4.2.6', '3.0-1'],
  ])('refuses Airflow 2 -> 3 from %s', (deployment, image) => {
    const error = thrownBy(() => checkDeploymentRuntimeVersion({ imageVersion: image, deploymentVersion: deployment, supportedVersions: [image, deployment] }));
    expect(error.message).toBe(AIRFLOW3_UPGRADE_MESSAGE);
    expect(error.message).toBe('Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro Runtime 12.0.0 or higher');
    expect(error.nextStep).toContain(deployment);
  });

  it('isBlockedAirflow3Upgrade only concerns Airflow 2 -> 3', () => {
    expect(isBlockedAirflow3Upgrade('3.1-8', '11.3.0')).toBe(true);
    expect(isBlockedAirflow3Upgrade('3.1-8', '12.0.0')).toBe(false);
    expect(isBlockedAirflow3Upgrade('11.4.0', '11.3.0')).toBe(false);
    expect(isBlockedAirflow3Upgrade('3.1-8', '3.0-7')).toBe(false);
  });
});

describe('advice', () => {
  it.each([
    ['3.1-8', '3.2-1', true],
    ['13.1.0', '3.2-1', true], // any Airflow 3 version is newer
    ['3.2-1', '3.2-1', false],
    ['3.3-1', '3.2-1', false],
    ['3.1-8', undefined, false], // no feed
  ])('not-latest notice for %s when latest is %s: %s', (version, latest, expected) => {
    const notice = notLatestNotice(version, latest);
    expect(notice !== undefined).toBe(expected);
    if (notice) {
      expect(notice).toEqual({
        code: 'not-latest',
        message: `WARNING! You are currently running Astro Runtime Version ${version}\nConsider upgrading to the latest version, Astro Runtime ${latest}`,
      });
    }
  });

  it.each([
    ['4.0.0', true],
    ['4.0.99', true],
    ['4.1.0', false],
    ['12.5.0', false],
    ['3.0-1', false], // new format is above every old version
    ['3.1-8', false],
  ])('DAG parse skipped for %s: %s', (version, skipped) => {
    expect(isParseSkipped(version)).toBe(skipped);
    expect(parseSkippedNotice(version)).toEqual(skipped ? { code: 'parse-skipped', message: PARSE_SKIPPED_MESSAGE } : undefined);
  });

  it('has the exact parse-skipped text', () => {
    expect(PARSE_SKIPPED_MESSAGE).toBe('\nruntime image is earlier than 4.1.0, this deploy will skip DAG parse...');
  });
});

describe('checkNotYanked', () => {
  const feed = fixtureFeed();

  it.each([
    ['3.1-7', 'DAG processor crash on dags with dynamic task mapping; use 3.1-8 or later.', 'Change your Dockerfile to Astro Runtime 3.1-9.'],
    ['3.2-2', 'Broken OpenLineage provider pin breaks task startup; use 3.2-1 until 3.2-3 is released.', 'Change your Dockerfile to Astro Runtime 3.2-1.'],
    ['12.4.0', 'Scheduler can lose task heartbeats under load; upgrade to 12.5.0.', 'Change your Dockerfile to Astro Runtime 12.5.0.'],
  ])('refuses yanked %s with the reason and a replacement', (version, reason, nextStep) => {
    const error = thrownBy(() => checkNotYanked(feed, version));
    expect(error.message).toBe(`Astro Runtime ${version} has been yanked and must not be deployed: ${reason}`);
    expect(error.nextStep).toBe(nextStep);
    expect(error).toBeInstanceOf(RuntimeRuleError);
    expect(error.kind).toBe('runtime-yanked');
  });

  it('a yanked release without a reason still says so', () => {
    const parsed = parseRuntimeFeed({
      runtimeVersionsV3: { '3.1-1': { metadata: { channel: 'stable', yanked: true } } },
    });
    if (!parsed.ok) throw new Error(parsed.reason);
    const error = thrownBy(() => checkNotYanked(parsed.feed, '3.1-1'));
    expect(error.message).toBe('Astro Runtime 3.1-1 has been yanked and must not be deployed.');
    expect(error.nextStep).toBe('Change your Dockerfile to another Astro Runtime version.');
  });

  it.each(['3.1-8', '3.2-1', '12.5.0', '9.9.9'])('lets %s through', (version) => {
    expect(() => checkNotYanked(feed, version)).not.toThrow();
  });

  it('without a feed there is nothing to check', () => {
    expect(() => checkNotYanked(undefined, '3.1-7')).not.toThrow();
  });
});

describe('checkStagePlatform', () => {
  const stageOf = (content: string) => parseDockerfile(content).finalBase;

  it.each([
    'FROM astrocrpublic.azurecr.io/runtime:3.1-8',
    'FROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime:3.1-8',
    'FROM --platform=linux/x86_64 astrocrpublic.azurecr.io/runtime:3.1-8',
    'FROM --platform=$TARGETPLATFORM astrocrpublic.azurecr.io/runtime:3.1-8',
  ])('accepts %s', (content) => {
    expect(() => checkStagePlatform(stageOf(content), 'Dockerfile')).not.toThrow();
  });

  it('refuses a stage pinned to arm64 and shows the fixed line', () => {
    const error = thrownBy(() => checkStagePlatform(stageOf('\nFROM --platform=linux/arm64 astrocrpublic.azurecr.io/runtime:3.1-8'), 'Dockerfile'));
    expect(error.message).toBe('Dockerfile:2: FROM --platform=linux/arm64 builds an image for linux/arm64, but Astro runs linux/amd64 images only.');
    expect(error.nextStep).toBe(
      'Remove --platform from that FROM line or set it to linux/amd64: FROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime:3.1-8',
    );
  });

  it('names the ARG a platform came from', () => {
    const error = thrownBy(() => checkStagePlatform(stageOf('ARG P=linux/arm64\nFROM --platform=$P x'), 'Dockerfile'));
    expect(error.message).toContain('--platform=linux/arm64 ($P)');
  });
});
