import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { inspectPrebuiltImage } from '../../../src/image/check.js';
import { RUNTIME_VERSION_LABEL } from '../../../src/image/runtime/rules.js';
import { FakeEngine, image } from './fake-engine.js';

const REF = 'my-image:1.2';

function engineWith(labels: Record<string, string>, platform = { os: 'linux', architecture: 'amd64' }): FakeEngine {
  const engine = new FakeEngine();
  engine.images.set(REF, image(REF, labels, platform));
  return engine;
}

describe('inspectPrebuiltImage', () => {
  it('returns the Runtime label and every label of a linux/amd64 image', async () => {
    const checked = await inspectPrebuiltImage(engineWith({ [RUNTIME_VERSION_LABEL]: '3.1-8', team: 'data' }), REF);
    expect(checked).toMatchObject({ ref: REF, runtimeVersion: '3.1-8', labels: { [RUNTIME_VERSION_LABEL]: '3.1-8', team: 'data' } });
  });

  it('leaves the missing-label rule to each platform: an image without the label is returned without a version', async () => {
    const checked = await inspectPrebuiltImage(engineWith({}), REF);
    expect(checked.runtimeVersion).toBeUndefined();
    expect(checked.labels).toEqual({});
  });

  it('refuses a missing image, saying how to build it', async () => {
    const error = await inspectPrebuiltImage(new FakeEngine(), REF).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`The image '${REF}' was not found in the local Docker engine.`);
    expect((error as UserError).nextStep).toContain(`docker build --platform=linux/amd64 -t ${REF} .`);
  });

  it.each([
    [{ os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
    [{ os: 'windows', architecture: 'amd64' }, 'windows/amd64'],
    [{ os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
  ])('refuses %o', async (platform, shown) => {
    const error = await inspectPrebuiltImage(engineWith({ [RUNTIME_VERSION_LABEL]: '3.1-8' }, platform), REF).catch((e: unknown) => e);
    expect((error as UserError).message).toBe(`The image '${REF}' is built for ${shown}, but Astronomer Deployments run linux/amd64 images only.`);
    expect((error as UserError).nextStep).toBe(`Rebuild it for linux/amd64 and deploy again: docker build --platform=linux/amd64 -t ${REF} .`);
  });
});
