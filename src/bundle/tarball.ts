/**
 * The DAG bundle: a gzip-compressed tar of the DAGs folder, built in memory so nothing is ever written into the
 * project (Astronomer's CLI leaves `bundle.tar*` behind when it is interrupted).
 *
 * Entries are files and symlinks only (no directory entries), named `<prefix>/<path>` with forward slashes, sorted,
 * with real modes, owners and mtimes. `.git` (folder or worktree file) is left out at any depth. Symlinks are
 * checked before anything is read: one that leaves the folder, dangles or loops refuses the whole bundle.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { AstroError, UserError } from '../errors.js';
import { throwIfAborted } from '../util/retry.js';
import type { BundleCache } from './bundle-cache.js';
import type { GeneratedBundleFile } from './monitoring.js';
import { TarWriter } from '../util/tar.js';
import { isInside } from '../util/paths.js';
import { OPEN_FLAGS, readUpTo } from '../util/read-file.js';

/** Enough for any real DAGs folder; a bigger one almost always holds data that belongs in include/. */
export const DEFAULT_MAX_BUNDLE_SOURCE_BYTES = 256 * 1024 * 1024;

/** The reference's DAG detection: an unanchored `.py` match on the file name. */
const DAG_FILE_PATTERN = /.py/;

export interface CreateDagBundleOptions {
  /** The DAGs folder (`<project>/dags` or `--dags-path`). */
  sourceDir: string;
  /** Leading folder of every entry; `''` for none (`--no-dags-base-dir`). */
  prefix?: string;
  signal?: AbortSignal;
  /** Refuse when the files to pack add up to more than this many bytes (uncompressed). */
  maxSourceBytes?: number;
  /** Bytes read from the files, then bytes of tar compressed, as they advance (large bundles only report by chunk). */
  onProgress?: (event: BundleProgress) => void;
  /** Files the bundle carries beyond the folder's (e.g. the Hybrid monitoring DAG); one replaces a folder file of its path. */
  generated?: GeneratedBundleFile[];
  /**
   * The bundles made before (bundle-cache.ts): a folder whose files are in the state a kept bundle was made from
   * gets that bundle, and a new bundle is kept for next time.
   */
  cache?: BundleCache;
  /** Pack the files even when the cache kept a bundle of them in this state (the new bundle is kept). */
  fresh?: boolean;
  /** The clock a file's age is measured with (whether it was written too recently for its state to be kept). */
  now?: () => number;
}

export interface BundleProgress {
  stage: 'read' | 'compress';
  bytesDone: number;
  /** Known for compression only: reading does not stat every file first. */
  bytesTotal?: number;
}

export interface DagBundle {
  /** The gzip-compressed tar. */
  data: Buffer;
  bytes: number;
  /** Files and symlinks in the bundle, generated files included. */
  fileCount: number;
  /** The folder's entries whose file name matches the reference's `.py` pattern; 0 means "no DAGs found". */
  dagFileCount: number;
  /** Hex SHA-256 of `data`. */
  sha256: string;
  /** Taken from the cache: the folder's files were in the state this bundle was made from. */
  reused: boolean;
  /**
   * Hex SHA-256 of the entries' names, types, executable bits, link targets and bytes (not mtimes or owners): the
   * deploy plan's DAG digest, the same as reading the tar back with deploy/kernel/digest.ts's tarContentDigest.
   */
  contentDigest: string;
}

interface WalkedEntry {
  /** Path relative to the source folder, forward slashes. */
  rel: string;
  /** For symlinks: the link target as stored in the bundle (relative to the link's folder). */
  linkname?: string;
  /** For symlinks to folders: the real path of that folder. */
  folderTarget?: string;
  /** A generated file: its bytes, not read from the folder. */
  content?: Buffer;
  /** What the pack's fstat (lstat for a link) saw as it read the entry. */
  stat?: fs.Stats;
}

