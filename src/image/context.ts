/**
 * The Docker build context: the project directory as a tar stream, filtered in memory the way the Docker CLI
 * filters it with `.dockerignore`. The project is only ever read: leaving `dags/` out of the image (DAG-only
 * deploys) is a filter here, never an edit of the user's `.dockerignore`, so an interrupted deploy cannot leave
 * their project changed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import tarStream from 'tar-stream';
import { UserError } from '../errors.js';
import { relativeInside } from '../util/paths.js';
import { OPEN_FLAGS, readUpTo } from '../util/read-file.js';
import { TarWriter, tarPadding, type TarEntry } from '../util/tar.js';

export interface BuildContextOptions {
  /** Leave the top-level `dags/` folder out entirely (the Deployment receives DAGs through DAG-only deploys). */
  excludeDags?: boolean;
  /** The Dockerfile, relative to the project directory. Defaults to `Dockerfile`. */
  dockerfile?: string;
}

/** One line of a `.dockerignore`, cleaned as Docker cleans it. */
export interface IgnorePattern {
  pattern: string;
  /** A `!pattern` line: re-includes what earlier lines excluded. */
  exception: boolean;
}

/** What happens to one path of the project when the context is sent. */
export type ContextDecision =
  /** Sent as an entry of the tar (directories: with everything below them that is not excluded). */
  | 'send'
  /** Not sent, and nothing below it is looked at. */
  | 'skip'
  /** An excluded directory that an exception pattern reaches into: walked, but only what is re-included is sent. */
  | 'descend';

export interface ContextFilter {
  decide(relativePath: string, isDirectory: boolean): ContextDecision;
  /**
   * The build files (`.dockerignore`, the Dockerfile) that `.dockerignore` excludes but that are sent anyway, for the
   * builder to read: the classic builder then leaves them out of the image, BuildKit fed a tar would not (build.ts).
   */
  readonly keptForBuilder: readonly string[];
}

const DAGS_DIR = 'dags';

// The package is CommonJS whose exports are the factory itself (also exposed as `default`); depending on the loader's
// interop the default import is either, so take whichever is callable.
type DockerignoreFactory = typeof dockerignoreModule.default;
const dockerignore: DockerignoreFactory =
  typeof dockerignoreModule === 'function'
    ? (dockerignoreModule as unknown as DockerignoreFactory)
    : (dockerignoreModule as unknown as { default: DockerignoreFactory }).default;

/** Go's `filepath.Clean` for slash-separated paths, which Docker applies to every pattern. */
function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!rooted) parts.push('..');
      continue;
    }
    parts.push(part);
  }
  const joined = parts.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/**
 * Reads `.dockerignore` text the way Docker does: a UTF-8 BOM is dropped, lines starting with `#` are comments,
 * surrounding whitespace is trimmed, `!` marks an exception, and each pattern is path-cleaned with a leading `/`
 * removed.
 */
export function parseDockerignore(text: string): IgnorePattern[] {
  const patterns: IgnorePattern[] = [];
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  for (const rawLine of body.split(/\r?\n/)) {
    if (rawLine.startsWith('#')) continue;
    let line = rawLine.trim();
    if (line === '') continue;
    let exception = false;
    if (line.startsWith('!')) {
      exception = true;
      line = line.slice(1).trim();
    }
    if (line.length > 0) {
      line = cleanPath(line);
      if (line.length > 1 && line.startsWith('/')) line = line.slice(1);
    }
    patterns.push({ pattern: line, exception });
  }
  return patterns;
}

function toRule(p: IgnorePattern): string {
  return p.exception ? `!${p.pattern}` : p.pattern;
}

function isUnder(relativePath: string, dir: string): boolean {
  return relativePath === dir || relativePath.startsWith(`${dir}/`);
}

/**
 * The decision Docker's CLI makes for each path: `.dockerignore` patterns matched with Docker's own semantics
 * (last matching line wins; a pattern also matches everything below a matching directory), the Dockerfile and
 * `.dockerignore` always kept, and an excluded directory only walked when an exception pattern names something
 * inside it.
 */
