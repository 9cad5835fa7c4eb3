import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { dagBundleCache, type BundleCache } from '../../../src/bundle/bundle-cache.js';
import { createDagBundle } from '../../../src/bundle/tarball.js';
import { UserError } from '../../../src/errors.js';

let root: string;
let dags: string;
let cacheDir: string;
let cache: BundleCache;
/** The files below were written just now: a clock ten seconds ahead lets their state be kept. */
const later = () => Date.now() + 10_000;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-bundle-cache-'));
  dags = path.join(root, 'dags');
  cacheDir = path.join(root, 'cache', 'dag-bundles');
  await fs.mkdir(path.join(dags, 'sub'), { recursive: true });
  await fs.writeFile(path.join(dags, 'a.py'), 'from airflow import DAG\n');
  await fs.writeFile(path.join(dags, 'sub', 'b.py'), 'print("b")\n');
  await fs.symlink('a.py', path.join(dags, 'link.py'));
  cache = dagBundleCache(cacheDir);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await fs.chmod(root, 0o700).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
});

/** Opens of files inside the DAGs folder while `run` runs. */
async function opensDuring<T>(run: () => Promise<T>): Promise<{ result: T; opens: number }> {
  const open = vi.spyOn(fsSync, 'openSync');
  try {
    const result = await run();
    const opens = open.mock.calls.filter(([file]) => String(file).startsWith(dags)).length;
    return { result, opens };
  } finally {
    open.mockRestore();
  }
}

async function bundle(options: Partial<Parameters<typeof createDagBundle>[0]> = {}) {
  const made = await createDagBundle({ sourceDir: dags, cache, now: later, ...options });
  await cache.settled();
  return made;
}