export async function createDagBundle(options: CreateDagBundleOptions): Promise<DagBundle> {
  const { signal } = options;
  const prefix = normalisePrefix(options.prefix ?? 'dags');
  const maxSourceBytes = options.maxSourceBytes ?? DEFAULT_MAX_BUNDLE_SOURCE_BYTES;
  throwIfAborted(signal);

  const root = await resolveSourceDir(options.sourceDir);
  const entries: WalkedEntry[] = [];
  await walk(root, '', options.sourceDir, entries, signal);
  refuseFolderLinkCycles(root, options.sourceDir, entries);
  const folderDagFileCount = countDagFiles(entries);
  for (const file of options.generated ?? []) {
    const at = entries.findIndex((e) => e.rel === file.rel);
    if (at >= 0) entries.splice(at, 1);
    entries.push({ rel: file.rel, content: file.content });
  }
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  // The user's files decide whether the folder is empty: a generated DAG does not make it a DAG folder.
  const counts = { fileCount: entries.length, dagFileCount: folderDagFileCount };

  // A folder with a kept bundle is checked against it first (one lstat per file); any other is packed, and what the
  // pack's fstat calls saw is the state its bundle is kept under.
  const { cache } = options;
  const now = options.now ?? Date.now;
  const hadBundle = cache !== undefined && cache.has(root);
  if (hadBundle && !options.fresh) {
    const state = folderState(prefix, entries, maxSourceBytes, now(), (entry) => lstatOf(`${root}${path.sep}${entry.rel}`));
    const kept = state?.usable ? cache.find(root, state.digest) : undefined;
    if (kept) return { ...kept, bytes: kept.data.length, ...counts, reused: true };
  }

  const { data, contentDigest } = await pack(root, options.sourceDir, entries, prefix, maxSourceBytes, signal, options.onProgress ?? (() => undefined));
  const bundle = { data, contentDigest, sha256: createHash('sha256').update(data).digest('hex') };
  if (cache) {
    const state = folderState(prefix, entries, maxSourceBytes, now(), (entry) => entry.stat);
    if (state?.keep) cache.remember(root, state.digest, bundle);
    else if (hadBundle) cache.forget(root);
  }
  return { ...bundle, bytes: data.length, ...counts, reused: false };
}

function lstatOf(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

/** Files written less than this long ago make a folder state that is not kept (a timestamp's granularity is up to 2 s). */
const SETTLED_MS = 3_000;
/** Bumped whenever the same files would make different bundle bytes (tar layout, compression, what the state holds). */
const BUNDLE_FORMAT = '1';

/**
 * The state of the folder's entries as lstat (or the pack's fstat: the same fields) gives them, hashed: what a kept
 * bundle was made from (bundle-cache.ts).
 * `usable`: every entry is a file or link as the walk saw it, within the size limit (else the pack reports it);
 * `keep`: besides, none was written in the last SETTLED_MS, so a bundle made now may be kept under it.
 */
function folderState(
  prefix: string,
  entries: WalkedEntry[],
  maxSourceBytes: number,
  now: number,
  statOf: (entry: WalkedEntry) => fs.Stats | undefined,
): { digest: string; usable: boolean; keep: boolean } | undefined {
  // Names (and link targets, generated files' digests) as one text, the stat fields as numbers: 1,000 entries hashed
  // as two buffers, not 1,000 strings of formatted numbers.
  const names: string[] = [BUNDLE_FORMAT, prefix];
  const fields = new Float64Array(entries.length * STAT_FIELDS);
  let bytes = 0;
  let newest = 0;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.content !== undefined) {
      names.push(`g\0${entry.rel}\0${createHash('sha256').update(entry.content).digest('hex')}`);
      continue;
    }
    const stat = statOf(entry);
    if (!stat) return undefined;
    const link = entry.linkname !== undefined;
    if (link ? !stat.isSymbolicLink() : !stat.isFile()) return undefined;
    names.push(link ? `l\0${entry.rel}\0${entry.linkname}` : `f\0${entry.rel}`);
    bytes += link ? 0 : stat.size;
    newest = Math.max(newest, stat.mtimeMs, stat.ctimeMs);
    const at = i * STAT_FIELDS;
    fields[at] = stat.size;
    fields[at + 1] = stat.mode;
    fields[at + 2] = stat.uid;
    fields[at + 3] = stat.gid;
    fields[at + 4] = stat.mtimeMs;
    fields[at + 5] = stat.ctimeMs;
    fields[at + 6] = stat.ino;
    fields[at + 7] = stat.dev;
  }
  const digest = createHash('sha256').update(names.join('\n')).update(new Uint8Array(fields.buffer)).digest('hex');
  const usable = bytes <= maxSourceBytes;
  return { digest, usable, keep: usable && now - newest >= SETTLED_MS };
}

/** Size, mode, uid, gid, mtime, ctime, inode and device: what the state holds of each file or link. */
const STAT_FIELDS = 8;