export function createContextFilter(patterns: IgnorePattern[], options: BuildContextOptions = {}): ContextFilter {
  const dockerfile = cleanPath((options.dockerfile ?? 'Dockerfile').split(path.sep).join('/'));
  const rules = patterns.filter((p) => p.pattern !== '').map(toRule);
  const base = dockerignore({ ignorecase: false }).add(rules);
  // The CLI re-includes the build files when a pattern would drop them, so the builder can always read them.
  const keep: string[] = [];
  if (base.ignores('.dockerignore')) keep.push('!.dockerignore');
  if (base.ignores(dockerfile)) keep.push(`!${dockerfile}`);
  const matcher = keep.length > 0 ? dockerignore({ ignorecase: false }).add([...rules, ...keep]) : base;
  const exceptions = [...patterns.filter((p) => p.exception && p.pattern !== '').map((p) => p.pattern), ...keep.map((k) => k.slice(1))];

  return {
    keptForBuilder: keep.map((k) => k.slice(1)),
    decide(relativePath, isDirectory) {
      if (relativePath === '.' || relativePath === '') return 'descend';
      if (options.excludeDags === true && isUnder(relativePath, DAGS_DIR)) return 'skip';
      if (!matcher.ignores(relativePath)) return 'send';
      if (!isDirectory || exceptions.length === 0) return 'skip';
      const dirSlash = `${relativePath}/`;
      return exceptions.some((e) => `${e}/`.startsWith(dirSlash)) ? 'descend' : 'skip';
    },
  };
}

