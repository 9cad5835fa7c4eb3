/**
 * Why test/platform/README.md tells users of Astronomer's CLI to write `FROM --platform=linux/amd64 …`: that CLI
 * builds with `docker build --pull` when every FROM line names a Runtime image (`FROM astrocrpublic.azurecr.io/…`,
 * `FROM quay.io/astronomer/…`), and the stand-in Runtime image exists only in the local engine, so the pull fails.
 * A FROM line that starts with `--platform=` is not such a line: no `--pull`, and the local image is used.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../platform/stack.js';
import { docker, removeImage } from './helpers.js';

const runtimeImage = 'astrocrpublic.azurecr.io/runtime:3.1-8';
const built: string[] = [];

async function build(dockerfile: string, tag: string, pull: boolean): Promise<{ error?: string }> {
  const context = pack();
  context.entry({ name: 'Dockerfile' }, dockerfile);
  context.entry({ name: 'packages.txt' }, '');
  context.entry({ name: 'requirements.txt' }, '');
  context.entry({ name: 'dags/hello.py' }, '# no DAG here\n');
  context.finalize();
  built.push(tag);
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: tag, pull, rm: true, forcerm: true });
  const events: any[] = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))));
  const failed = events.find((e) => e.error || e.errorDetail);
  return { error: failed ? String(failed.error ?? failed.errorDetail?.message) : undefined };
}

afterAll(async () => {
  await Promise.all(built.map(removeImage));
});

describe('the stand-in Runtime image and docker build --pull', () => {
  it('cannot satisfy --pull for FROM astrocrpublic.azurecr.io/runtime (no registry to pull from)', async () => {
    await docker.getImage(runtimeImage).inspect(); // provisioned locally
    const result = await build(`FROM ${runtimeImage}\n`, 'astro-platform-pull-test:with-pull', true);
    expect(result.error).toMatch(/astrocrpublic\.azurecr\.io/);
  });

  it('builds from the local image when the FROM line starts with --platform=linux/amd64 (no --pull)', async () => {
    const result = await build(`FROM --platform=linux/amd64 ${runtimeImage}\n`, 'astro-platform-pull-test:platform-flag', false);
    expect(result.error).toBeUndefined();
    const image = await docker.getImage('astro-platform-pull-test:platform-flag').inspect();
    expect(image.Config.Labels?.['io.astronomer.docker.runtime.version']).toBe('3.1-8');
  });

  it("is documented for users of Astronomer's CLI in test/platform/README.md", () => {
    const readme = readFileSync(join(repoRoot, 'test', 'platform', 'README.md'), 'utf8');
    expect(readme).toContain('docker build --pull');
    expect(readme).toContain('FROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime:3.1-8');
  });
});