function countDagFiles(entries: WalkedEntry[]): number {
  return entries.filter((e) => DAG_FILE_PATTERN.test(path.posix.basename(e.rel))).length;
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\\/g, '/').replace(/^\/+|\/+$/g, '');
  if (trimmed.split('/').some((part) => part === '..' || part === '.')) {
    throw new UserError(`The DAG bundle folder name "${prefix}" is not a plain folder name.`);
  }
  return trimmed;
}

async function resolveSourceDir(sourceDir: string): Promise<string> {
  let real: string;
  try {
    real = fs.realpathSync.native(sourceDir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new UserError(`The DAGs folder ${sourceDir} does not exist.`, {
        nextStep: 'Create it, or pass --dags-path with the folder that holds your DAGs.',
        cause: error,
      });
    }
    throw new UserError(`Cannot open the DAGs folder ${sourceDir}: ${describeErrno(error)}.`, { cause: error });
  }
  const stat = fs.statSync(real);
  if (!stat.isDirectory()) {
    throw new UserError(`The DAGs path ${sourceDir} is not a folder.`, {
      nextStep: 'Pass --dags-path with the folder that holds your DAGs.',
    });
  }
  return real;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Shows a file name that is not valid UTF-8 with its bad bytes escaped, so the user can find it. */
function escapeName(name: Buffer): string {
  let out = '';
  for (const byte of name) out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return out;
}

async function walk(root: string, relDir: string, shownRoot: string, out: WalkedEntry[], signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  const absDir = relDir === '' ? root : path.join(root, relDir);
  let dirents: fs.Dirent<Buffer>[];
  try {
    dirents = fs.readdirSync(absDir, { withFileTypes: true, encoding: 'buffer' });
  } catch (error) {
    throw new UserError(`Cannot read the folder ${shown(shownRoot, relDir)}: ${describeErrno(error)}.`, { cause: error });
  }
  const subdirs: string[] = [];
  for (const dirent of dirents) {
    let name: string;
    try {
      name = utf8.decode(dirent.name);
    } catch {
      // Airflow, the tar headers (PAX paths are UTF-8) and the deployment's file system all expect UTF-8 names;
      // a lossy rename would deploy a file under a name that does not exist locally.
      throw new UserError(`The file name ${shown(shownRoot, relDir)}/${escapeName(dirent.name)} is not valid UTF-8.`, {
        nextStep: 'Rename it (or move it out of the DAGs folder) and deploy again.',
      });
    }
    if (name === '.git') continue;
    const rel = relDir === '' ? name : `${relDir}/${name}`;
    if (dirent.isDirectory()) subdirs.push(rel);
    else if (dirent.isFile()) out.push({ rel });
    else if (dirent.isSymbolicLink()) out.push({ rel, ...(await checkSymlink(root, rel, shownRoot)) });
    else {
      throw new UserError(`Cannot bundle ${shown(shownRoot, rel)}: it is ${describeSpecialFile(dirent)}, not a regular file.`, {
        nextStep: 'Move it out of the DAGs folder and deploy again.',
      });
    }
  }
  for (const sub of subdirs) await walk(root, sub, shownRoot, out, signal);
}

function describeSpecialFile(dirent: fs.Dirent<Buffer>): string {
  if (dirent.isFIFO()) return 'a named pipe (FIFO)';
  if (dirent.isSocket()) return 'a socket';
  if (dirent.isCharacterDevice()) return 'a character device';
  if (dirent.isBlockDevice()) return 'a block device';
  return 'a special file';
}

/**
 * A symlink may stay only when it resolves inside the folder, to something that exists, without a loop. It is stored
 * relative to its own folder, so an absolute or roundabout link still works once the bundle is unpacked elsewhere.
 */
async function checkSymlink(root: string, rel: string, shownRoot: string): Promise<{ linkname: string; folderTarget?: string }> {
  const abs = path.join(root, rel);
  const shownLink = path.join(shownRoot, rel);
  const literal = fs.readlinkSync(abs);
  let target: string;
  try {
    target = fs.realpathSync.native(abs);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ELOOP') {
      throw new UserError(`bundle validation failed: symlink ${shownLink} is part of a symlink loop (it points to ${literal}).`, {
        nextStep: 'Fix or remove the link and deploy again.',
        cause: error,
      });
    }
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UserError(`bundle validation failed: symlink ${shownLink} points to ${literal}, which does not exist.`, {
        nextStep: 'Fix or remove the dangling link and deploy again.',
        cause: error,
      });
    }
    throw new UserError(`bundle validation failed: cannot resolve symlink ${shownLink}: ${describeErrno(error)}.`, { cause: error });
  }
  if (!isInside(root, target)) {
    throw new UserError(`bundle validation failed: symlink ${shownLink} points to ${target} which is outside the bundle directory ${root}`, {
      nextStep: 'Copy what it points to into the DAGs folder, or remove the link, and deploy again.',
    });
  }
  const linkDir = path.dirname(abs);
  const isDir = fs.statSync(target).isDirectory();
  if (isDir && isInside(target, linkDir)) {
    // Airflow walks the DAGs folder following links: a link to a folder that contains it never ends.
    throw new UserError(`bundle validation failed: symlink ${shownLink} points to ${literal}, a folder that contains the link, which makes a loop.`, {
      nextStep: 'Remove the link and deploy again.',
    });
  }
  return { linkname: path.relative(linkDir, target).split(path.sep).join('/') || '.', folderTarget: isDir ? target : undefined };
}