/** The patterns of `<projectDir>/.dockerignore`; none when the file does not exist. */
export async function readDockerignore(projectDir: string): Promise<IgnorePattern[]> {
  try {
    return parseDockerignore(await fsp.readFile(path.join(projectDir, '.dockerignore'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`Could not read ${path.join(projectDir, '.dockerignore')}: ${(error as Error).message}`, { cause: error });
  }
}

/** One entry of the build context, as the walk found it. */
export interface ContextEntry extends TarEntry {
  /** A file's bytes, read by the walk; undefined for one too large to hold, read again when the context is sent. */
  data?: Buffer;
}

/**
 * The build context as one walk of the project read it: what the build sends, and its content digest (what the
 * plan compares; see deploy/kernel/digest.ts). The plan and the build share one, so each file is read once and the
 * image is built from the very bytes its inputs digest describes.
 */
export interface ContextSnapshot {
  root: string;
  /** In the order they are sent: folders before what they hold, names sorted, as Docker's CLI walks. */
  entries: ContextEntry[];
  /**
   * Hex SHA-256 over the entries by name, type, executable bit, link target and bytes (not mtimes or owners, which
   * a fresh checkout changes and the build cache ignores too).
   */
  digest: string;
  files: number;
  /** Bytes of file content. */
  bytes: number;
  /** ContextFilter.keptForBuilder of the walk's filter. */
  keptForBuilder: readonly string[];
}

/** Files up to this size are held in memory from the walk to the build, as long as all held stay under HOLD_TOTAL_BYTES. */
const HOLD_FILE_BYTES = 4 * 1024 * 1024;
const HOLD_TOTAL_BYTES = 64 * 1024 * 1024;
/** A file not held is hashed and sent in slices of this size, the event loop running between them. */
const SLICE_BYTES = 4 * 1024 * 1024;
/** The walk lets the event loop run after this many entries (a large project must not stall everything else). */
const BATCH_ENTRIES = 256;
/** The sent stream hands the engine at least this much at a time. */
const CHUNK_BYTES = 256 * 1024;

function readFailure(error: unknown): UserError {
  if (error instanceof UserError) return error;
  return new UserError(`Could not read the project directory for the build: ${(error as Error).message}`, { cause: error });
}

function unsupported(absolute: string, kind: { isFIFO(): boolean; isSocket(): boolean }): UserError {
  const what = kind.isFIFO() ? 'a named pipe' : kind.isSocket() ? 'a socket' : 'a device';
  return new UserError(`Could not read the project directory for the build: ${absolute} is ${what}, which a build context cannot hold.`, {
    nextStep: 'Move it out of the project, or list it in .dockerignore.',
  });
}

function changed(absolute: string): UserError {
  return new UserError(`Could not read the project directory for the build: ${absolute} changed while it was being read.`, {
    nextStep: 'Deploy again once nothing is changing the project.',
  });
}

/** An open file's bytes, a slice at a time; it must be `size` bytes long. */
function* slicesOf(fd: number, absolute: string, size: number): Generator<Buffer> {
  for (let done = 0; done < size;) {
    const slice = readUpTo(fd, Math.min(SLICE_BYTES, size - done), done);
    if (slice.length === 0) throw changed(absolute);
    done += slice.length;
    yield slice;
  }
  if (readUpTo(fd, 1, size).length !== 0) throw changed(absolute);
}

/** A file too large to hold, opened again when the context is sent, a slice at a time; it must still be `size` bytes long. */
function* fileSlices(absolute: string, size: number): Generator<Buffer> {
  const fd = fs.openSync(absolute, OPEN_FLAGS);
  try {
    if (!fs.fstatSync(fd).isFile()) throw changed(absolute);
    yield* slicesOf(fd, absolute, size);
  } finally {
    fs.closeSync(fd);
  }
}

/** The stat of a path that is not a regular file (a folder, a symlink), or undefined when it is gone since the listing. */
function lstatIfThere(absolute: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(absolute);
  } catch (error) {
    // Deleted since the folder was listed: as if it had never been there (as the Docker CLI does).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Walks the project as the build context holds it (the filter's decisions: `.dockerignore`, DAG-only deploys), reading
 * every file once: its bytes are hashed into the digest and, while small, held for the build. Symlinks are sent as
 * links, never followed; a named pipe, socket or device refuses the context. A regular file is only opened (its
 * header fields come from the open descriptor), never stat'ed by name as well.
 */
export async function snapshotBuildContext(projectDir: string, filter: ContextFilter): Promise<ContextSnapshot> {
  const root = path.resolve(projectDir);
  const hash = createHash('sha256');
  const entries: ContextEntry[] = [];
  let files = 0;
  let bytes = 0;
  let held = 0;
  let sinceBreak = 0;

  /** A regular file: hashed, and held when small. */
  const addFile = async (absolute: string, name: string): Promise<void> => {
    let fd: number;
    try {
      fd = fs.openSync(absolute, OPEN_FLAGS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      // The file as it is now: one that grew since the listing is read whole, not cut at its old size.
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw changed(absolute);
      const fields = { name, type: 'file' as const, mode: stat.mode, mtime: stat.mtime, uid: 0, gid: 0 };
      const executable = (stat.mode & 0o111) !== 0 ? 'x' : '-';
      if (stat.size <= HOLD_FILE_BYTES && held + stat.size <= HOLD_TOTAL_BYTES) {
        const data = readUpTo(fd, stat.size);
        held += data.length;
        entries.push({ ...fields, size: data.length, data });
        hash.update(`file\0${name}\0${executable}\0\0${data.length}\0`);
        hash.update(data);
        bytes += data.length;
      } else {
        hash.update(`file\0${name}\0${executable}\0\0${stat.size}\0`);
        for (const slice of slicesOf(fd, absolute, stat.size)) {
          hash.update(slice);
          await new Promise((resolve) => setImmediate(resolve));
        }
        entries.push({ ...fields, size: stat.size });
        bytes += stat.size;
      }
      files++;
    } finally {
      fs.closeSync(fd);
    }
  };

  const walk = async (dir: string, rel: string): Promise<void> => {
    const listed = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const dirent of listed) {
      if (++sinceBreak >= BATCH_ENTRIES) {
        sinceBreak = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const name = rel ? `${rel}/${dirent.name}` : dirent.name;
      const absolute = path.join(dir, dirent.name);
      const first = filter.decide(name, true);
      if (first === 'skip') continue;
      const isDirectory = dirent.isDirectory();
      if (first === 'descend' && !isDirectory && filter.decide(name, false) === 'skip') continue;
      if (dirent.isFile()) {
        await addFile(absolute, name);
        continue;
      }
      if (!isDirectory && !dirent.isSymbolicLink()) throw unsupported(absolute, dirent);
      const stat = lstatIfThere(absolute);
      if (!stat) continue;
      const fields = { name, mode: stat.mode, mtime: stat.mtime, uid: 0, gid: 0 };
      if (stat.isDirectory()) {
        // A folder that an exception pattern only reaches into is walked, but Docker sends no entry for it.
        if (first === 'send') {
          entries.push({ ...fields, type: 'directory', size: 0 });
          hash.update(`directory\0${name}/\0-\0\0${0}\0`);
        }
        await walk(absolute, name);
      } else if (stat.isSymbolicLink()) {
        const linkname = fs.readlinkSync(absolute);
        entries.push({ ...fields, type: 'symlink', size: 0, linkname });
        hash.update(`symlink\0${name}\0-\0${linkname}\0${0}\0`);
      } else {
        throw changed(absolute);
      }
    }
  };
  try {
    await walk(root, '');
  } catch (error) {
    throw readFailure(error);
  }
  return { root, entries, digest: hash.digest('hex'), files, bytes, keptForBuilder: filter.keptForBuilder };
}

/** The snapshot's tar, written as the engine reads it; a file that was too large to hold is read again, in slices. */
async function* contextTar(snapshot: ContextSnapshot): AsyncGenerator<Buffer> {
  const tar = new TarWriter({ digest: false });
  for (const entry of snapshot.entries) {
    if (entry.type !== 'file' || entry.data) {
      tar.entry(entry, entry.data);
      if (tar.pendingBytes >= CHUNK_BYTES) yield tar.take();
      continue;
    }
    tar.fileHeader(entry, entry.size);
    yield tar.take();
    // The consumer's pace (the engine reading the request) lets the event loop run between slices.
    yield* fileSlices(path.join(snapshot.root, entry.name), entry.size);
    const pad = tarPadding(entry.size);
    if (pad) yield pad;
  }
  yield tar.finalize().tar;
}

/**
 * The project directory as an uncompressed tar stream for the engine's build endpoint: entries owned by root (as the
 * Docker CLI sends them), with their permission bits unchanged, folders before their contents, names sorted. Built
 * from `snapshot` when the plan already walked the project with the same options, else from a walk of its own.
 */
export async function createBuildContext(projectDir: string, options: BuildContextOptions = {}, snapshot?: ContextSnapshot): Promise<Readable> {
  return contextStream(await resolveBuildContext(projectDir, options, snapshot));
}

/** The project's build context: `snapshot` when it is of this project, else walked now; the Dockerfile checked. */
export async function resolveBuildContext(projectDir: string, options: BuildContextOptions = {}, snapshot?: ContextSnapshot): Promise<ContextSnapshot> {
  const root = path.resolve(projectDir);
  const dockerfile = options.dockerfile ?? 'Dockerfile';
  const dockerfilePath = path.resolve(root, dockerfile);
  const relativeDockerfile = relativeInside(root, dockerfilePath);
  if (relativeDockerfile === undefined) {
    throw new UserError(`The Dockerfile ${dockerfilePath} is outside the project directory ${root}.`);
  }
  try {
    const stat = await fsp.stat(dockerfilePath);
    if (!stat.isFile()) throw new UserError(`${dockerfilePath} is not a file.`);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`No Dockerfile found at ${dockerfilePath}.`, {
      nextStep: 'Run the command from your Astro project directory (the one with the Dockerfile), or run astro dev init to create a project.',
      cause: error,
    });
  }
  return snapshot?.root === root
    ? snapshot
    : snapshotBuildContext(root, createContextFilter(await readDockerignore(root), { ...options, dockerfile: relativeDockerfile }));
}

/** A snapshot as the uncompressed tar stream the engine's build endpoint reads (one stream per build request). */
export function contextStream(walked: ContextSnapshot): Readable {
  const chunks = contextTar(walked);
  const stream = Readable.from(chunks, { objectMode: false, highWaterMark: CHUNK_BYTES });
  // Errors while sending (a held-back file that changed or went away) read as the walk's own.
  const out = new PassThrough();
  stream.on('error', (error: Error) => out.destroy(readFailure(error)));
  out.on('close', () => stream.destroy());
  stream.pipe(out);
  return out;
}

/** The entry names of a build context, in order (used to show or test what would be sent). */
export async function listBuildContext(projectDir: string, options: BuildContextOptions = {}): Promise<string[]> {
  const stream = await createBuildContext(projectDir, options);
  const extract = tarStream.extract();
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      names.push(header.type === 'directory' ? `${header.name}/` : header.name);
      body.on('end', next);
      body.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
    stream.pipe(extract);
  });
  return names;
}
