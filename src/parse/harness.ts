/**
 * Where the Python harness lives (python/astro_parse, shipped with the package), how it is started, and how its
 * result channel is read: JSON lines, each validated before anything acts on it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BugError } from '../errors.js';
import { harnessMessage, type HarnessMessage } from './schema.js';

/** The directory holding the `astro_parse` package (src/parse and dist/parse are both two levels below the root). */
export function harnessParentDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
}

/**
 * The harness version of the bundled CLI, computed by scripts/bundle.mjs from the harness it ships beside (the
 * package carries both): hashing the sources took 1.5 ms of every parse. Not defined when running from dist/ or src/.
 */
declare const __ASTRO_HARNESS_VERSION__: string | undefined;

let cachedVersion: string | undefined;

/** A hash of the harness sources: cached verdicts from another harness version are not reused. */
export function harnessVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  if (typeof __ASTRO_HARNESS_VERSION__ === 'string') return (cachedVersion = __ASTRO_HARNESS_VERSION__);
  const dir = path.join(harnessParentDir(), 'astro_parse');
  const hash = createHash('sha256');
  for (const name of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.py'))
    .sort()) {
    hash
      .update(name)
      .update('\0')
      .update(fs.readFileSync(path.join(dir, name)))
      .update('\0');
  }
  cachedVersion = hash.digest('hex');
  return cachedVersion;
}

/**
 * `python -c BOOT <harness parent> <config json>`: puts the harness on sys.path for its own import only (the
 * supervisor takes it, and the working directory, off again before any DAG code runs).
 */
export const HARNESS_BOOT = 'import sys;p=sys.argv[1];sys.path.insert(0,p);from astro_parse.supervisor import main;main([sys.argv[2],p])';

export interface HarnessConfig {
  projectRoot: string;
  stateDir: string;
  resultFd?: number;
  resultFile?: string;
  workers: number;
  memoryLimitBytes: number;
  hardTimeoutGraceSeconds: number;
  fallbackTimeoutSeconds: number;
  outputLimitBytes: number;
  skip: string[];
  trackRoots: string[];
  dbTemplate: string | null;
  dbTemplateOut: string | null;
  preload: boolean;
  /** A standby (standby.ts): where it waits for its job, for how long, and the modules it imports ahead. */
  standby?: { socket: string; readyFile: string; idleSeconds: number; modules: string[] };
}

/**
 * What every way of running the harness shares while it runs: its result stream read and validated, a limit on how
 * long it may say nothing, and the caller's abort. `kill` ends the harness; `end` is called once it has.
 */
export class HarnessWatch {
  aborted = false;
  timedOut = false;
  /** The first thing that went wrong on our side (an invalid message, a failed spawn): the run fails with it. */
  failure: unknown;
  private silence: NodeJS.Timeout | undefined;
  private readonly reader: MessageReader;

  constructor(private readonly options: { kill: () => void; onMessage: (message: HarnessMessage) => void; signal?: AbortSignal; silenceLimitMs: number }) {
    this.reader = new MessageReader((message) => {
      this.resetSilence();
      options.onMessage(message);
    });
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.resetSilence();
  }

  private readonly onAbort = () => {
    this.aborted = true;
    this.options.kill();
  };

  private resetSilence(): void {
    if (this.silence !== undefined) clearTimeout(this.silence);
    this.silence = setTimeout(() => {
      this.timedOut = true;
      this.options.kill();
    }, this.options.silenceLimitMs);
  }

  /** A chunk of the result stream; a message that does not validate ends the harness. */
  push(chunk: string): void {
    if (this.failure !== undefined) return;
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.failure = error;
      this.options.kill();
    }
  }

  /** Bytes after the last complete message. */
  get remainder(): string {
    return this.reader.remainder;
  }

  end(): void {
    if (this.silence !== undefined) clearTimeout(this.silence);
    this.options.signal?.removeEventListener('abort', this.onAbort);
  }
}

/** Splits a byte stream into lines and validates each as a harness message. */
export class MessageReader {
  private buffer = '';

  constructor(private readonly onMessage: (message: HarnessMessage) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let newline = this.buffer.indexOf('\n');
    while (newline !== -1) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() !== '') this.onMessage(parseHarnessLine(line));
      newline = this.buffer.indexOf('\n');
    }
  }

  /** Bytes after the last newline: a message the harness did not finish writing. */
  get remainder(): string {
    return this.buffer;
  }
}

export function parseHarnessLine(line: string): HarnessMessage {
  let data: unknown;
  try {
    data = JSON.parse(line);
  } catch (error) {
    throw new BugError(`The parse harness wrote a line that is not JSON: ${line.slice(0, 200)}`, { cause: error });
  }
  const parsed = harnessMessage.safeParse(data);
  if (!parsed.success) {
    throw new BugError(`The parse harness wrote an unexpected message: ${parsed.error.message.slice(0, 500)}`);
  }
  return parsed.data;
}

/** Keeps the last `limit` characters of a stream (the supervisor's own stdout/stderr, for diagnostics). */
export class TailBuffer {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.slice(-this.limit);
  }
}