/**
 * Folder links can also loop together: a/x -> ../b and b/y -> ../a send a walker that follows links (Airflow does)
 * round forever. Link j is reachable from link i when j lies inside i's target; a cycle in that graph is a loop.
 */
function refuseFolderLinkCycles(root: string, shownRoot: string, entries: WalkedEntry[]): void {
  const links = entries.filter((e) => e.folderTarget !== undefined);
  if (links.length < 2) return;
  const next = links.map((from) => links.filter((to) => isInside(from.folderTarget!, path.join(root, path.dirname(to.rel)))));
  const state = new Map<WalkedEntry, 'open' | 'done'>();
  const visit = (link: WalkedEntry, trail: WalkedEntry[]): void => {
    if (state.get(link) === 'done') return;
    if (state.get(link) === 'open') {
      const cycle = trail.slice(trail.indexOf(link)).map((l) => `${path.join(shownRoot, l.rel)} -> ${l.linkname}`);
      throw new UserError(`bundle validation failed: the symlinks ${cycle.join(', ')} lead into each other, which makes a loop.`, {
        nextStep: 'Remove one of the links and deploy again.',
      });
    }
    state.set(link, 'open');
    for (const to of next[links.indexOf(link)]!) visit(to, [...trail, link]);
    state.set(link, 'done');
  };
  for (const link of links) visit(link, []);
}

/** Between batches the event loop runs, so Ctrl-C is seen promptly even while a large folder is read. */
const BATCH_FILES = 256;
const BATCH_BYTES = 32 * 1024 * 1024;
/**
 * A single large file is read, and a large tar compressed, in slices of this size with the signal checked in
 * between: reading 200 MB and gzipping it in one call each kept a Ctrl-C waiting for seconds.
 */
const SLICE_BYTES = 4 * 1024 * 1024;
/** Below this, one zlib call is fastest and over before anyone could press Ctrl-C. */
const ONE_SHOT_GZIP_BYTES = 16 * 1024 * 1024;

/** Lets the event loop run (a signal handler may abort), then stops if it did. */
async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  throwIfAborted(signal);
}

/**
 * Files are read synchronously, in sorted order, straight into the tar writer. For 1,000 small DAG files on a busy
 * 2-core machine, tar-fs (one asynchronous lstat/open/read/close chain per file, one entry at a time) with a
 * streaming gzip took 200-350 ms, tar-stream's packer 60-90 ms warm; see tar.ts for what the writer saves on top.
 * A small tar is compressed in one zlib call. Once a batch of files is in (BATCH_FILES or BATCH_BYTES), the tar so
 * far goes to a zlib stream, which compresses it on zlib's threads while the next files are read (a 1,000-file
 * folder waited about 7 ms for its one call after the last read); past ONE_SHOT_GZIP_BYTES the rest waits for the end.
 */
