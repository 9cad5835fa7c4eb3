/**
 * Standbys: the next run's harness, started ahead. Every run that starts Python pays Python's start, Airflow's
 * import and its one-time set-up before its first file (0.26x / 0.47x of a whole DagBag() on Airflow 2 / 3). After a
 * `dev parse` at a terminal, astro starts the next run's sandboxed harness in the background, exactly as a run
 * starts it (the same sandbox, environment and interpreter), and it waits, with Airflow imported and warmed up, for
 * one job on a socket in its own run folder. The next run with the same key (the parse cache's run key: interpreter,
 * harness, project, environment, limits) claims it by renaming its record (two runs never share one), sends the job
 * and reads the results as from a harness of its own; the standby then exits. One that gets no job in
 * STANDBY_IDLE_SECONDS exits by itself.
 *
 * What keeps its verdicts those of a fresh run:
 * - it reads no DAG file and lists no DAG folder before the job arrives, so every DAG file is looked up fresh
 *   through its copy-on-write view of the project;
 * - what Airflow read from the project while starting (airflow.cfg, local settings, plugins: the hello message's
 *   deps) is unchanged since the standby started (files by ctime), and the folders it looked in, the project's
 *   own included, hold the same names; otherwise it is retired and the run starts its own harness;
 * - anything unexpected (gone, not ready in time, a broken socket before the first message) means the run starts
 *   its own harness, as it would without one.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import * as z from 'zod';
import { sleep } from '../util/retry.js';
import { readJsonFileSync } from '../util/json-file.js';
import { processAlive } from '../util/process.js';
import { hashedListing, listingHash } from './cache.js';
import { HarnessWatch, TailBuffer } from './harness.js';
import type { HarnessExit } from './hostRunner.js';
import { confinedReport, removeCgroup, type SandboxReport } from './sandbox.js';
import type { HarnessMessage } from './schema.js';

/** A standby nobody claimed ends itself after this long. */
export const STANDBY_IDLE_SECONDS = 15 * 60;
/** How long a run waits for a claimed standby that is still starting (still cheaper than starting another). */
const READY_WAIT_MS = 60_000;
/** Unix socket paths are limited to 108 bytes. */
const MAX_SOCKET_PATH = 100;

const standbyRecord = z.object({
  format: z.literal(1),
  pid: z.number().int().positive(),
  scratch: z.string(),
  socket: z.string(),
  readyFile: z.string(),
  logFile: z.string(),
  cgroup: z.string(),
  spawnedAtMs: z.number(),
  projectDir: z.string(),
});
export type StandbyRecord = z.infer<typeof standbyRecord>;

/**
 * What the standby's Airflow read while starting: files (compared by ctime) and folders with their listingHash
 * (cache.ts; null: absent), as the standby saw them.
 */
const readyFile = z.object({
  files: z.array(z.string()),
  folders: z.record(z.string(), z.string().nullable()),
  /** Folders of which only some names count, with the hash of those (cache.ts hashedListing). */
  listings: z.array(hashedListing),
});

export function standbyFolder(cacheRoot: string): string {
  return path.join(cacheRoot, 'standby');
}

function recordFile(cacheRoot: string, key: string): string {
  return path.join(standbyFolder(cacheRoot), `${key}.json`);
}

/** The standby's process is alive and is this standby (not another process that got its pid). */
function isRunning(record: StandbyRecord): boolean {
  try {
    return processAlive(record.pid) && fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').includes(record.scratch);
  } catch {
    return false;
  }
}

