/**
 * The Docker build context: the project directory as a tar stream, filtered in memory the way the Docker CLI
 * filters it with `.dockerignore`. The project is only ever read: leaving `dags/` out of the image (DAG-only
 * deploys) is a filter here, never an edit of the user's `.dockerignore`, so an interrupted deploy cannot leave
 * their project changed.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import tarFs from 'tar-fs';
import tarStream from 'tar-stream';
import { UserError } from '../errors.js';
import { relativeInside } from '../util/paths.js';

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

/** tar-fs options it supports at run time but its type definitions lack. */
interface PackExtras {
  umask?: number;
  sort?: boolean;
}

/**
 * The project directory as an uncompressed tar stream for the engine's build endpoint. Entries are sent in
 * lexical order, owned by root (as the Docker CLI sends them), with their permission bits unchanged.
 */
export async function createBuildContext(projectDir: string, options: BuildContextOptions = {}): Promise<Readable> {
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

  const filter = createContextFilter(await readDockerignore(root), { ...options, dockerfile: relativeDockerfile });
  const relative = (absolute: string) => path.relative(root, absolute).split(path.sep).join('/');
  // Directories that are walked only for what exceptions re-include: Docker sends no entry for them.
  const walkedOnly = new Set<string>(['.']);

  const ignore = (absolute: string): boolean => {
    const rel = relative(absolute);
    // Only a path that an exception pattern reaches into needs to know whether it is a directory.
    const first = filter.decide(rel, true);
    if (first !== 'descend') return first === 'skip';
    let isDirectory: boolean;
    try {
      isDirectory = fs.lstatSync(absolute).isDirectory();
    } catch {
      return true;
    }
    if (!isDirectory) return filter.decide(rel, false) === 'skip';
    walkedOnly.add(rel);
    return false;
  };

  const pack = tarStream.pack();
  const addEntry = pack.entry.bind(pack);
  // tar-fs emits every directory it walks; drop the ones Docker would not send (the root, walked-only ones).
  pack.entry = ((header: tarStream.Header, ...rest: unknown[]) => {
    if (header.type === 'directory' && walkedOnly.has(header.name)) {
      const callback = rest[rest.length - 1];
      if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)());
      return undefined as unknown as ReturnType<typeof addEntry>;
    }
    return (addEntry as (...args: unknown[]) => ReturnType<typeof addEntry>)(header, ...rest);
  }) as typeof pack.entry;

  const packOptions: tarFs.PackOptions & PackExtras = {
    pack,
    ignore,
    umask: 0,
    sort: true,
    map: (header) => {
      const h = header as tarFs.Headers & { uname?: string; gname?: string };
      h.uid = 0;
      h.gid = 0;
      h.uname = '';
      h.gname = '';
      return h;
    },
  };
  const packed = tarFs.pack(root, packOptions) as unknown as tarStream.Pack;
  // tar-stream produces a streamx stream; callers get a plain Node stream, and destroying it stops the walk.
  const out = new PassThrough();
  packed.on('error', (error: Error) => out.destroy(new UserError(`Could not read the project directory for the build: ${error.message}`, { cause: error })));
  out.on('close', () => packed.destroy());
  packed.pipe(out);
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