async function pack(
  root: string,
  shownRoot: string,
  entries: WalkedEntry[],
  prefix: string,
  maxSourceBytes: number,
  signal: AbortSignal | undefined,
  onProgress: (event: BundleProgress) => void,
): Promise<{ data: Buffer; contentDigest: string }> {
  const tar = new TarWriter();
  let gzip: Compression | undefined;
  try {
    let sourceBytes = 0;
    let batchFiles = 0;
    let batchBytes = 0;
    for (const entry of entries) {
      // Not path.join: the walk made `rel` clean, and joining 1,000 names cost about 2 ms of a bundle.
      const abs = `${root}${path.sep}${entry.rel}`;
      const name = prefix === '' ? entry.rel : `${prefix}/${entry.rel}`;
      if (entry.content !== undefined) {
        tar.entry({ name, type: 'file', size: entry.content.length, mode: 0o644, mtime: new Date(), uid: 0, gid: 0 }, entry.content);
        continue;
      }
      if (entry.linkname !== undefined) {
        const stat = lstatOrRefuse(abs, shownRoot, entry.rel);
        entry.stat = stat;
        tar.entry({ name, type: 'symlink', linkname: entry.linkname, size: 0, mode: stat.mode, mtime: stat.mtime, uid: stat.uid, gid: stat.gid });
        continue;
      }
      const before = sourceBytes;
      const read = readRegularFile(abs, shownRoot, entry.rel, { remaining: maxSourceBytes - sourceBytes, max: maxSourceBytes }, signal, (done) =>
        onProgress({ stage: 'read', bytesDone: before + done }),
      );
      const { stat, data } = read instanceof Promise ? await read : read;
      entry.stat = stat;
      sourceBytes += data.length;
      tar.entry({ name, type: 'file', size: data.length, mode: stat.mode, mtime: stat.mtime, uid: stat.uid, gid: stat.gid }, data);
      batchFiles++;
      batchBytes += data.length;
      if (batchFiles >= BATCH_FILES || batchBytes >= BATCH_BYTES) {
        batchFiles = 0;
        batchBytes = 0;
        // Only while the tar is small: a large one is compressed at the end, in slices a Ctrl-C can stop between.
        if ((gzip?.added ?? 0) + tar.pendingBytes <= ONE_SHOT_GZIP_BYTES) {
          gzip ??= compression();
          gzip.add(tar.take());
        }
        await new Promise((resolve) => setImmediate(resolve));
        throwIfAborted(signal);
      }
    }
    const { tar: rest, contentDigest } = tar.finalize();
    throwIfAborted(signal);
    if (gzip === undefined && rest.length <= ONE_SHOT_GZIP_BYTES) {
      const data = await new Promise<Buffer>((resolve, reject) => {
        zlib.gzip(rest, (error, result) => (error ? reject(error) : resolve(result)));
      });
      throwIfAborted(signal);
      return { data, contentDigest };
    }
    gzip ??= compression();
    const data = await gzip.finish(rest, signal, onProgress);
    throwIfAborted(signal);
    return { data, contentDigest };
  } catch (error) {
    gzip?.destroy();
    throw error;
  }
}

/** zlib's gzip stream: the tar handed over as it is written, the rest fed a slice at a time at the end. */
interface Compression {
  /** Compresses `bytes` on zlib's threads; returns at once. */
  add(bytes: Buffer): void;
  /** Bytes handed over by add. */
  readonly added: number;
  /**
   * Feeds the rest a slice at a time, the signal checked between slices (on abort the stream is destroyed instead
   * of compressing what is left: at most one slice is compressed after a Ctrl-C), and returns the whole gzip.
   */
  finish(rest: Buffer, signal: AbortSignal | undefined, onProgress: (event: BundleProgress) => void): Promise<Buffer>;
  destroy(): void;
}

function compression(): Compression {
  const gzip = zlib.createGzip();
  const out: Buffer[] = [];
  let added = 0;
  gzip.on('data', (chunk: Buffer) => out.push(chunk));
  const finished = new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
  });
  // Awaited by finish(); a failure before then surfaces there (or not at all, once destroyed).
  finished.catch(() => undefined);
  return {
    add: (bytes) => {
      added += bytes.length;
      gzip.write(bytes);
    },
    get added() {
      return added;
    },
    finish: async (rest, signal, onProgress) => {
      const total = added + rest.length;
      for (let offset = 0; offset < rest.length; offset += SLICE_BYTES) {
        const slice = rest.subarray(offset, Math.min(offset + SLICE_BYTES, rest.length));
        // The callback comes once zlib has taken the slice in.
        await new Promise<void>((resolve, reject) => gzip.write(slice, (error) => (error ? reject(error) : resolve())));
        onProgress({ stage: 'compress', bytesDone: added + offset + slice.length, bytesTotal: total });
        await checkpoint(signal);
      }
      gzip.end();
      await finished;
      return Buffer.concat(out);
    },
    destroy: () => gzip.destroy(),
  };
}

