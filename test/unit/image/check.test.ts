import { describe, expect, it } from 'vitest';
import { UsageError, UserError } from '../../../src/errors.js';
import { assertImageNameFlagsCompatible, checkPrebuiltImage, IMAGE_NAME_CONFLICTS } from '../../../src/image/check.js';
import { notRuntimeImageNameMessage, RUNTIME_VERSION_LABEL, unsupportedMessage } from '../../../src/image/runtime/rules.js';
import { FakeEngine, image } from './fake-engine.js';

const REF = 'my-image:1.2';

function engineWith(labels: Record<string, string>, platform = { os: 'linux', architecture: 'amd64' }): FakeEngine {
  const engine = new FakeEngine();
  engine.images.set(REF, image(REF, labels, platform));
  return engine;
}

describe('checkPrebuiltImage', () => {
  it('returns the Runtime version of a linux/amd64 Runtime image', async () => {
    const checked = await checkPrebuiltImage(engineWith({ [RUNTIME_VERSION_LABEL]: '3.1-8' }), REF);
    expect(checked).toMatchObject({ ref: REF, runtimeVersion: '3.1-8', parseSkipped: false });
  });

  it('refuses a missing image, saying how to build it', async () => {
    const error = await checkPrebuiltImage(new FakeEngine(), REF).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`The image '${REF}' was not found in the local Docker engine.`);
    expect((error as UserError).nextStep).toContain(`docker build --platform=linux/amd64 -t ${REF} .`);
  });

  it.each([
    [{ os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
    [{ os: 'windows', architecture: 'amd64' }, 'windows/amd64'],
    [{ os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
  ])('refuses %o', async (platform, shown) => {
    const error = await checkPrebuiltImage(engineWith({ [RUNTIME_VERSION_LABEL]: '3.1-8' }, platform), REF).catch((e: unknown) => e);
    expect((error as UserError).message).toBe(`The image '${REF}' is built for ${shown}, but Astro Deployments run linux/amd64 images only.`);
    expect((error as UserError).nextStep).toBe(`Rebuild it for linux/amd64 and deploy again: docker build --platform=linux/amd64 -t ${REF} .`);
  });

  it('refuses an image without the Runtime label with the message users know', async () => {
    await expect(checkPrebuiltImage(engineWith({}), REF)).rejects.toThrow(notRuntimeImageNameMessage(REF));
  });

  it('applies the Deployment rules to the label when the Deployment is known', async () => {
    const engine = engineWith({ [RUNTIME_VERSION_LABEL]: '3.1-8' });
    await expect(checkPrebuiltImage(engine, REF, { deployment: { runtimeVersion: '3.1-8', supportedVersions: ['3.1-9'] } })).rejects.toThrow(
      unsupportedMessage(['3.1-9']),
    );
    await expect(checkPrebuiltImage(engine, REF, { deployment: { runtimeVersion: '3.1-7', supportedVersions: ['3.1-7', '3.1-8'] } })).resolves.toMatchObject({
      runtimeVersion: '3.1-8',
    });
  });
});

describe('assertImageNameFlagsCompatible', () => {
  it.each(IMAGE_NAME_CONFLICTS.map((flag) => [flag]))('refuses --%s', (flag) => {
    expect(() => assertImageNameFlagsCompatible([flag, 'description'])).toThrow(new UsageError(`cannot use --${flag} with --image-name; --image-name implies an image-only deploy`));
  });

  it('accepts flags that go with a prebuilt image', () => {
    expect(() => assertImageNameFlagsCompatible(['description', 'wait', 'force', 'image', 'deployment-name'])).not.toThrow();
  });
});
