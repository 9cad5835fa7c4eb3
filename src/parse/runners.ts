/**
 * The two places the harness runs: on the host (a Python with Airflow, in the namespace sandbox) or inside the
 * project image (a throwaway container). Each knows how paths look to the harness and what identifies it for the
 * cache.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BugError } from '../errors.js';
import type { DockerClient } from './container.js';
import type { EnvFileEntry } from './envFile.js';
import { HARNESS_BOOT, harnessParentDir, MessageReader, TailBuffer, type HarnessConfig } from './harness.js';
import { runHarnessOnHost, type HarnessExit } from './hostRunner.js';
import { findInterpreter, interpreterIdentity } from './interpreter.js';
import { hostSandbox, makeRunDirs, sandboxSpec, type HostSandbox, type SandboxReport } from './sandbox.js';
import { airflowStateEnvironment, buildDagEnvironment, projectConfigFile, runtimeLayoutDefaults } from './sandboxEnv.js';
import type { HarnessMessage } from './schema.js';
import { isInside } from '../util/paths.js';

export const SILENCE_LIMIT_MS = 10 * 60 * 1000;
const CONTAINER_OUT = '/astro-parse-out';
const CONTAINER_HARNESS = '/opt/astro-parse';
const CONTAINER_STATE = '/tmp/astro-parse';

export interface RunnerOptions {
  python?: string;
  configuredPython?: string;
  image?: string;
  hostEnv: Readonly<Record<string, string | undefined>>;
  timeoutSeconds?: number;
  noSandbox?: boolean;
  /** astro's cache directory: hidden from DAG code like the rest of astro's state. */
  cacheDir?: string;
}

export interface Runner {
  mode: 'host' | 'image';
  identity: string;
  label: { python?: string; image?: string };
  /** The DAGs' environment (what the cache key depends on). */
  dagEnv: Record<string, string>;
  toHost(harnessPath: string): string | null;
  toHarness(hostPath: string): string | null;
  defaultDagsFolder: string;
  /** Decided when the harness is started (host mode probes the kernel for namespaces). */
  network(): 'none' | 'host';
  run(input: RunInput): Promise<RunOutput>;
}

export interface RunInput {
  skip: string[];
  workers: number;
  memoryLimitBytes: number;
  dbTemplate: string;
  onMessage: (message: HarnessMessage) => void;
  signal?: AbortSignal;
  /**
   * Host mode, in the sandbox: the key of a standby to claim instead of starting a harness (standby.ts), and whether
   * to start one for the next run afterwards.
   */
  standby?: { key: string; startNext: boolean; idleSeconds?: number };
}

export interface RunOutput {
  exit: HarnessExit;
  sandbox: SandboxReport;
  /** The harness was a standby started ahead by an earlier run. */
  fromStandby?: boolean;
}

function withTimeout(env: Record<string, string>, timeoutSeconds: number | undefined): Record<string, string> {
  if (timeoutSeconds === undefined) return env;
  return { ...env, AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT: String(timeoutSeconds) };
}

function harnessConfig(
  input: RunInput,
  paths: { projectRoot: string; stateDir: string; trackRoots: string[] },
): Omit<HarnessConfig, 'resultFd' | 'resultFile' | 'dbTemplate' | 'dbTemplateOut'> {
  return {
    projectRoot: paths.projectRoot,
    stateDir: paths.stateDir,
    workers: input.workers,
    memoryLimitBytes: input.memoryLimitBytes,
    // A DAG that ignores Airflow's timeout signal is killed this much later.
    hardTimeoutGraceSeconds: 5,
    fallbackTimeoutSeconds: 300,
    outputLimitBytes: 16 * 1024,
    skip: input.skip,
    trackRoots: paths.trackRoots,
    preload: true,
  };
}

