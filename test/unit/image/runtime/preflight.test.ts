import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { UserError } from '../../../../src/errors.js';
import { parseDockerfile } from '../../../../src/image/runtime/dockerfile.js';
import { parseRuntimeFeedText, type RuntimeFeed } from '../../../../src/image/runtime/feed.js';
import { checkBuiltRuntimeImage, preflightRuntimeImage, type DeploymentRuntime } from '../../../../src/image/runtime/preflight.js';
import { RuntimeImageError } from '../../../../src/image/runtime/tag.js';

function fixtureFeed(): RuntimeFeed {
  const parsed = parseRuntimeFeedText(readFileSync(new URL('../../../platform/fixtures/updates-feed.json', import.meta.url), 'utf8'));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.feed;
}
const feed = fixtureFeed();
/** The platform seed's deployment-options. */
const supportedVersions = ['11.3.0', '12.5.0', '13.1.0', '3.0-7', '3.1-1', '3.1-7', '3.1-8', '3.1-9', '3.2-1'];
const deploymentAt = (runtimeVersion: string): DeploymentRuntime => ({ runtimeVersion, supportedVersions });

function thrownBy(action: () => unknown): UserError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('expected a UserError');
}

describe('preflightRuntimeImage: before any build', () => {
  it('accepts a pinned Runtime image that suits the Deployment', () => {
    const result = preflightRuntimeImage({
      dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-8\n'),
      feed,
      deployment: deploymentAt('3.1-8'),
    });
    expect(result.expectedVersion).toBe('3.1-8');
    expect(result.notices).toEqual([]);
    expect(result.image).toMatchObject({ kind: 'runtime', repository: 'astrocrpublic.azurecr.io/runtime', tag: { version: '3.1-8' } });
    expect(result.fromImage).toBe('astrocrpublic.azurecr.io/runtime:3.1-8');
  });

  it('works without a feed and without a Deployment', () => {
    const result = preflightRuntimeImage({ dockerfile: parseDockerfile('FROM quay.io/astronomer/astro-runtime:12.5.0-python-3.11-slim') });
    expect(result.expectedVersion).toBe('12.5.0');
    expect(result.notices).toEqual([]);
  });

  it('rejects a wrong tag with the Dockerfile line and the corrected FROM line', () => {
    const error = thrownBy(() =>
      preflightRuntimeImage({
        dockerfile: parseDockerfile('# project\nFROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime:3.1-8-base-python-3.12 AS runtime\n'),
        feed,
      }),
    );
    expect(error).toBeInstanceOf(RuntimeImageError);
    expect(error.message).toBe(
      [
        "Dockerfile:2: The Astro Runtime image 'astrocrpublic.azurecr.io/runtime:3.1-8-base-python-3.12' is not valid:",
        '  - segments are out of order: -base-python-3.12 should read in the order <version>[-ubi9][-python-3.N][-base].',
        'Use: astrocrpublic.azurecr.io/runtime:3.1-8-python-3.12-base',
      ].join('\n'),
    );
    expect(error.nextStep).toBe(
      'Change line 2 of Dockerfile to: FROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime:3.1-8-python-3.12-base AS runtime',
    );
  });

  it('explains a wrong tag that came from an ARG', () => {
    const error = thrownBy(() => preflightRuntimeImage({ dockerfile: parseDockerfile('ARG TAG=3.1-8-slim\nFROM astrocrpublic.azurecr.io/runtime:${TAG}') }));
    expect(error.message).toMatch(/^Dockerfile:2: The Astro Runtime image 'astrocrpublic.azurecr.io\/runtime:3.1-8-slim' is not valid/);
    expect(error.nextStep).toBe(
      'Line 2 of Dockerfile reads FROM astrocrpublic.azurecr.io/runtime:${TAG}, which expands to astrocrpublic.azurecr.io/runtime:3.1-8-slim; change it (or the ARG values) so that it names astrocrpublic.azurecr.io/runtime:3.1-8.',
    );
  });

  it('checks the tag after --build-arg overrides', () => {
    const dockerfile = parseDockerfile('ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}', { buildArgs: { TAG: '3.1.9' } });
    const error = thrownBy(() => preflightRuntimeImage({ dockerfile }));
    expect(error.message).toContain('hyphen before the patch number: 3.1-9');
  });

  it('catches a wrong Runtime tag in any stage, not only the deployed one', () => {
    const dockerfile = parseDockerfile('FROM quay.io/astronomer/astro-runtime:3.1-8 AS deps\nRUN true\nFROM astrocrpublic.azurecr.io/runtime:3.1-8\n');
    const error = thrownBy(() => preflightRuntimeImage({ dockerfile, feed }));
    expect(error.message).toMatch(/^Dockerfile:1: /);
    expect((error as RuntimeImageError).correctedImage).toBe('astrocrpublic.azurecr.io/runtime:3.1-8');
  });

  it('follows stage links to the image the deployed stage is built on', () => {
    const dockerfile = parseDockerfile('FROM python:3.12-slim AS build\nFROM astrocrpublic.azurecr.io/runtime:3.1-9 AS rt\nFROM rt\nCOPY --from=build /x /x\n');
    const result = preflightRuntimeImage({ dockerfile, feed, deployment: deploymentAt('3.1-8') });
    expect(result.stage.line).toBe(2);
    expect(result.expectedVersion).toBe('3.1-9');
    // The non-Runtime warning names the first FROM as written, as Astronomer's CLI does.
    expect(result.fromImage).toBe('python:3.12-slim');
  });

  it('refuses a pinned downgrade before building', () => {
    const error = thrownBy(() =>
      preflightRuntimeImage({ dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-8'), feed, deployment: deploymentAt('3.1-9') }),
    );
    expect(error.message).toBe('Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to 3.1-9 or higher in your Dockerfile');
  });

  it('refuses a pinned unsupported version before building', () => {
    const error = thrownBy(() =>
      preflightRuntimeImage({
        dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-8'),
        deployment: { runtimeVersion: '3.1-8', supportedVersions: ['3.1-9'] },
      }),
    );
    expect(error.message).toMatch(/^Cannot deploy an unsupported Astro Runtime version\./);
  });

  it('refuses an Airflow 2 -> 3 jump from below 12.0.0 before building', () => {
    const error = thrownBy(() =>
      preflightRuntimeImage({ dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-8'), deployment: deploymentAt('11.3.0') }),
    );
    expect(error.message).toBe('Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro Runtime 12.0.0 or higher');
  });

  it('refuses a yanked version with the reason', () => {
    const error = thrownBy(() =>
      preflightRuntimeImage({ dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-7'), feed, deployment: deploymentAt('3.1-1') }),
    );
    expect(error.message).toBe(
      'Astro Runtime 3.1-7 has been yanked and must not be deployed: DAG processor crash on dags with dynamic task mapping; use 3.1-8 or later.',
    );
    expect(error.nextStep).toBe('Change your Dockerfile to Astro Runtime 3.1-9.');
  });

  it.each([
    ['3.1', 'astrocrpublic.azurecr.io/runtime:3.1-9', '3.1-9'],
    ['3.1-base', 'astrocrpublic.azurecr.io/runtime:3.1-9-base', '3.1-9'],
    ['3.2', 'astrocrpublic.azurecr.io/runtime:3.2-1', '3.2-1'], // 3.2-2 is yanked
  ])('resolves the floating tag %s and advises pinning', (tag, pinned, version) => {
    const result = preflightRuntimeImage({ dockerfile: parseDockerfile(`FROM astrocrpublic.azurecr.io/runtime:${tag}`), feed });
    expect(result.expectedVersion).toBe(version);
    expect(result.notices).toEqual([
      {
        code: 'floating-tag',
        message: `'astrocrpublic.azurecr.io/runtime:${tag}' is a floating tag: today it resolves to Astro Runtime ${version}. For production deployments, pin a specific patch version for reproducibility: FROM ${pinned}`,
      },
    ]);
  });

  it('leaves Deployment checks of a floating tag to the built label', () => {
    // The feed says 3.1 is 3.1-9, which this Deployment does not offer; the local 3.1 image may well be 3.1-8.
    const result = preflightRuntimeImage({
      dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1'),
      feed,
      deployment: { runtimeVersion: '3.1-8', supportedVersions: ['3.1-8'] },
    });
    expect(result.expectedVersion).toBe('3.1-9');
  });

  it('advises pinning a floating tag even without the feed', () => {
    const result = preflightRuntimeImage({ dockerfile: parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-base') });
    expect(result.expectedVersion).toBeUndefined();
    expect(result.notices).toHaveLength(1);
    expect(result.notices[0]?.code).toBe('floating-tag');
    expect(result.notices[0]?.message).toContain('pin a specific patch version');
  });

  it('refuses a floating tag the feed knows nothing of', () => {
    const error = thrownBy(() => preflightRuntimeImage({ dockerfile: parseDockerfile('\n\nFROM astrocrpublic.azurecr.io/runtime:3.9'), feed }));
    expect(error.message).toBe("no runtime version found matching '3.9'");
    expect(error.nextStep).toBe('Check line 3 of Dockerfile: 3.2-1 is the latest Airflow 3 Runtime.');
  });

  it.each([
    ['a non-Runtime image', 'FROM python:3.12-slim', /'python' is not an Astro Runtime repository/],
    ['a private mirror', 'FROM registry.example.com/mirror/runtime:3.1-8', /not an Astro Runtime repository/],
    ['scratch', 'FROM scratch', /built FROM scratch, which is not an Astro Runtime image/],
  ])('only notes %s: the built label decides', (_name, content, message) => {
    const result = preflightRuntimeImage({ dockerfile: parseDockerfile(content), feed, deployment: deploymentAt('3.1-8') });
    expect(result.expectedVersion).toBeUndefined();
    expect(result.notices).toHaveLength(1);
    expect(result.notices[0]).toMatchObject({ code: 'not-runtime-repository', message: expect.stringMatching(message) });
  });

  it('notes a digest-only Runtime image', () => {
    const digest = `sha256:${'cd'.repeat(32)}`;
    const result = preflightRuntimeImage({ dockerfile: parseDockerfile(`FROM astrocrpublic.azurecr.io/runtime@${digest}`), feed });
    expect(result.notices.map((n) => n.code)).toEqual(['digest-only']);
  });

  it('refuses a deployed stage pinned to arm64', () => {
    const error = thrownBy(() => preflightRuntimeImage({ dockerfile: parseDockerfile('FROM --platform=linux/arm64 astrocrpublic.azurecr.io/runtime:3.1-8') }));
    expect(error.message).toMatch(/Astro runs linux\/amd64 images only/);
  });

  it('allows a builder stage on another platform', () => {
    const result = preflightRuntimeImage({
      dockerfile: parseDockerfile('FROM --platform=linux/arm64 python:3.12 AS build\nFROM astrocrpublic.azurecr.io/runtime:3.1-8'),
    });
    expect(result.expectedVersion).toBe('3.1-8');
  });
});

describe('checkBuiltRuntimeImage: after the build', () => {
  const source = { fromImage: 'astrocrpublic.azurecr.io/runtime:3.1-8' };

  it('returns the label version, the not-latest warning, and no parse skip', () => {
    const check = checkBuiltRuntimeImage({ label: '3.1-8', source, deployment: deploymentAt('3.1-8'), feed, expectedVersion: '3.1-8' });
    expect(check).toEqual({
      version: '3.1-8',
      parseSkipped: false,
      notices: [
        {
          code: 'not-latest',
          message: 'WARNING! You are currently running Astro Runtime Version 3.1-8\nConsider upgrading to the latest version, Astro Runtime 3.2-1',
        },
      ],
    });
  });

  it('is quiet on the latest version', () => {
    expect(checkBuiltRuntimeImage({ label: '3.2-1', source, deployment: deploymentAt('3.1-8'), feed }).notices).toEqual([]);
  });

  it('without a feed there is no not-latest warning', () => {
    expect(checkBuiltRuntimeImage({ label: '3.1-8', source }).notices).toEqual([]);
  });

  it('refuses an image without the Runtime label, naming the Dockerfile image', () => {
    const error = thrownBy(() => checkBuiltRuntimeImage({ label: '', source: { fromImage: 'python:3.12-slim' }, deployment: deploymentAt('3.1-8'), feed }));
    expect(error.message).toBe(
      "WARNING! The image in your Dockerfile 'python:3.12-slim' is not based on Astro Runtime and is not supported. Change your Dockerfile with an image that pulls from 'quay.io/astronomer/astro-runtime' to proceed.",
    );
  });

  it('refuses an --image-name image without the label', () => {
    const error = thrownBy(() => checkBuiltRuntimeImage({ label: undefined, source: { imageName: 'my-image:1.0' } }));
    expect(error.message).toMatch(/^WARNING! The image 'my-image:1.0' does not appear to be based on Astro Runtime/);
  });

  it('the label is the authority: a downgrade found only after the build is refused', () => {
    const error = thrownBy(() => checkBuiltRuntimeImage({ label: '3.1-8', source, deployment: deploymentAt('3.1-9'), feed, expectedVersion: '3.1-9' }));
    expect(error.message).toMatch(/^Cannot deploy a downgraded Astro Runtime version/);
  });

  it('refuses a yanked label version', () => {
    const error = thrownBy(() => checkBuiltRuntimeImage({ label: '3.1-7', source, deployment: deploymentAt('3.1-1'), feed }));
    expect(error.message).toMatch(/^Astro Runtime 3.1-7 has been yanked/);
  });

  it('notes a label that differs from the tag', () => {
    const check = checkBuiltRuntimeImage({ label: '3.1-8', source, feed, expectedVersion: '3.1-9' });
    expect(check.notices.map((n) => n.code)).toEqual(['label-differs-from-tag', 'not-latest']);
    expect(check.notices[0]?.message).toContain('names Astro Runtime 3.1-9, but the built image is labelled 3.1-8');
  });

  it('skips the parse test below Runtime 4.1.0', () => {
    const check = checkBuiltRuntimeImage({ label: '4.0.0', source });
    expect(check.parseSkipped).toBe(true);
    expect(check.notices).toEqual([{ code: 'parse-skipped', message: '\nruntime image is earlier than 4.1.0, this deploy will skip DAG parse...' }]);
  });
});
