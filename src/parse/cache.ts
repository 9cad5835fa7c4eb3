/**
 * The parse cache. A file's verdict is reused when the file, every project file and directory its import read, the
 * interpreter or image, the harness and the environment are all unchanged. A run with everything unchanged starts
 * no Python at all: the DAG folder's listing is cached too, keyed by a snapshot of the folder's tree.
 *
 * Layout under <cacheDir>/parse:
 *   stat/<project hash>.json        content hashes remembered by (size, mtime, ctime, inode)
 *   runs/<key>/state.json           the last run: DagBag's file list for a snapshot of the DAG folder, and each
 *                                   file's harness result with the project files its import read
 *   db/<identity>.db                an initialised Airflow metadata database to copy instead of re-creating it
 */
import { createHash } from 'node:crypto';
import fsSync, { type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { readSealedJsonFile, writeSealedJsonFileAtomic } from '../util/json-file.js';
import {
  fileMessage,
  helloMessage,
  listingMessage,
  partialListing,
  type FileMessage,
  type HelloMessage,
  type ListingMessage,
  type PartialListing,
} from './schema.js';

/** What the harness says an import read (HelloMessage's and FileMessage's `deps`). */
type HarnessDeps = HelloMessage['deps'];

export const CACHE_FORMAT = 2;
/** How many run keys (environments, interpreters, projects) are kept before the oldest are dropped. */
const MAX_RUN_KEYS = 24;
/** A file modified this recently might change again within the same timestamp tick: never trust its stat. */
const RACY_WINDOW_MS = 2000;

export function sha256(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

const statEntry = z.object({ size: z.number(), mtimeMs: z.number(), ctimeMs: z.number(), ino: z.number(), hash: z.string() });
const statMemo = z.record(z.string(), statEntry);

/**
 * The seals of the cache's two large files name the shape of their data (util/json-file.ts: a file sealed for the
 * same shape is read without validating it again). Each is the sha256 of its schema's JSON Schema:
 * test/unit/parse/cache-seal.test.ts computes them, and fails with the new value when a schema changes.
 */
export const SEAL_KEYS = {
  stat: 'parse-stat:3533a5dab55239a985b7528aa5fadba57a54705df1618a0e48f12494928d2a65',
  state: 'parse-state:9f7e935041ff47596e80be4fba04afc0d3d694e733a5c22d72bd68e1b884ea54',
} as const;

/** Content hashes of project files and directory listings, remembered by stat so unchanged files are not re-read. */
export class ContentHasher {
  private memo: Record<string, z.infer<typeof statEntry>> = {};
  private dirty = false;

  constructor(private readonly memoFile: string) {}

  async load(): Promise<void> {
    this.memo = (await readSealedJsonFile(this.memoFile, statMemo, SEAL_KEYS.stat)) ?? {};
  }

  async save(): Promise<void> {
    if (this.dirty) await writeSealedJsonFileAtomic(this.memoFile, this.memo, SEAL_KEYS.stat);
    this.dirty = false;
  }

  /**
   * sha256 of the file's content, or null when it does not exist (absence is a state worth remembering too). The
   * stat is synchronous (metadata, from the kernel's caches: a promise per stat cost more than the stat); only a
   * file whose stat changed is read.
   */
  async hashFile(file: string): Promise<string | null> {
    let stat: Stats;
    try {
      stat = fsSync.statSync(file);
    } catch {
      return null;
    }
    if (!stat.isFile()) return stat.isDirectory() ? 'directory' : 'other';
    return this.rememberedHash(file, stat) ?? this.readHash(file, stat);
  }

  /** The content hash remembered for a regular file whose stat (`stat`, taken by the caller) still matches it. */
  rememberedHash(file: string, stat: Stats): string | undefined {
    const known = this.memo[file];
    const same = known !== undefined && known.size === stat.size && known.mtimeMs === stat.mtimeMs && known.ctimeMs === stat.ctimeMs && known.ino === stat.ino;
    return same ? known.hash : undefined;
  }

  /** Reads a regular file and hashes it, remembering the hash by `stat` unless the file changed too recently. */
  async readHash(file: string, stat: Stats): Promise<string | null> {
    let content: Buffer;
    try {
      content = await fs.readFile(file);
    } catch {
      return null;
    }
    const hash = createHash('sha256').update(content).digest('hex');
    if (Date.now() - stat.mtimeMs > RACY_WINDOW_MS) {
      this.memo[file] = { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, hash };
      this.dirty = true;
    }
    return hash;
  }

  /** Hash of a directory's sorted entry names (those `listing` counts, when given), null when absent. */
  async hashDir(dir: string, listing?: PartialListing): Promise<string | null> {
    return listingHash(dir, listing);
  }
}

/** Whether a folder entry counts for a partial listing (counted_name in python/astro_parse/worker.py). */
function countedName(name: string, listing: PartialListing): boolean {
  if (listing.modules.includes(name.split('.', 1)[0]!)) return true;
  const low = name.toLowerCase();
  return listing.metadata && (/\.(dist-info|egg-info|egg)$/.test(low) || low === 'egg-info');
}

/**
 * sha256 of a folder's sorted entry names (only those `listing` counts, when given), each followed by a NUL (sha256
 * above); null when it cannot be listed. The harness computes the same in Python (listing_hash in worker.py).
 */
export function listingHash(dir: string, listing?: PartialListing): string | null {
  let names: string[];
  try {
    names = fsSync.readdirSync(dir);
  } catch {
    return null;
  }
  return sha256(...(listing ? names.filter((name) => countedName(name, listing)) : names).sort());
}

export interface TreeSnapshot {
  key: string;
  /** Absolute path → content hash, for every file below the folder (symlinks followed, as Airflow does). */
  files: Map<string, string>;
}

/**
 * A snapshot of everything that decides which files DagBag lists: every path and content below the folder. The
 * walk and the stats are synchronous (metadata only, answered from the kernel's caches); only files whose stat
 * changed are read, concurrently.
 */
export async function snapshotTree(root: string, hasher: ContentHasher): Promise<TreeSnapshot> {
  const files = new Map<string, string>();
  const toRead: [string, Stats][] = [];
  const seen = new Set<string>();
  const walk = (dir: string): void => {
    let entries: fsSync.Dirent[];
    try {
      const real = fsSync.realpathSync(dir);
      if (seen.has(real)) return;
      seen.add(real);
      entries = fsSync.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      // One stat per file (the link's target for a symlink, followed as Airflow does): the type and the memo's key.
      let stat: Stats | undefined;
      if (entry.isSymbolicLink() || entry.isFile()) {
        try {
          stat = fsSync.statSync(full);
        } catch {
          continue;
        }
      }
      const isDir = stat ? stat.isDirectory() : entry.isDirectory();
      // Bytecode caches are written by every import and never hold DAG files.
      if (isDir && entry.name !== '__pycache__') walk(full);
      else if (stat?.isFile()) {
        const known = hasher.rememberedHash(full, stat);
        if (known !== undefined) files.set(full, known);
        else toRead.push([full, stat]);
      }
    }
  };
  walk(root);
  await Promise.all(
    toRead.map(async ([file, stat]) => {
      const hash = await hasher.readHash(file, stat);
      if (hash !== null) files.set(file, hash);
    }),
  );
  const sorted = [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { key: sha256(root, ...sorted.map(([file, hash]) => `${file}\0${hash}`)), files };
}

const dependency = z.object({ path: z.string(), hash: z.string().nullable() });
/** A folder of which only some names count, with the hash of those names as they were (listingHash). */
export const hashedListing = partialListing.extend({ hash: z.string().nullable() });
const dependencies = z.object({ files: z.array(dependency), dirs: z.array(dependency), listings: z.array(hashedListing) });
type Dependencies = z.infer<typeof dependencies>;

const fileEntry = z.object({ contentHash: z.string(), message: fileMessage, deps: dependencies });
export type FileEntry = z.infer<typeof fileEntry>;

/** Everything one run learned, in one file: a warm run reads just this (and stats the project). */
const runState = z.object({
  format: z.literal(CACHE_FORMAT),
  treeKey: z.string(),
  hello: helloMessage,
  listing: listingMessage,
  startupDeps: dependencies,
  /** The sandbox's network isolation when these results were produced. */
  network: z.enum(['none', 'host']),
  /** How DAG code saw the project, and the process cap, when these results were produced. */
  sandbox: z.object({
    projectView: z.enum(['overlay', 'copy', 'read-only', 'direct']),
    pidsLimit: z.number().int().positive().nullable(),
  }),
  /** Keyed by the path as the harness saw it. */
  files: z.record(z.string(), fileEntry),
});
export type RunState = z.infer<typeof runState>;

/** The schemas of the sealed files, for the test that derives SEAL_KEYS from them. */
export const sealedSchemas = { stat: statMemo, state: runState } as const;

type ToHost = (harnessPath: string) => string | null;

export class ParseCache {
  readonly hasher: ContentHasher;
  private readonly runDir: string;

  constructor(
    private readonly root: string,
    projectDir: string,
    runKey: string,
  ) {
    this.hasher = new ContentHasher(path.join(root, 'stat', `${sha256(projectDir).slice(0, 32)}.json`));
    this.runDir = path.join(root, 'runs', runKey);
  }

  async load(): Promise<void> {
    await this.hasher.load();
  }

  async loadState(): Promise<RunState | undefined> {
    return readSealedJsonFile(path.join(this.runDir, 'state.json'), runState, SEAL_KEYS.state);
  }

  /** Whether everything Airflow read from the project while starting is unchanged since that run. */
  async startupUnchanged(state: RunState, toHost: ToHost): Promise<boolean> {
    return this.dependenciesUnchanged(state.startupDeps, toHost);
  }

  /** The stored entry for this file content, if every project file and directory its import read is unchanged. */
  async reusable(state: RunState, harnessPath: string, contentHash: string, toHost: ToHost): Promise<FileEntry | undefined> {
    const entry = state.files[harnessPath];
    if (entry === undefined || entry.contentHash !== contentHash) return undefined;
    return (await this.dependenciesUnchanged(entry.deps, toHost)) ? entry : undefined;
  }

  /** A fresh result, with the current hashes of what its import read. */
  async entryFor(message: FileMessage, contentHash: string, toHost: ToHost): Promise<FileEntry> {
    return { contentHash, message, deps: await this.hashDependencies(message.deps, toHost) };
  }

  async saveState(
    treeKey: string,
    hello: HelloMessage,
    listing: ListingMessage,
    files: Record<string, FileEntry>,
    toHost: ToHost,
    network: 'none' | 'host',
    sandbox: RunState['sandbox'],
  ): Promise<void> {
    const state: RunState = {
      format: CACHE_FORMAT,
      treeKey,
      hello,
      listing,
      startupDeps: await this.hashDependencies(hello.deps, toHost),
      network,
      sandbox,
      files,
    };
    await writeSealedJsonFileAtomic(path.join(this.runDir, 'state.json'), state, SEAL_KEYS.state);
  }

  private async hashDependencies(deps: HarnessDeps | undefined, toHost: ToHost): Promise<Dependencies> {
    const files = await Promise.all(
      (deps?.files ?? []).map(async (dep) => {
        const host = toHost(dep);
        return { path: dep, hash: host === null ? null : await this.hasher.hashFile(host) };
      }),
    );
    const dirs = await Promise.all(
      (deps?.dirs ?? []).map(async (dep) => {
        const host = toHost(dep);
        return { path: dep, hash: host === null ? null : await this.hasher.hashDir(host) };
      }),
    );
    const listings = await Promise.all(
      (deps?.listings ?? []).map(async (listing) => {
        const host = toHost(listing.path);
        return { ...listing, hash: host === null ? null : await this.hasher.hashDir(host, listing) };
      }),
    );
    return { files, dirs, listings };
  }

  private async dependenciesUnchanged(deps: Dependencies, toHost: ToHost): Promise<boolean> {
    for (const dep of deps.files) {
      const host = toHost(dep.path);
      if (host !== null && (await this.hasher.hashFile(host)) !== dep.hash) return false;
    }
    for (const dep of deps.dirs) {
      const host = toHost(dep.path);
      if (host !== null && (await this.hasher.hashDir(host)) !== dep.hash) return false;
    }
    for (const dep of deps.listings) {
      const host = toHost(dep.path);
      if (host !== null && (await this.hasher.hashDir(host, dep)) !== dep.hash) return false;
    }
    return true;
  }

  async finish(): Promise<void> {
    await this.hasher.save();
    await fs.utimes(this.runDir, new Date(), new Date()).catch(() => undefined);
    await pruneRuns(path.join(this.root, 'runs'));
  }
}

async function pruneRuns(runsDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(runsDir);
  } catch {
    return;
  }
  if (names.length <= MAX_RUN_KEYS) return;
  const dated = await Promise.all(
    names.map(async (name) => ({ name, mtimeMs: (await fs.stat(path.join(runsDir, name)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  dated.sort((a, b) => b.mtimeMs - a.mtimeMs);
  await Promise.all(dated.slice(MAX_RUN_KEYS).map((old) => fs.rm(path.join(runsDir, old.name), { recursive: true, force: true })));
}
