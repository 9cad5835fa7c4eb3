// One Ctrl-C while a large DAGs folder is packed (src/bundle/tarball.ts): the bundle stops between slices of a big
// file or of its compression, without reading or compressing the rest. Counted in bytes, not timed.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDagBundle, type BundleProgress } from '../../../src/bundle/tarball.js';
import { InterruptedError } from '../../../src/errors.js';

const MiB = 1024 * 1024;
let dir: string;

/** A DAGs folder with one DAG and a large data file; sparse, so it costs neither disk nor page-cache misses. */
async function dagsWithBigFile(name: string, bytes: number): Promise<string> {
  const dags = path.join(dir, name);
  await fs.mkdir(dags, { recursive: true });
  await fs.writeFile(path.join(dags, 'dag.py'), 'from airflow import DAG\n');
  const handle = await fs.open(path.join(dags, 'big.bin'), 'w');
  await handle.truncate(bytes);
  await handle.close();
  return dags;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-bundle-interrupt-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('interrupting the bundle of a 200 MB file', () => {
  it('stops reading the file soon after the abort, delivered by the event loop as a signal handler would be', async () => {
    const size = 200 * MiB;
    const dags = await dagsWithBigFile('read', size);
    const controller = new AbortController();
    const events: BundleProgress[] = [];
    const error = await createDagBundle({
      sourceDir: dags,
      signal: controller.signal,
      maxSourceBytes: 512 * MiB,
      onProgress: (event) => {
        events.push(event);
        // Like SIGINT: the abort happens in a later turn of the event loop, not inside the reading code.
        if (event.stage === 'read' && event.bytesDone >= 8 * MiB && !controller.signal.aborted) setImmediate(() => controller.abort('SIGINT'));
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect((error as InterruptedError).signal).toBe('SIGINT');
    const read = Math.max(...events.filter((e) => e.stage === 'read').map((e) => e.bytesDone));
    // At most a couple of 4 MiB slices after the one that triggered the abort, far from the whole file.
    expect(read).toBeGreaterThanOrEqual(8 * MiB);
    expect(read).toBeLessThanOrEqual(20 * MiB);
    expect(events.some((e) => e.stage === 'compress')).toBe(false);
  });

  it('stops compressing soon after the abort', async () => {
    const dags = await dagsWithBigFile('compress', 200 * MiB);
    const controller = new AbortController();
    const events: BundleProgress[] = [];
    const error = await createDagBundle({
      sourceDir: dags,
      signal: controller.signal,
      maxSourceBytes: 512 * MiB,
      onProgress: (event) => {
        events.push(event);
        if (event.stage === 'compress' && !controller.signal.aborted) setImmediate(() => controller.abort('SIGTERM'));
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect((error as InterruptedError).signal).toBe('SIGTERM');
    const compress = events.filter((e) => e.stage === 'compress');
    const total = compress[0]!.bytesTotal!;
    expect(total).toBeGreaterThan(200 * MiB);
    expect(Math.max(...compress.map((e) => e.bytesDone))).toBeLessThanOrEqual(12 * MiB);
  });

  it('still packs a large file whole and exactly when nobody interrupts', async () => {
    const dags = await dagsWithBigFile('whole', 24 * MiB + 123);
    // Some non-zero content across slice boundaries, so a misplaced slice would show.
    const handle = await fs.open(path.join(dags, 'big.bin'), 'r+');
    for (const offset of [0, 4 * MiB - 1, 4 * MiB, 17 * MiB + 5, 24 * MiB + 122]) await handle.write(Buffer.from([offset % 251 || 1]), 0, 1, offset);
    await handle.close();
    const original = await fs.readFile(path.join(dags, 'big.bin'));
    const bundle = await createDagBundle({ sourceDir: dags });
    const tar = gunzipSync(bundle.data);
    // The tar holds the file's bytes verbatim, right after its 512-byte header.
    const header = tar.indexOf(Buffer.from('dags/big.bin'));
    expect(header).toBeGreaterThanOrEqual(0);
    const content = tar.subarray(header + 512, header + 512 + original.length);
    expect(createHash('sha256').update(content).digest('hex')).toBe(createHash('sha256').update(original).digest('hex'));
    expect(bundle.fileCount).toBe(2);
  });
});
