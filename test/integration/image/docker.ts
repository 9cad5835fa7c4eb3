/** Helpers for the image integration tests: the Debian Docker client, image contents, tiny base images. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Debian's client (API 1.41, classic builder without buildx); the first `docker` on PATH may be a newer client-only binary. */
export const DOCKER_CLI = '/usr/bin/docker';
export const DOCKER_SOCKET = '/var/run/docker.sock';

export function docker(args: string[], options: SpawnSyncOptions & { allowFailure?: boolean } = {}): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(DOCKER_CLI, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...options,
    env: { ...process.env, DOCKER_BUILDKIT: '0', ...options.env },
  });
  const out = { status: result.status ?? -1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  if (out.status !== 0 && !options.allowFailure) throw new Error(`docker ${args.join(' ')} failed (${out.status}): ${out.stderr}`);
  return out;
}

/** A name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `astro-test/${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Every path in the image's filesystem (directories end with `/`), read through `docker export`. */
export function listImageFiles(image: string, under = ''): string[] {
  const container = docker(['create', image, '/nonexistent']).stdout.trim();
  try {
    const listing = spawnSync('sh', ['-c', `${DOCKER_CLI} export ${container} | tar -t`], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (listing.status !== 0) throw new Error(`docker export failed: ${listing.stderr}`);
    return listing.stdout
      .split('\n')
      .filter((line) => line !== '' && line.startsWith(under))
      .map((line) => line.slice(under.length))
      .filter((line) => line !== '')
      .sort();
  } finally {
    docker(['rm', '-f', container], { allowFailure: true });
  }
}

export function removeImages(...refs: string[]): void {
  const existing = refs.filter((ref) => docker(['image', 'inspect', ref], { allowFailure: true }).status === 0);
  if (existing.length > 0) docker(['rmi', '-f', ...existing], { allowFailure: true });
}

/** The label every image built on a test base carries, with a value unique to one test run. */
export const TEST_RUN_LABEL = 'dev.astro-deploy-cli.test-run';

/**
 * Removes every image (intermediate build steps included, e.g. of an interrupted build) that inherited this run's
 * label from its base image, children before parents.
 */
export function removeImagesOfRun(runId: string): void {
  for (let round = 0; round < 10; round++) {
    const ids = docker(['images', '-a', '-q', '--filter', `label=${TEST_RUN_LABEL}=${runId}`])
      .stdout.split('\n')
      .filter(Boolean);
    if (ids.length === 0) return;
    docker(['rmi', '-f', ...new Set(ids)], { allowFailure: true });
  }
}

/**
 * A minimal linux/amd64 base image with a shell and `sleep` (copied from the host with their libraries), labelled
 * like Astro Runtime. No image can be pulled here, and tests must not depend on images other tests build.
 */
export async function buildShellBaseImage(name: string, labels: Record<string, string> = {}, runId?: string): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-test-base-'));
  try {
    const files = new Set<string>();
    for (const binary of ['/bin/sh', '/bin/sleep', '/bin/cat', '/bin/ls']) {
      const real = await fs.realpath(binary);
      files.add(real);
      const ldd = spawnSync('ldd', [real], { encoding: 'utf8' });
      for (const match of ldd.stdout.matchAll(/(\/[^\s]+)/g)) files.add(match[1]!);
    }
    const rootfs = path.join(dir, 'rootfs');
    for (const file of files) {
      const target = path.join(rootfs, file);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(await fs.realpath(file), target);
      await fs.chmod(target, 0o755);
    }
    for (const binary of ['/bin/sh', '/bin/sleep', '/bin/cat', '/bin/ls']) {
      const target = path.join(rootfs, binary);
      const real = await fs.realpath(binary);
      if (real !== binary) {
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.copyFile(real, target);
        await fs.chmod(target, 0o755);
      }
    }
    await fs.mkdir(path.join(rootfs, 'tmp'), { recursive: true });
    const imported = `${name}-rootfs`;
    const tar = spawnSync('sh', ['-c', `tar -C ${rootfs} -c . | ${DOCKER_CLI} import - ${imported}`], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`docker import failed: ${tar.stderr}`);
    const allLabels = runId === undefined ? labels : { ...labels, [TEST_RUN_LABEL]: runId };
    const labelLines = Object.entries(allLabels).map(([k, v]) => `LABEL ${k}="${v}"`);
    await fs.writeFile(path.join(dir, 'Dockerfile'), [`FROM ${imported}`, ...labelLines, ''].join('\n'));
    docker(['build', '-q', '--platform', 'linux/amd64', '-t', name, dir]);
    docker(['rmi', imported], { allowFailure: true });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
