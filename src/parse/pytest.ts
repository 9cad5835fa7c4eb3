/**
 * `astro dev pytest`: runs pytest on the project's tests (or a given path) on the host or inside the project
 * image, in the same sandbox as the parse, streaming its output. Only exit code 0 counts as passed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BugError, UsageError, UserError } from '../errors.js';
import type { DockerClient } from './container.js';
import { parseEnvFile } from './envFile.js';
import { findInterpreter, interpreterIdentity } from './interpreter.js';
import { hostSandbox, makeRunDirs, SANDBOX_SETUP_FAILED, sandboxSetupError, sandboxSpec } from './sandbox.js';
import { airflowStateEnvironment, buildDagEnvironment, projectConfigFile, runtimeLayoutDefaults } from './sandboxEnv.js';
import { relativeInside } from '../util/paths.js';

export interface PytestOptions {
  projectDir: string;
  /** Test file or directory, relative to the project; default `tests`. */
  path?: string;
  /** Extra pytest arguments (`--args`), already split. */
  args?: string[];
  image?: string;
  python?: string;
  configuredPython?: string;
  envFile?: string;
  hostEnv: Readonly<Record<string, string | undefined>>;
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  noSandbox?: boolean;
  /** astro's cache directory (remembers interpreter probes; hidden from the tests like the rest of astro's state). */
  cacheDir?: string;
  /** Memory limit of the container in image mode; default 4096 MiB. */
  memoryLimitMb?: number;
}

export interface PytestPorts {
  docker?: DockerClient;
}

export interface PytestResult {
  exitCode: number;
  passed: boolean;
  mode: 'host' | 'image';
  network: 'none' | 'host';
}

// The tests see a throwaway view of the project; pytest's cache would be written only to vanish.
const PYTEST_FLAGS = ['-p', 'no:cacheprovider'];

/**
 * `python -m pytest`, after closing every file descriptor but stdin, stdout and stderr: none that astro's process
 * inherited from its own caller reaches the tests. (`-c` puts the working directory first on sys.path, as `-m`.)
 */
const PYTEST_BOOT = 'import os, runpy, sys; os.closerange(3, 65536); sys.argv[0] = "pytest"; runpy.run_module("pytest", run_name="__main__", alter_sys=True)';

export async function runPytest(options: PytestOptions, ports: PytestPorts = {}): Promise<PytestResult> {
  const projectDir = path.resolve(options.projectDir);
  const target = testTarget(projectDir, options.path ?? 'tests');
  const envFilePath = path.resolve(projectDir, options.envFile ?? '.env');
  const envContent = await fs.readFile(envFilePath, 'utf8').catch(() => undefined);
  const envFile = envContent === undefined ? [] : parseEnvFile(envContent, (n) => options.hostEnv[n], path.relative(projectDir, envFilePath));
  const args = [...PYTEST_FLAGS, target, ...(options.args ?? [])];

  if (options.image !== undefined) {
    const docker = ports.docker;
    if (docker === undefined) throw new BugError('runPytest needs a Docker client to run inside an image.');
    // Loaded only here: pytest on the host loads no Docker engine code.
    const { imageConfig, imageLayoutDefaults, runSandboxedContainer } = await import('./container.js');
    const image = await imageConfig(docker, options.image);
    const env = {
      ...imageLayoutDefaults(buildDagEnvironment({ mode: 'image', hostEnv: options.hostEnv, envFile }), image.env),
      ...airflowStateEnvironment('/tmp/astro-pytest/state', '/tmp/astro-pytest/home'),
    };
    const result = await runSandboxedContainer({
      docker,
      image: options.image,
      cmd: ['sh', '-c', 'mkdir -p "$HOME" /tmp/astro-pytest/state/logs && exec python3 -m pytest "$@"', 'pytest', ...args],
      env,
      projectDir,
      memoryBytes: (options.memoryLimitMb ?? 4096) * 1024 * 1024,
      onStdout: (chunk) => options.onOutput?.(chunk, 'stdout'),
      onStderr: (chunk) => options.onOutput?.(chunk, 'stderr'),
      signal: options.signal,
    });
    if (result.aborted) throw new UserError('pytest was interrupted.');
    return { exitCode: result.exitCode, passed: result.exitCode === 0, mode: 'image', network: 'none' };
  }

  const choice = await findInterpreter({ projectDir, python: options.python, configuredPython: options.configuredPython });
  const sandbox = hostSandbox({ isolate: options.noSandbox !== true });
  const dirs = await makeRunDirs('astro-pytest-');
  try {
    const dagEnv = runtimeLayoutDefaults(buildDagEnvironment({ mode: 'host', hostEnv: options.hostEnv, envFile }), projectDir);
    const env = { ...dagEnv, ...airflowStateEnvironment(dirs.stateDir, dirs.homeDir, await projectConfigFile(dagEnv, dirs.shared)) };
    const interpreter = await interpreterIdentity(choice.python, options.cacheDir ?? dirs.scratch, { PATH: dagEnv.PATH ?? '/usr/bin:/bin' });
    const spec = sandboxSpec({ projectDir, dirs, reveal: interpreter.prefixes, hostEnv: options.hostEnv, cacheDir: options.cacheDir });
    const { command, args: argv } = sandbox.wrap(choice.python, ['-c', PYTEST_BOOT, ...args], spec);
    let diagnostics = '';
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = spawn(command, argv, { cwd: projectDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let aborted = false;
      const onAbort = () => {
        aborted = true;
        child.kill('SIGTERM');
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => options.onOutput?.(chunk, 'stdout'));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        diagnostics = (diagnostics + chunk).slice(-4000);
        options.onOutput?.(chunk, 'stderr');
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        options.signal?.removeEventListener('abort', onAbort);
        if (aborted) reject(new UserError('pytest was interrupted.'));
        else resolve(code ?? 128 + (signal !== null ? os.constants.signals[signal] : 0));
      });
    }).finally(() => sandbox.finish(spec));
    if (exitCode === SANDBOX_SETUP_FAILED && sandbox.network === 'none') throw sandboxSetupError(diagnostics);
    return { exitCode, passed: exitCode === 0, mode: 'host', network: sandbox.network };
  } finally {
    await fs.rm(dirs.scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** pytest runs from the project root in both modes, so the target is given relative to it. */
function testTarget(projectDir: string, target: string): string {
  const absolute = path.resolve(projectDir, target);
  const rel = relativeInside(projectDir, absolute);
  if (rel === undefined) {
    throw new UsageError(`The test path ${target} is outside the project ${projectDir}.`);
  }
  return rel === '' ? '.' : rel.split(path.sep).join('/');
}