export async function hostRunner(options: RunnerOptions, projectDir: string, envFile: EnvFileEntry[], cacheRoot: string): Promise<Runner> {
  const choice = await findInterpreter({ projectDir, python: options.python, configuredPython: options.configuredPython });
  const dagEnv = runtimeLayoutDefaults(
    withTimeout(buildDagEnvironment({ mode: 'host', hostEnv: options.hostEnv, envFile }), options.timeoutSeconds),
    projectDir,
  );
  const identity = await interpreterIdentity(choice.python, cacheRoot, { PATH: dagEnv.PATH ?? '/usr/bin:/bin' });
  let sandbox: HostSandbox | undefined;
  const getSandbox = () => (sandbox ??= hostSandbox({ isolate: options.noSandbox !== true }));
  const inProject = projectPathMapper(projectDir);
  return {
    mode: 'host',
    identity: identity.identity,
    label: { python: choice.python },
    dagEnv,
    toHost: inProject,
    toHarness: (p) => p,
    defaultDagsFolder: path.join(projectDir, 'dags'),
    network: () => getSandbox().network,
    async run(input) {
      const sandbox = getSandbox();
      // A standby lives in the namespace sandbox only: without one, nothing would keep it from the user's files.
      const standby = sandbox.network === 'none' ? input.standby : undefined;
      // The installed modules the files shared, which a standby for the next run imports ahead.
      let modules: string[] | undefined;
      const onMessage = (message: HarnessMessage) => {
        if (message.type === 'done') modules = message.modules;
        input.onMessage(message);
      };
      const startNext = async (ok: boolean) => {
        if (ok && standby?.startNext) await startStandbyFor(input, standby, modules ?? []).catch(() => undefined);
      };
      // Loaded only by runs that start Python: a warm run answered from the cache never needs it.
      const standbys = standby !== undefined ? await import('./standby.js') : undefined;
      const claimed = standby !== undefined && standbys !== undefined ? await standbys.claimStandby(cacheRoot, standby.key, input.signal) : undefined;
      if (claimed !== undefined && standbys !== undefined) {
        const job = { skip: input.skip, workers: input.workers, memoryLimitBytes: input.memoryLimitBytes };
        const result = await standbys.runOnStandby(claimed, job, { onMessage, signal: input.signal, silenceLimitMs: SILENCE_LIMIT_MS });
        if (!result.unused) {
          await startNext(result.exit.exitCode === 0);
          return { exit: result.exit, sandbox: result.sandbox, fromStandby: true };
        }
      }
      const prepared = await prepare(input);
      const { dirs, spec, template } = prepared;
      try {
        let exit: HarnessExit;
        try {
          exit = await runHarnessOnHost({
            python: choice.python,
            projectDir,
            env: prepared.env,
            config: prepared.config,
            sandbox,
            sandboxSpec: spec,
            onMessage,
            signal: input.signal,
            silenceLimitMs: SILENCE_LIMIT_MS,
          });
        } catch (error) {
          await sandbox.finish(spec);
          throw error;
        }
        const report = await sandbox.finish(spec);
        if (!template.exists) await saveTemplate(template.out, input.dbTemplate);
        await startNext(exit.exitCode === 0);
        return { exit, sandbox: report };
      } finally {
        await fs.rm(dirs.scratch, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  };

  /** A run's folders, sandbox, environment and harness configuration. */
  async function prepare(input: RunInput) {
    const dirs = await makeRunDirs('astro-parse-');
    // The cache is hidden from DAG code: the database template goes in and out through the run's directory.
    const templateIn = path.join(dirs.shared, 'db-template.db');
    const templateOut = path.join(dirs.shared, 'db-new.db');
    const templateExists = await fs.copyFile(input.dbTemplate, templateIn).then(
      () => true,
      () => false,
    );
    const spec = sandboxSpec({
      projectDir,
      dirs,
      reveal: [...identity.prefixes, harnessParentDir()],
      hostEnv: options.hostEnv,
      cacheDir: options.cacheDir,
    });
    const env = { ...dagEnv, ...airflowStateEnvironment(dirs.stateDir, dirs.homeDir, await projectConfigFile(dagEnv, dirs.shared)) };
    const config: Omit<HarnessConfig, 'resultFd' | 'resultFile'> = {
      ...harnessConfig(input, { projectRoot: projectDir, stateDir: dirs.stateDir, trackRoots: [projectDir] }),
      dbTemplate: templateExists ? templateIn : null,
      dbTemplateOut: templateExists ? null : templateOut,
    };
    return { dirs, spec, env, config, template: { exists: templateExists, out: templateOut } };
  }

  /** Starts the harness of the next run with this key, to wait for it (standby.ts). */
  async function startStandbyFor(input: RunInput, standby: NonNullable<RunInput['standby']>, modules: string[]): Promise<void> {
    const { standbyPaths, startStandby, STANDBY_IDLE_SECONDS } = await import('./standby.js');
    const prepared = await prepare(input);
    const paths = standbyPaths(prepared.dirs.shared);
    if (paths === undefined) {
      await fs.rm(prepared.dirs.scratch, { recursive: true, force: true });
      return;
    }
    const idleSeconds = standby.idleSeconds ?? STANDBY_IDLE_SECONDS;
    const config = { ...prepared.config, skip: [], standby: { ...paths, idleSeconds, modules } };
    const wrapped = getSandbox().wrap(choice.python, ['-c', HARNESS_BOOT, harnessParentDir(), JSON.stringify(config)], prepared.spec);
    await startStandby({
      cacheRoot,
      key: standby.key,
      projectDir,
      scratch: prepared.dirs.scratch,
      ...paths,
      command: wrapped.command,
      args: wrapped.args,
      cgroup: wrapped.cgroup,
      env: prepared.env,
    });
  }
}

/**
 * Host mode's harness-to-host path mapping: a path inside the project is itself, anything else null. Called for every
 * file and every recorded dependency of a warm run (thousands of times for a large project), so a normalised
 * absolute path is decided by its prefix; anything else (`.` or `..` segments, doubled or trailing slashes, relative)
 * goes through path.relative, which the prefix test agrees with on every path it takes. `projectDir` is resolved.
 */
export function projectPathMapper(projectDir: string): (p: string) => string | null {
  const prefix = projectDir.endsWith(path.sep) ? projectDir : projectDir + path.sep;
  return (p) => {
    if (path.isAbsolute(p) && !p.includes(`${path.sep}.`) && !p.includes(`${path.sep}${path.sep}`) && !p.endsWith(path.sep)) {
      return p === projectDir || p.startsWith(prefix) ? p : null;
    }
    return isInside(projectDir, p) ? p : null;
  };
}

/** Keeps a freshly made database template for the next run (atomically: runs may race). */
async function saveTemplate(made: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true }).catch(() => undefined);
  const tmp = `${target}.${process.pid}.tmp`;
  await fs
    .copyFile(made, tmp)
    .then(() => fs.rename(tmp, target))
    .catch(() => undefined);
}

export async function imageRunner(options: RunnerOptions, projectDir: string, envFile: EnvFileEntry[], docker: DockerClient | undefined): Promise<Runner> {
  const image = options.image as string;
  if (docker === undefined) throw new BugError('runParse needs a Docker client to parse inside an image.');
  // Loaded here, not with the module: a host-mode parse loads no Docker engine code.
  const { CONTAINER_PIDS_LIMIT, CONTAINER_PROJECT_ROOT, containerPathToHost, hostPathToContainer, imageConfig, imageLayoutDefaults, runSandboxedContainer } =
    await import('./container.js');
  const { id, env: imageEnv } = await imageConfig(docker, image);
  const dagEnv = withTimeout(imageLayoutDefaults(buildDagEnvironment({ mode: 'image', hostEnv: options.hostEnv, envFile }), imageEnv), options.timeoutSeconds);
  return {
    mode: 'image',
    identity: id,
    label: { image },
    dagEnv,
    toHost: (p) => containerPathToHost(projectDir, p),
    toHarness: (p) => hostPathToContainer(projectDir, p),
    defaultDagsFolder: path.join(projectDir, 'dags'),
    network: () => 'none',
    async run(input) {
      const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-parse-out-'));
      try {
        // The image's user (not root) writes the results and the new database template here.
        await fs.chmod(outDir, 0o777);
        const resultsFile = path.join(outDir, 'results.jsonl');
        await fs.writeFile(resultsFile, '', { mode: 0o666 });
        await fs.chmod(resultsFile, 0o666);
        const templateExists = await fs.copyFile(input.dbTemplate, path.join(outDir, 'db-template.db')).then(
          () => true,
          () => false,
        );
        const config: HarnessConfig = {
          ...harnessConfig(input, {
            projectRoot: CONTAINER_PROJECT_ROOT,
            stateDir: `${CONTAINER_STATE}/state`,
            trackRoots: [CONTAINER_PROJECT_ROOT],
          }),
          resultFile: `${CONTAINER_OUT}/results.jsonl`,
          dbTemplate: templateExists ? `${CONTAINER_OUT}/db-template.db` : null,
          dbTemplateOut: templateExists ? null : `${CONTAINER_OUT}/db-new.db`,
        };
        const reader = new MessageReader(input.onMessage);
        const diagnostics = new TailBuffer();
        let offset = 0;
        let readFailure: unknown;
        const pump = async () => {
          const handle = await fs.open(resultsFile, 'r');
          try {
            for (;;) {
              const buffer = Buffer.alloc(256 * 1024);
              const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
              if (bytesRead === 0) return;
              offset += bytesRead;
              reader.push(buffer.subarray(0, bytesRead).toString('utf8'));
            }
          } finally {
            await handle.close();
          }
        };
        let pumping = Promise.resolve();
        const poll = setInterval(() => {
          pumping = pumping.then(pump).catch((error: unknown) => {
            readFailure ??= error;
          });
        }, 100);
        let result;
        try {
          result = await runSandboxedContainer({
            docker,
            image,
            cmd: ['python3', '-c', HARNESS_BOOT, CONTAINER_HARNESS, JSON.stringify(config)],
            env: { ...dagEnv, ...airflowStateEnvironment(`${CONTAINER_STATE}/state`, `${CONTAINER_STATE}/home`) },
            projectDir,
            binds: [`${harnessParentDir()}:${CONTAINER_HARNESS}:ro`, `${outDir}:${CONTAINER_OUT}`],
            memoryBytes: (input.workers + 1) * input.memoryLimitBytes + 1024 * 1024 * 1024,
            onStdout: (chunk) => diagnostics.push(chunk),
            onStderr: (chunk) => diagnostics.push(chunk),
            signal: input.signal,
            timeLimitMs: 60 * 60 * 1000,
          });
        } finally {
          clearInterval(poll);
          await pumping;
        }
        await pump().catch((error: unknown) => {
          readFailure ??= error;
        });
        if (readFailure !== undefined) throw readFailure;
        if (!templateExists) {
          await fs.mkdir(path.dirname(input.dbTemplate), { recursive: true });
          const tmp = `${input.dbTemplate}.${process.pid}.tmp`;
          await fs
            .copyFile(path.join(outDir, 'db-new.db'), tmp)
            .then(() => fs.rename(tmp, input.dbTemplate))
            .catch(() => undefined);
        }
        return {
          sandbox: { projectView: 'copy', pidsLimit: CONTAINER_PIDS_LIMIT },
          exit: {
            exitCode: result.exitCode,
            signal: null,
            diagnostics: diagnostics.toString(),
            incomplete: reader.remainder,
            aborted: result.aborted,
            timedOut: result.timedOut,
          },
        };
      } finally {
        await fs.rm(outDir, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  };
}
