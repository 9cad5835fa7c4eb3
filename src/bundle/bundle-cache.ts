/**
 * The last DAG bundle made of each DAGs folder, kept in astro's cache with the state of the files it was made from:
 * each entry's name, type, size, mode, owner, mtime, ctime, inode and device as lstat gives them (bundle/tarball.ts
 * `folderState`), hashed. A deploy whose folder is in exactly that state again (a redeploy, a retried deploy, a full
 * deploy whose plan needs the DAGs' digest) takes the bundle instead of reading, packing and compressing every file:
 * one lstat per file instead of an open, fstat, read and close, and no tar or gzip. Any change to a file changes its
 * ctime (the kernel sets it; no tool can set it back), so a state that matches is a folder whose files have not been
 * written since; a state holding a file written in the last few seconds is never kept (tarball.ts), because a second
 * write within a timestamp's granularity would leave the state as it was.
 *
 * One file per folder (`<sha256 of the folder>.bundle`; the entry prefix is part of the state): a JSON header line,
 * then the gzip bytes, which must hash to the header's sha256 to be used. Anything else (foreign, truncated, another
 * version) is no bundle. Written atomically, beside the deploy, never failing it; at most MAX_FOLDERS folders, the
 * oldest dropped.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { CHECKED_ONCE } from '../util/checked-once.js';

/** What a bundle from the cache carries: enough to ship it and to plan with it. */
export interface CachedBundle {
  data: Buffer;
  /** Hex SHA-256 of `data`. */
  sha256: string;
  /** The bundle's content digest (tarball.ts DagBundle.contentDigest). */
  contentDigest: string;
}

export interface BundleCache {
  /** Whether a bundle of `folder` is kept (then its state is worth an lstat of every file). */
  has(folder: string): boolean;
  /** The bundle of `folder` made from the files in `state`, if kept and intact. Never fails. */
  find(folder: string, state: string): CachedBundle | undefined;
  /** Keeps `bundle` as `folder`'s, made from `state`. Returns at once; the write happens meanwhile and never fails. */
  remember(folder: string, state: string, bundle: CachedBundle): void;
  /**
   * Drops `folder`'s bundle: its files changed and their new state cannot be kept yet (one was just written), so
   * the next deploy would lstat every file for a bundle that cannot match. Returns at once; never fails.
   */
  forget(folder: string): void;
  /** Settles once every write remember() or forget() started has ended (for tests; a deploy never waits for them). */
  settled(): Promise<void>;
}

/** Bumped whenever the bundle's bytes for the same files would differ (tar layout, compression). */
const FORMAT = 1;
/** Folders kept at most; the oldest file goes first. */
const MAX_FOLDERS = 16;
/** Bundles larger than this are not kept: reading them back would cost about what making them does. */
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

const header = z.object({
  format: z.literal(FORMAT),
  folder: z.string(),
  state: z.string().regex(HEX64),
  sha256: z.string().regex(HEX64),
  contentDigest: z.string().regex(HEX64),
  bytes: z.number().int().nonnegative(),
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export function dagBundleCache(dir: string, options: { maxBytes?: number } = {}): BundleCache {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const fileOf = (folder: string) => path.join(dir, `${sha256(folder).slice(0, 32)}.bundle`);
  const writes = new Set<Promise<void>>();

  return {
    has: (folder) => fs.existsSync(fileOf(folder)),

    find(folder, state) {
      let file: Buffer;
      try {
        file = fs.readFileSync(fileOf(folder));
      } catch {
        return undefined;
      }
      const newline = file.indexOf(0x0a);
      if (newline < 0 || newline > 4096) return undefined;
      let parsed: z.infer<typeof header>;
      try {
        const result = header.safeParse(JSON.parse(file.toString('utf8', 0, newline)), CHECKED_ONCE);
        if (!result.success) return undefined;
        parsed = result.data;
      } catch {
        return undefined;
      }
      if (parsed.folder !== folder || parsed.state !== state) return undefined;
      const data = file.subarray(newline + 1);
      if (data.length !== parsed.bytes || sha256(data) !== parsed.sha256) return undefined;
      return { data, sha256: parsed.sha256, contentDigest: parsed.contentDigest };
    },

    remember(folder, state, bundle) {
      if (bundle.data.length > maxBytes) return;
      const line = JSON.stringify({ format: FORMAT, folder, state, sha256: bundle.sha256, contentDigest: bundle.contentDigest, bytes: bundle.data.length });
      const write = writeAtomically(dir, fileOf(folder), [Buffer.from(`${line}\n`), bundle.data])
        .then(() => prune(dir))
        .catch(() => undefined);
      writes.add(write);
      void write.finally(() => writes.delete(write));
    },

    forget(folder) {
      const removal = new Promise<void>((resolve) => fs.rm(fileOf(folder), { force: true }, () => resolve()));
      writes.add(removal);
      void removal.finally(() => writes.delete(removal));
    },

    async settled() {
      while (writes.size > 0) await Promise.all(writes);
    },
  };
}

/**
 * Callbacks on libuv's threads rather than node:fs/promises, which a DAG-only deploy does not load otherwise (it
 * costs a few ms of start-up: scripts/bundle.mjs LAZY_BUILTINS).
 */
function writeAtomically(dir: string, file: string, parts: Buffer[]): Promise<void> {
  const step = <T>(call: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value as T))));
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  return step<void>((done) => fs.mkdir(dir, { recursive: true }, (error) => done(error)))
    .then(() => step<void>((done) => fs.writeFile(temp, Buffer.concat(parts), { mode: 0o600 }, (error) => done(error))))
    .then(() => step<void>((done) => fs.rename(temp, file, (error) => done(error))))
    .catch((error: unknown) => {
      fs.rm(temp, { force: true }, () => undefined);
      throw error;
    });
}

/** Keeps the MAX_FOLDERS most recently written bundles (and removes temporary files a crash left). */
function prune(dir: string): Promise<void> {
  return new Promise((resolve) => {
    fs.readdir(dir, (error, names) => {
      if (error) return resolve();
      const now = Date.now();
      const kept: { file: string; mtimeMs: number }[] = [];
      for (const name of names) {
        const file = path.join(dir, name);
        try {
          const stat = fs.statSync(file);
          if (name.endsWith('.tmp') && now - stat.mtimeMs > 60_000) fs.rmSync(file, { force: true });
          else if (name.endsWith('.bundle')) kept.push({ file, mtimeMs: stat.mtimeMs });
        } catch {
          // gone meanwhile
        }
      }
      kept.sort((a, b) => b.mtimeMs - a.mtimeMs);
      for (const { file } of kept.slice(MAX_FOLDERS)) fs.rmSync(file, { force: true });
      resolve();
    });
  });
}