describe('the DAG bundle cache', () => {
  it('gives a folder whose files are as they were the bundle made of them, without reading a file', async () => {
    const first = await bundle();
    expect(first.reused).toBe(false);
    expect(await fs.readdir(cacheDir)).toHaveLength(1);

    const { result: second, opens } = await opensDuring(() => bundle());
    expect(second.reused).toBe(true);
    expect(opens).toBe(0);
    expect(second.data.equals(first.data)).toBe(true);
    expect(second.sha256).toBe(first.sha256);
    expect(second.contentDigest).toBe(first.contentDigest);
    expect([second.bytes, second.fileCount, second.dagFileCount]).toEqual([first.bytes, first.fileCount, first.dagFileCount]);
  });

  it('packs again when a file was rewritten, even with the same size and its mtime put back', async () => {
    const file = path.join(dags, 'sub', 'b.py');
    // Whole seconds, which utimes puts back exactly: only the ctime can tell the rewrite.
    await fs.utimes(file, 1_700_000_000, 1_700_000_000);
    const first = await bundle();
    const before = await fs.stat(file);
    await fs.writeFile(file, 'print("c")\n');
    await fs.utimes(file, 1_700_000_000, 1_700_000_000);
    const after = await fs.stat(file);
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);

    const second = await bundle();
    expect(second.reused).toBe(false);
    expect(second.contentDigest).not.toBe(first.contentDigest);
    // The new bundle is kept in place of the old one.
    const third = await bundle();
    expect(third.reused).toBe(true);
    expect(third.contentDigest).toBe(second.contentDigest);
  });

  it('packs again when a file is added, removed, or turned into a link', async () => {
    await bundle();
    await fs.writeFile(path.join(dags, 'c.py'), 'x = 1\n');
    expect((await bundle()).reused).toBe(false);
    await fs.rm(path.join(dags, 'c.py'));
    expect((await bundle()).reused).toBe(false);
    await fs.rm(path.join(dags, 'link.py'));
    await fs.writeFile(path.join(dags, 'link.py'), 'a.py');
    const turned = await bundle();
    expect(turned.reused).toBe(false);
    expect((await bundle()).reused).toBe(true);
  });

  it('keeps nothing while a file was written in the last seconds (a second write could leave its timestamps as they were)', async () => {
    const first = await createDagBundle({ sourceDir: dags, cache });
    await cache.settled();
    expect(first.reused).toBe(false);
    expect(fsSync.existsSync(cacheDir)).toBe(false);
    expect((await createDagBundle({ sourceDir: dags, cache })).reused).toBe(false);
  });

  it('drops the kept bundle once the folder changed into a state too recent to keep: the next bundle checks nothing', async () => {
    await bundle();
    await fs.writeFile(path.join(dags, 'sub', 'b.py'), 'print("edited")\n');
    const edited = await createDagBundle({ sourceDir: dags, cache });
    await cache.settled();
    expect(edited.reused).toBe(false);
    expect(await fs.readdir(cacheDir)).toEqual([]);
    const lstat = vi.spyOn(fsSync, 'lstatSync');
    await createDagBundle({ sourceDir: dags, cache });
    // Only the pack's own lstat of the link, which it stores as a link.
    expect(lstat.mock.calls.map(([file]) => String(file)).filter((file) => file.startsWith(dags))).toEqual([path.join(dags, 'link.py')]);
  });

  it('takes no bundle for another entry prefix or other generated files', async () => {
    await bundle({ generated: [{ rel: 'astronomer_monitoring_dag.py', content: Buffer.from('# v1\n') }] });
    expect((await bundle({ generated: [{ rel: 'astronomer_monitoring_dag.py', content: Buffer.from('# v2\n') }] })).reused).toBe(false);
    expect((await bundle({ generated: [{ rel: 'astronomer_monitoring_dag.py', content: Buffer.from('# v2\n') }] })).reused).toBe(true);
    expect((await bundle({ prefix: '' })).reused).toBe(false);
    expect((await bundle({ prefix: '' })).reused).toBe(true);
  });

  it('packs with fresh (--no-cache), and keeps what it packed', async () => {
    await bundle();
    const { result, opens } = await opensDuring(() => bundle({ fresh: true }));
    expect(result.reused).toBe(false);
    expect(opens).toBeGreaterThan(0);
    expect((await bundle()).reused).toBe(true);
  });

  it('still refuses a folder over the size limit when its bundle was kept', async () => {
    await bundle();
    await expect(bundle({ maxSourceBytes: 10 })).rejects.toThrow(UserError);
  });

  it('ignores a kept file whose bytes were changed, cut short, or are not a bundle, and replaces it', async () => {
    const first = await bundle();
    const [name] = await fs.readdir(cacheDir);
    const file = path.join(cacheDir, name!);
    const kept = await fs.readFile(file);
    const broken = [
      Buffer.concat([kept.subarray(0, kept.length - 1), Buffer.from([kept[kept.length - 1]! ^ 0xff])]),
      kept.subarray(0, kept.length - 10),
      Buffer.from('not a bundle at all'),
      Buffer.from('{"format":1}\n'),
      Buffer.concat([Buffer.from('{'.repeat(5000)), Buffer.from('\n')]),
    ];
    for (const bytes of broken) {
      await fs.writeFile(file, bytes);
      const again = await bundle();
      expect(again.reused).toBe(false);
      expect(again.data.equals(first.data)).toBe(true);
      expect((await fs.readFile(file)).equals(kept)).toBe(true);
    }
  });

  it('takes no bundle kept for another folder under the same file name', async () => {
    await bundle();
    const [name] = await fs.readdir(cacheDir);
    const file = path.join(cacheDir, name!);
    const text = await fs.readFile(file, 'latin1');
    await fs.writeFile(file, text.replace(/"folder":"[^"]*"/, '"folder":"/somewhere/else"'), 'latin1');
    expect((await bundle()).reused).toBe(false);
  });

  it('never fails a bundle when the cache cannot be written', async () => {
    await fs.mkdir(path.dirname(cacheDir), { recursive: true });
    await fs.writeFile(cacheDir, 'a file where the folder should be');
    const made = await bundle();
    expect(made.reused).toBe(false);
    expect((await bundle()).reused).toBe(false);
    expect(fsSync.readdirSync(path.dirname(cacheDir))).toEqual(['dag-bundles']);
  });

  it('keeps the sixteen folders written last, and no temporary files', async () => {
    const folders: string[] = [];
    for (let i = 0; i < 18; i++) {
      const folder = path.join(root, `dags${i}`);
      await fs.mkdir(folder);
      await fs.writeFile(path.join(folder, 'dag.py'), `n = ${i}\n`);
      folders.push(folder);
      await createDagBundle({ sourceDir: folder, cache, now: later });
      await cache.settled();
      // Distinct mtimes for the files the pruning orders.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const names = await fs.readdir(cacheDir);
    expect(names).toHaveLength(16);
    expect(names.every((n) => n.endsWith('.bundle'))).toBe(true);
    expect((await createDagBundle({ sourceDir: folders[17]!, cache, now: later })).reused).toBe(true);
    expect((await createDagBundle({ sourceDir: folders[0]!, cache, now: later })).reused).toBe(false);
  });

  it('keeps no bundle larger than its limit', async () => {
    const small = dagBundleCache(cacheDir, { maxBytes: 10 });
    await createDagBundle({ sourceDir: dags, cache: small, now: later });
    await small.settled();
    expect(fsSync.existsSync(cacheDir)).toBe(false);
  });
});