interface FileRead {
  stat: fs.Stats;
  data: Buffer;
}

/**
 * A regular file's stat and bytes, refused if it is not a regular file any more or would pass the budget. A file up
 * to SLICE_BYTES is read at once, without a turn of the event loop (a DAGs folder is mostly such files: one promise
 * and one more fstat each, as fs.readFileSync(fd) makes, were a tenth of a 1,000-file bundle); a larger one in
 * slices, the signal checked between them.
 */
function readRegularFile(
  abs: string,
  shownRoot: string,
  rel: string,
  budget: { remaining: number; max: number },
  signal: AbortSignal | undefined,
  onRead: (bytes: number) => void,
): FileRead | Promise<FileRead> {
  let fd: number;
  try {
    fd = fs.openSync(abs, OPEN_FLAGS);
  } catch (error) {
    throw readError(error, shownRoot, rel);
  }
  const refused = (error: unknown) => (error instanceof AstroError ? error : readError(error, shownRoot, rel));
  let closeNow = true;
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw changedWhileReading(shownRoot, rel);
    if (stat.size > budget.remaining) throw tooLarge(shownRoot, budget.max);
    if (stat.size <= SLICE_BYTES) return { stat, data: readUpTo(fd, stat.size) };
    closeNow = false;
    return readInSlices(fd, stat.size, budget.remaining, signal, onRead)
      .then((data) => {
        if (data.length > budget.remaining) throw tooLarge(shownRoot, budget.max);
        return { stat, data };
      })
      .catch((error: unknown) => {
        throw refused(error);
      })
      .finally(() => fs.closeSync(fd));
  } catch (error) {
    throw refused(error);
  } finally {
    if (closeNow) fs.closeSync(fd);
  }
}

/** Reads a large file a slice at a time, checking the signal between slices; growth past `limit` stops early. */
async function readInSlices(fd: number, size: number, limit: number, signal: AbortSignal | undefined, onRead: (bytes: number) => void): Promise<Buffer> {
  const slices: Buffer[] = [];
  let total = 0;
  for (;;) {
    // The size may change while we read: read until the end of the file, whatever the stat said.
    const slice = Buffer.allocUnsafe(Math.min(SLICE_BYTES, Math.max(size - total, 64 * 1024)));
    const n = fs.readSync(fd, slice, 0, slice.length, total);
    if (n === 0) break;
    slices.push(n === slice.length ? slice : slice.subarray(0, n));
    total += n;
    onRead(total);
    if (total > limit) break;
    await checkpoint(signal);
  }
  return Buffer.concat(slices, total);
}

function lstatOrRefuse(abs: string, shownRoot: string, rel: string): fs.Stats {
  try {
    const stat = fs.lstatSync(abs);
    if (!stat.isSymbolicLink()) throw changedWhileReading(shownRoot, rel);
    return stat;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw readError(error, shownRoot, rel);
  }
}

function tooLarge(shownRoot: string, maxSourceBytes: number): UserError {
  return new UserError(`The DAGs folder ${shownRoot} holds more than ${formatBytes(maxSourceBytes)} of files, too much for a DAG bundle.`, {
    nextStep: 'Keep data files out of the DAGs folder (for example in include/, which goes into the image) and deploy again.',
  });
}

function changedWhileReading(shownRoot: string, rel: string): UserError {
  return new UserError(`${shown(shownRoot, rel)} changed while the DAG bundle was being built.`, {
    nextStep: 'Deploy again once nothing is changing the DAGs folder.',
  });
}

function readError(error: unknown, shownRoot: string, rel: string): UserError {
  const code = errnoCode(error);
  if (code === 'ENOENT' || code === 'ELOOP') return changedWhileReading(shownRoot, rel);
  return new UserError(`Cannot read ${shown(shownRoot, rel)}: ${describeErrno(error)}.`, {
    nextStep: 'Fix its permissions or move it out of the DAGs folder.',
    cause: error,
  });
}

function shown(root: string, rel: string): string {
  return rel === '' ? root : path.join(root, rel);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round((bytes / 1024) * 10) / 10} KiB`;
  return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
};

function describeErrno(error: unknown): string {
  const code = errnoCode(error);
  if (code === undefined) return error instanceof Error ? error.message : String(error);
  return `${ERRNO_TEXT[code] ?? 'system error'} (${code})`;
}
