/** Runs the harness as a subprocess on the host, reading results from file descriptor 3 (not stdout/stderr). */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { HARNESS_BOOT, harnessParentDir, HarnessWatch, TailBuffer, type HarnessConfig } from './harness.js';
import type { HostSandbox, SandboxSpec } from './sandbox.js';
import type { HarnessMessage } from './schema.js';

export interface HarnessExit {
  exitCode: number | null;
  signal: string | null;
  /** The end of the supervisor's own stdout and stderr (Airflow's start-up logs, interpreter errors). */
  diagnostics: string;
  /** Bytes after the last complete message. */
  incomplete: string;
  aborted: boolean;
  timedOut: boolean;
}

export interface HostHarnessOptions {
  python: string;
  projectDir: string;
  env: Record<string, string>;
  config: Omit<HarnessConfig, 'resultFd' | 'resultFile'>;
  sandbox: HostSandbox;
  sandboxSpec: SandboxSpec;
  onMessage: (message: HarnessMessage) => void;
  signal?: AbortSignal;
  /** Kill the harness when it has said nothing for this long (it enforces per-file deadlines itself). */
  silenceLimitMs: number;
}

export function runHarnessOnHost(options: HostHarnessOptions): Promise<HarnessExit> {
  const config: HarnessConfig = { ...options.config, resultFd: 3 };
  const { command, args } = options.sandbox.wrap(options.python, ['-c', HARNESS_BOOT, harnessParentDir(), JSON.stringify(config)], options.sandboxSpec);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.projectDir,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const diagnostics = new TailBuffer();
    const watch = new HarnessWatch({
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
      onMessage: options.onMessage,
      signal: options.signal,
      silenceLimitMs: options.silenceLimitMs,
    });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => diagnostics.push(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => diagnostics.push(chunk));
    const results = child.stdio[3] as Readable;
    results.setEncoding('utf8');
    results.on('data', (chunk: string) => watch.push(chunk));
    child.on('error', (error) => {
      watch.failure ??= error;
    });
    child.on('exit', () => {
      // Streams a stray process still holds open must not keep us waiting once the harness itself is gone.
      setTimeout(() => {
        for (const stream of child.stdio) stream?.destroy();
      }, 2000).unref();
    });
    child.on('close', (exitCode, signal) => {
      watch.end();
      if (watch.failure !== undefined) {
        reject(watch.failure);
        return;
      }
      resolve({
        exitCode,
        signal,
        diagnostics: diagnostics.toString(),
        incomplete: watch.remainder,
        aborted: watch.aborted,
        timedOut: watch.timedOut,
      });
    });
  });
}
