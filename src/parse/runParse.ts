/**
 * `astro dev parse`: the verdicts of Astronomer's default DAG integrity test (Airflow's DagBag plus its mocks),
 * computed by the Python harness on the host or inside the project image, with a content cache in front.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BugError, UserError } from '../errors.js';
import { interruptedBy } from '../util/retry.js';
import { CACHE_FORMAT, ParseCache, sha256, snapshotTree, type FileEntry, type TreeSnapshot } from './cache.js';
import type { DockerClient } from './container.js';
import { parseEnvFile, type EnvFileEntry } from './envFile.js';
import { harnessVersion } from './harness.js';
import { mergeResults, parseExceptions, type FileOutcome } from './merge.js';
import { hostRunner, imageRunner, SILENCE_LIMIT_MS, type Runner } from './runners.js';
import { SANDBOX_SETUP_FAILED, sandboxSetupError, type SandboxReport } from './sandbox.js';
import { type FileMessage, type HelloMessage, type ListingMessage, type ParseReport } from './schema.js';
import { relativeInside } from '../util/paths.js';

export interface ParseOptions {
  /** The Astro project (its root is AIRFLOW_HOME for the DAGs, as in Runtime images). */
  projectDir: string;
  /** Image mode: parse inside this image (`--image-name`, or the project image the CLI built). */
  image?: string;
  /** Host mode: `--python`. Otherwise the project's `.venv/bin/python`, then `configuredPython`. */
  python?: string;
  configuredPython?: string;
  /** The env file the DAGs see (`--env`), relative to the project; default `.env`. Ignored when missing. */
  envFile?: string;
  /** The caller's environment. Only an allowlist (PATH, LANG, TZ, …) reaches DAG code, and only in host mode. */
  hostEnv: Readonly<Record<string, string | undefined>>;
  /** astro's cache directory; the parse cache lives in `<cacheDir>/parse`. */
  cacheDir: string;
  /** `--no-cache`: parse every file again (results are still stored for the next run). */
  noCache?: boolean;
  /** Parallel workers; default: the number of CPUs, at most 8. */
  workers?: number;
  /** Per-file import timeout in seconds; default Airflow's `dagbag_import_timeout` (30 s unless configured). */
  timeoutSeconds?: number;
  /** Address-space budget of each worker beyond the Airflow it inherits; default 2048 MiB. */
  memoryLimitMb?: number;
  /** Run without network and PID namespaces even where they work (host mode). */
  noSandbox?: boolean;
  /** Host mode: start the next run's harness ahead when this one ends (standby.ts). A waiting one is used anyway. */
  keepWarm?: boolean;
  /** How long that harness waits for the next run before it ends itself; default STANDBY_IDLE_SECONDS. */
  standbyIdleSeconds?: number;
  onProgress?: (event: ParseProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ParsePorts {
  /** Needed in image mode. */
  docker?: DockerClient;
}

export type ParseProgressEvent =
  | { type: 'start'; mode: 'host' | 'image'; python?: string; image?: string }
  | { type: 'cache'; reusable: number; complete: boolean }
  | { type: 'airflow-ready'; airflowVersion: string; startupMs: number }
  /** The harness that answered: one started ahead by an earlier run (a standby), or one of this run's own. */
  | { type: 'harness'; standby: boolean }
  | { type: 'listing'; files: number; skipped: number; toParse: number }
  | { type: 'file'; path: string; failed: boolean; cached: boolean; durationMs: number }
  | { type: 'done'; durationMs: number };

const DEFAULT_MEMORY_LIMIT_MB = 2048;

export async function runParse(options: ParseOptions, ports: ParsePorts = {}): Promise<ParseReport> {
  const startedAt = performance.now();
  const projectDir = path.resolve(options.projectDir);
  await assertDirectory(projectDir);
  const cacheRoot = path.join(options.cacheDir, 'parse');
  const envFile = await readEnvFile(projectDir, options.envFile, options.hostEnv);
  const memoryLimitMb = options.memoryLimitMb ?? DEFAULT_MEMORY_LIMIT_MB;
  const workers = Math.max(1, Math.min(options.workers ?? Math.min(os.availableParallelism(), 8), 32));

  const runner =
    options.image !== undefined ? await imageRunner(options, projectDir, envFile, ports.docker) : await hostRunner(options, projectDir, envFile, cacheRoot);
  options.onProgress?.({ type: 'start', mode: runner.mode, ...runner.label });

  const runKey = sha256(
    String(CACHE_FORMAT),
    harnessVersion(),
    runner.mode,
    runner.identity,
    projectDir,
    JSON.stringify(Object.entries(runner.dagEnv).sort(([a], [b]) => (a < b ? -1 : 1))),
    String(memoryLimitMb),
  );
  const cache = new ParseCache(cacheRoot, projectDir, runKey);
  await cache.load();
  const exceptionsPath = path.join(projectDir, '.astro', 'dag_integrity_exceptions.txt');
  const exceptionsText = await fs.readFile(exceptionsPath, 'utf8').catch(() => undefined);
  const exceptions = parseExceptions(exceptionsText ?? '');

  const finish = async (hello: HelloMessage, listing: ListingMessage, outcomes: Map<string, FileOutcome>, network: 'none' | 'host', sandbox: SandboxReport) => {
    const files = mergeResults(listing, outcomes, exceptions);
    const parsedFiles = files.filter((f) => f.status !== 'skipped');
    const report: ParseReport = {
      files,
      summary: {
        passed: files.every((f) => f.status !== 'error'),
        files: parsedFiles.length,
        failed: files.filter((f) => f.status === 'error').length,
        exempted: files.filter((f) => f.exempted).length,
        skipped: files.length - parsedFiles.length,
        cached: parsedFiles.filter((f) => f.cached).length,
        dags: parsedFiles.reduce((n, f) => n + f.dagIds.length, 0),
        durationMs: performance.now() - startedAt,
        mode: runner.mode,
        ...(runner.label.image !== undefined ? { image: runner.label.image } : {}),
        python: hello.python,
        airflowVersion: hello.airflowVersion,
        dagsFolder: relativeToProject(projectDir, runner.toHost(hello.dagsFolder) ?? hello.dagsFolder),
        exceptionsFile: exceptionsText === undefined ? null : path.relative(projectDir, exceptionsPath),
        sandbox: {
          network,
          projectReadOnly: sandbox.projectView !== 'direct' || hello.projectReadOnly,
          projectView: sandbox.projectView,
          pidsLimit: sandbox.pidsLimit,
          hostFilesystem: runner.mode === 'image' ? 'not-mounted' : hello.rootReadOnly ? 'read-only' : 'writable',
          memoryLimitMb,
          importTimeoutSeconds: options.timeoutSeconds ?? null,
        },
      },
    };
    await cache.finish().catch(() => undefined);
    options.onProgress?.({ type: 'done', durationMs: report.summary.durationMs });
    // Built here from validated harness messages and typed code; the tests check it against the schema (validating
    // it again on every run took 3-4 ms of a warm parse).
    return report;
  };

  // Warm path: nothing changed since a run whose results are all cached; no Python is started.
  const toHost = (p: string) => runner.toHost(p);
  const stored = options.noCache ? undefined : await cache.loadState();
  const state = stored !== undefined && (await cache.startupUnchanged(stored, toHost)) ? stored : undefined;
  const dagsHostDir = state !== undefined ? runner.toHost(state.hello.dagsFolder) : runner.defaultDagsFolder;
  let snapshot = dagsHostDir !== null ? await snapshotTree(dagsHostDir, cache.hasher) : undefined;

  // Files whose stored result is still good are not parsed again; the harness lists and parses the rest.
  const reusable = new Map<string, FileEntry>();
  if (state !== undefined && snapshot !== undefined) {
    for (const [harnessPath, entry] of Object.entries(state.files)) {
      const hostPath = runner.toHost(harnessPath);
      const hash = hostPath === null ? undefined : snapshot.files.get(hostPath);
      if (hash === undefined || hash !== entry.contentHash) continue;
      const still = await cache.reusable(state, harnessPath, hash, toHost);
      if (still !== undefined) reusable.set(harnessPath, still);
    }
    // A file that could not be read is looked at again: permissions change without changing content.
    const complete = state.listing.unreadable.length === 0 && state.listing.files.every((f) => reusable.has(f.path));
    if (snapshot.key === state.treeKey && complete) {
      options.onProgress?.({ type: 'cache', reusable: reusable.size, complete: true });
      const outcomes = new Map<string, FileOutcome>(
        state.listing.files.map((f) => [f.path, { message: (reusable.get(f.path) as FileEntry).message, cached: true }]),
      );
      return finish(state.hello, state.listing, outcomes, state.network, state.sandbox);
    }
  }
  options.onProgress?.({ type: 'cache', reusable: reusable.size, complete: false });

  let hello: HelloMessage | undefined;
  let listing: ListingMessage | undefined;
  let fatal: { reason: string; message: string } | undefined;
  let done = false;
  const fresh = new Map<string, FileMessage>();
  const { exit, sandbox, fromStandby } = await runner.run({
    skip: [...reusable.keys()],
    workers,
    memoryLimitBytes: memoryLimitMb * 1024 * 1024,
    dbTemplate: path.join(cacheRoot, 'db', `${sha256(runner.identity).slice(0, 32)}.db`),
    signal: options.signal,
    standby: { key: runKey, startNext: options.keepWarm === true, idleSeconds: options.standbyIdleSeconds },
    onMessage: (message) => {
      switch (message.type) {
        case 'hello':
          hello = message;
          options.onProgress?.({ type: 'airflow-ready', airflowVersion: message.airflowVersion, startupMs: message.startupMs });
          break;
        case 'listing': {
          listing = message;
          const toParse = message.files.filter((f) => !reusable.has(f.path)).length;
          options.onProgress?.({ type: 'listing', files: message.files.length, skipped: message.skipped.length, toParse });
          for (const file of message.files) {
            const cached = reusable.get(file.path);
            if (cached !== undefined) {
              options.onProgress?.({ type: 'file', path: file.relPath, failed: cached.message.errors.length > 0, cached: true, durationMs: 0 });
            }
          }
          break;
        }
        case 'file':
          fresh.set(message.path, message);
          options.onProgress?.({
            type: 'file',
            path: message.relPath,
            failed: message.errors.length > 0,
            cached: false,
            durationMs: message.durationMs,
          });
          break;
        case 'done':
          done = true;
          break;
        case 'fatal':
          fatal = message;
          break;
      }
    },
  });

  options.onProgress?.({ type: 'harness', standby: fromStandby === true });
  if (exit.aborted) throw interruptedBy(options.signal!, 'The parse was interrupted.');
  if (fatal !== undefined) throw harnessFailure(fatal, runner);
  if (!done && hello === undefined && exit.exitCode === SANDBOX_SETUP_FAILED && runner.mode === 'host') {
    throw sandboxSetupError(exit.diagnostics);
  }
  if (!done || hello === undefined || listing === undefined) {
    const how = exit.timedOut
      ? `it said nothing for ${SILENCE_LIMIT_MS / 60000} minutes and was stopped`
      : `it stopped with ${exit.signal ?? (exit.exitCode === null ? 'no exit status' : `exit code ${exit.exitCode}`)}`;
    throw new UserError(`The DAG parse did not finish: ${how}.`, {
      nextStep: `Its last output was:\n${exit.diagnostics.trim().split('\n').slice(-15).join('\n')}`,
    });
  }

  const outcomes = new Map<string, FileOutcome>();
  for (const file of listing.files) {
    const message = fresh.get(file.path);
    if (message !== undefined) outcomes.set(file.path, { message, cached: false });
    else {
      const cached = reusable.get(file.path);
      if (cached === undefined) throw new BugError(`The parse harness returned no result for ${file.relPath}.`);
      outcomes.set(file.path, { message: cached.message, cached: true });
    }
  }

  const dagsDir = runner.toHost(hello.dagsFolder);
  if (dagsDir !== null && dagsDir !== dagsHostDir) snapshot = await snapshotTree(dagsDir, cache.hasher);
  if (dagsDir !== null && snapshot !== undefined) {
    await saveState(cache, runner, snapshot, hello, listing, fresh, reusable, sandbox).catch(() => undefined);
  }
  return finish(hello, listing, outcomes, runner.network(), sandbox);
}

async function saveState(
  cache: ParseCache,
  runner: Runner,
  snapshot: TreeSnapshot,
  hello: HelloMessage,
  listing: ListingMessage,
  fresh: Map<string, FileMessage>,
  reused: Map<string, FileEntry>,
  sandbox: SandboxReport,
): Promise<void> {
  const toHost = (p: string) => runner.toHost(p);
  const files: Record<string, FileEntry> = {};
  for (const file of listing.files) {
    const old = reused.get(file.path);
    if (old !== undefined && !fresh.has(file.path)) {
      files[file.path] = old;
      continue;
    }
    const message = fresh.get(file.path);
    // Timeouts and crashes depend on the machine's load as much as on the file: never reuse them.
    if (message === undefined || message.status !== 'parsed') continue;
    const hostPath = runner.toHost(message.path);
    const hash = hostPath === null ? undefined : snapshot.files.get(hostPath);
    if (hash !== undefined) files[file.path] = await cache.entryFor(message, hash, toHost);
  }
  await cache.saveState(snapshot.key, hello, listing, files, toHost, runner.network(), sandbox);
}

function harnessFailure(fatal: { reason: string; message: string }, runner: Runner): UserError {
  const lastLine = fatal.message.trim().split('\n').pop() ?? fatal.message;
  const where = runner.label.image !== undefined ? `the image ${runner.label.image}` : (runner.label.python ?? 'Python');
  if (fatal.reason === 'airflow-import') {
    return new UserError(`Airflow could not be imported with ${where}: ${lastLine}`, {
      nextStep:
        runner.mode === 'host'
          ? 'Pass --python with an interpreter that has Airflow installed, or parse in the project image with --image-name.'
          : 'Check that the image is an Astro Runtime image.',
    });
  }
  return new BugError(`The DAG parse harness failed: ${fatal.message.slice(-2000)}`);
}

async function assertDirectory(dir: string): Promise<void> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat === undefined || !stat.isDirectory()) {
    throw new UserError(`The project directory ${dir} does not exist.`);
  }
}

async function readEnvFile(projectDir: string, envFile: string | undefined, hostEnv: Readonly<Record<string, string | undefined>>): Promise<EnvFileEntry[]> {
  const file = path.resolve(projectDir, envFile ?? '.env');
  let content: string;
  try {
    content = await fs.readFile(file, 'utf8');
  } catch {
    return [];
  }
  return parseEnvFile(content, (name) => hostEnv[name], path.relative(projectDir, file) || file);
}

function relativeToProject(projectDir: string, p: string): string {
  const rel = relativeInside(projectDir, p);
  return rel === undefined ? p : rel === '' ? '.' : rel;
}