/** Kills the standby's process group (its sandbox's processes go with its first one). */
function killGroup(record: StandbyRecord): void {
  try {
    process.kill(-record.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Ends a standby (its whole process group) and removes what it leaves on the host. */
export async function retire(record: StandbyRecord): Promise<void> {
  if (isRunning(record)) {
    killGroup(record);
    await waitForExit(record, 2_000);
  }
  await removeCgroup(record.cgroup);
  await fsp.rm(record.scratch, { recursive: true, force: true }).catch(() => undefined);
}

async function waitForExit(record: StandbyRecord, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (isRunning(record)) {
    if (Date.now() > until) return false;
    await sleep(5);
  }
  return true;
}

/**
 * Whether what the standby's Airflow read while starting changed since: a file changed after the standby started
 * (its ctime; an absent one, its folder's), or a folder's entries are not the ones it saw (a file saved by renaming
 * a new one over it keeps the folder's names, so DAG edits do not retire it).
 */
function changedSince(record: StandbyRecord, seen: z.infer<typeof readyFile>): boolean {
  const fileChanged = (p: string): boolean => {
    try {
      return fs.statSync(p).ctimeMs > record.spawnedAtMs;
    } catch {
      try {
        return fs.statSync(path.dirname(p)).ctimeMs > record.spawnedAtMs;
      } catch {
        return true;
      }
    }
  };
  return (
    !(record.projectDir in seen.folders) ||
    seen.files.some(fileChanged) ||
    Object.entries(seen.folders).some(([folder, hash]) => listingHash(folder) !== hash) ||
    seen.listings.some((listing) => listingHash(listing.path, listing) !== listing.hash)
  );
}

/**
 * Claims the standby started for `key`, waiting for it to be ready; undefined when there is none, or it is gone,
 * stale or not ready in time (then it is retired).
 */
export async function claimStandby(cacheRoot: string, key: string, signal?: AbortSignal): Promise<StandbyRecord | undefined> {
  const file = recordFile(cacheRoot, key);
  const claimed = `${file}.${process.pid}.claimed`;
  try {
    fs.renameSync(file, claimed);
  } catch {
    return undefined;
  }
  const record = readJsonFileSync(claimed, standbyRecord);
  fs.rmSync(claimed, { force: true });
  if (record === undefined) return undefined;
  const until = Date.now() + READY_WAIT_MS;
  while (!fs.existsSync(record.readyFile)) {
    if (!isRunning(record) || Date.now() > until || signal?.aborted) {
      await retire(record);
      return undefined;
    }
    await sleep(5);
  }
  const ready = readJsonFileSync(record.readyFile, readyFile);
  if (ready === undefined || !isRunning(record) || changedSince(record, ready)) {
    await retire(record);
    return undefined;
  }
  return record;
}

export interface StandbyJob {
  skip: string[];
  workers: number;
  memoryLimitBytes: number;
}

export interface StandbyRun {
  exit: HarnessExit;
  sandbox: SandboxReport;
  /** Nothing came back: the run can start a harness of its own instead. */
  unused: boolean;
}

/** Sends the job to a claimed standby and reads its results as from a harness of our own. */
export function runOnStandby(
  record: StandbyRecord,
  job: StandbyJob,
  options: { onMessage: (message: HarnessMessage) => void; signal?: AbortSignal; silenceLimitMs: number },
): Promise<StandbyRun> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(record.socket);
    let received = false;
    let done = false;
    const watch = new HarnessWatch({
      kill: () => {
        killGroup(record);
        socket.destroy();
      },
      onMessage: (message) => {
        received = true;
        if (message.type === 'done') done = true;
        options.onMessage(message);
      },
      signal: options.signal,
      silenceLimitMs: options.silenceLimitMs,
    });
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(job)}\n`));
    socket.on('data', (chunk: string) => watch.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      watch.end();
      // The standby ends after its job (or was stopped); what it leaves is removed before the run goes on.
      void (async () => {
        await waitForExit(record, 3_000);
        const diagnostics = new TailBuffer();
        diagnostics.push(await fsp.readFile(record.logFile, 'utf8').catch(() => ''));
        const sandbox = confinedReport(record.scratch);
        await retire(record);
        return { diagnostics: diagnostics.toString(), sandbox };
      })().then(({ diagnostics, sandbox }) => {
        if (watch.failure !== undefined) reject(watch.failure);
        else
          resolve({
            exit: { exitCode: done ? 0 : null, signal: null, diagnostics, incomplete: watch.remainder, aborted: watch.aborted, timedOut: watch.timedOut },
            sandbox,
            unused: !received && !watch.aborted,
          });
      }, reject);
    });
  });
}

export interface StandbyStart {
  cacheRoot: string;
  key: string;
  projectDir: string;
  scratch: string;
  /** Where it waits and says it is ready (standbyPaths of the shared run folder the harness sees). */
  socket: string;
  readyFile: string;
  /** The sandboxed command line (HostSandbox.wrap) and its pids cgroup. */
  command: string;
  args: string[];
  cgroup: string | undefined;
  env: Record<string, string>;
}

/** Where a standby's socket and ready file go, or undefined when the socket's path would be too long. */
export function standbyPaths(shared: string): { socket: string; readyFile: string } | undefined {
  const socket = path.join(shared, 'standby.sock');
  return Buffer.byteLength(socket) > MAX_SOCKET_PATH ? undefined : { socket, readyFile: path.join(shared, 'standby-ready.json') };
}

/**
 * Starts a standby in the background (its own session: it outlives this process) and records it for the next run.
 * At most one per key; records of standbys that are gone are cleared on the way.
 */
export async function startStandby(start: StandbyStart): Promise<void> {
  const folder = standbyFolder(start.cacheRoot);
  await fsp.mkdir(folder, { recursive: true });
  await clearGone(folder, start);
  const file = recordFile(start.cacheRoot, start.key);
  if (fs.existsSync(file)) {
    await fsp.rm(start.scratch, { recursive: true, force: true });
    return;
  }
  const logFile = path.join(start.scratch, 'standby.log');
  const log = fs.openSync(logFile, 'a');
  const spawnedAtMs = Date.now();
  let pid: number | undefined;
  try {
    const child = spawn(start.command, start.args, { cwd: start.projectDir, env: start.env, detached: true, stdio: ['ignore', log, log] });
    child.on('error', () => undefined);
    child.unref();
    pid = child.pid;
  } finally {
    fs.closeSync(log);
  }
  if (pid === undefined) {
    await fsp.rm(start.scratch, { recursive: true, force: true });
    return;
  }
  const record: StandbyRecord = {
    format: 1,
    pid,
    scratch: start.scratch,
    socket: start.socket,
    readyFile: start.readyFile,
    logFile,
    cgroup: start.cgroup ?? '-',
    spawnedAtMs,
    projectDir: start.projectDir,
  };
  // Written whole, then linked into place only if no other run recorded one for this key meanwhile.
  const temp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(temp, JSON.stringify(record));
  try {
    await fsp.link(temp, file);
  } catch {
    await retire(record);
  } finally {
    await fsp.rm(temp, { force: true });
  }
}

/** Every file in the standby folder with the record it holds (undefined: damaged, or not a record). */
function recorded(folder: string): { name: string; file: string; record: StandbyRecord | undefined }[] {
  let names: string[];
  try {
    names = fs.readdirSync(folder);
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = path.join(folder, name);
    return { name, file, record: readJsonFileSync(file, standbyRecord) };
  });
}

/**
 * Records of standbys that are gone (idle exit, killed, machine restarted) are cleared with their leftovers, and so
 * are the standbys of the same project under another key (another interpreter or environment since): one waits per
 * project.
 */
async function clearGone(folder: string, start: StandbyStart): Promise<void> {
  for (const { name, file, record } of recorded(folder)) {
    if (!name.endsWith('.json')) continue;
    const superseded = record !== undefined && record.projectDir === start.projectDir && name !== `${start.key}.json`;
    if (record !== undefined && isRunning(record) && !superseded) continue;
    await fsp.rm(file, { force: true });
    if (record !== undefined) await retire(record);
  }
}

/** Ends every standby recorded under `cacheRoot` (tests and benchmarks clean up with it). */
export async function stopStandbys(cacheRoot: string): Promise<number> {
  let stopped = 0;
  for (const { file, record } of recorded(standbyFolder(cacheRoot))) {
    await fsp.rm(file, { force: true });
    if (record === undefined) continue;
    if (isRunning(record)) stopped += 1;
    await retire(record);
  }
  return stopped;
}

/** How many standbys recorded under `cacheRoot` are still starting (running, not ready yet). */
export function startingStandbys(cacheRoot: string): number {
  return recorded(standbyFolder(cacheRoot)).filter(
    ({ name, record }) => name.endsWith('.json') && record !== undefined && isRunning(record) && !fs.existsSync(record.readyFile),
  ).length;
}

/** Waits until every standby recorded under `cacheRoot` is ready or gone (benchmarks measure a quiet machine). */
export async function standbysSettled(cacheRoot: string, limitMs = 120_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (startingStandbys(cacheRoot) > 0 && Date.now() <= until) await sleep(20);
}
