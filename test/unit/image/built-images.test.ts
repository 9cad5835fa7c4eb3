import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hasBuildLabels, rememberedBuilds } from '../../../src/image/built-images.js';
import { COMMIT_LABEL, DESCRIPTION_LABEL, IMAGE_INPUTS_LABEL, RUNTIME_VERSION_LABEL } from '../../../src/image/labels.js';

const ID = `sha256:${'a'.repeat(64)}`;
const labels = { [DESCRIPTION_LABEL]: 'fix the loader', [COMMIT_LABEL]: 'abc123', [IMAGE_INPUTS_LABEL]: 'b'.repeat(64) };

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});
async function file(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-built-'));
  dirs.push(dir);
  return path.join(dir, 'built-images.json');
}

describe('rememberedBuilds', () => {
  it('finds the image a build with the same labels made, in any order, and nothing for other labels', async () => {
    const builds = rememberedBuilds(await file());
    expect(await builds.find(labels)).toBeUndefined();
    await builds.remember(labels, ID);
    const reordered = { [IMAGE_INPUTS_LABEL]: labels[IMAGE_INPUTS_LABEL], [COMMIT_LABEL]: 'abc123', [DESCRIPTION_LABEL]: 'fix the loader' };
    expect(await builds.find(reordered)).toBe(ID);
    expect(await builds.find({ ...labels, [COMMIT_LABEL]: 'def456' })).toBeUndefined();
    expect(await builds.find({ ...labels, [IMAGE_INPUTS_LABEL]: 'c'.repeat(64) })).toBeUndefined();
  });

  it('remembers nothing without an image-inputs digest, nor anything but an image id', async () => {
    const where = await file();
    const builds = rememberedBuilds(where);
    const { [IMAGE_INPUTS_LABEL]: _inputs, ...withoutInputs } = labels;
    await builds.remember(withoutInputs, ID);
    expect(await builds.find(withoutInputs)).toBeUndefined();
    await builds.remember(labels, 'ns/airflow:latest');
    expect(await builds.find(labels)).toBeUndefined();
    await expect(fs.readFile(where)).rejects.toThrow(/ENOENT/);
  });

  it('reads a damaged file as empty and writes it anew', async () => {
    const where = await file();
    await fs.writeFile(where, '{"x": 1');
    const builds = rememberedBuilds(where);
    expect(await builds.find(labels)).toBeUndefined();
    await builds.remember(labels, ID);
    expect(await builds.find(labels)).toBe(ID);
  });
});

describe('hasBuildLabels', () => {
  it("takes an image with exactly the build's labels, whatever its base image adds", () => {
    expect(hasBuildLabels({ ...labels, [RUNTIME_VERSION_LABEL]: '3.1-8' }, labels)).toBe(true);
  });

  it("refuses an image whose deploy labels differ from the build's, or that has one the build would not set", () => {
    expect(hasBuildLabels({ ...labels, [COMMIT_LABEL]: 'other' }, labels)).toBe(false);
    const { [COMMIT_LABEL]: _commit, ...noCommit } = labels;
    // Built with a commit label, asked for without one (a project no longer in git): not the same image.
    expect(hasBuildLabels(labels, noCommit)).toBe(false);
    expect(hasBuildLabels(noCommit, labels)).toBe(false);
    expect(hasBuildLabels({ ...labels, 'io.astronomer.skip.revision': 'true' }, labels)).toBe(false);
  });
});
