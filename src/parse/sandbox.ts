/**
 * The host-mode sandbox. Where the kernel lets us (root, or unprivileged user namespaces), DAG code runs in new
 * network, PID, IPC and mount namespaces, inside a root filesystem built for the run:
 *
 * - no network at all (not even loopback);
 * - a fresh /proc that shows only the sandbox's own processes, and a minimal /dev;
 * - the project as a copy-on-write view (overlayfs, or a private copy where overlayfs is refused): DAG code may
 *   write into it as it may in the Runtime container, and every write vanishes with the run;
 * - private, empty /tmp, /var/tmp, /dev/shm and /run (no sockets of the host's services);
 * - the user's home, ASTRO_HOME, DOCKER_CONFIG and astro's own state and cache directories replaced by empty
 *   directories (only the interpreter and the harness are shown again where they live below one of them);
 * - everything else read-only, the old root detached, no capabilities, and a cap on the number of processes.
 *
 * The confinement is all or nothing: when it cannot be set up the run fails instead of going on without it.
 * Elsewhere (not Linux, no namespaces, or --no-sandbox) the command runs as a plain process and the report says so.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import { sleep } from '../util/retry.js';
import { harnessParentDir } from './harness.js';
import { isInside } from '../util/paths.js';

export interface SandboxSpec {
  /** Shown at its own path as a copy-on-write view; the working directory. */
  projectDir: string;
  /** The run's own directory on the host (not shown inside); the sandbox keeps its overlay layers here. */
  scratch: string;
  /** Below the scratch directory: shown writable at the same path (Airflow's state, HOME). */
  shared: string;
  /** Directories replaced by empty ones. */
  hide: string[];
  /** Shown again (read-only) where they lie below a hidden directory: the interpreter, the harness. */
  reveal: string[];
  /** Most processes (and threads) the sandbox may hold at once. */
  pidsMax: number;
}

export interface SandboxReport {
  /**
   * How DAG code saw the project: a copy-on-write view (overlayfs) or a private copy (writes vanish), read-only
   * mounts (image mode), or the project itself (no sandbox).
   */
  projectView: 'overlay' | 'copy' | 'read-only' | 'direct';
  pidsLimit: number | null;
}

export interface HostSandbox {
  network: 'none' | 'host';
  /**
   * Wraps a Python command line so that it runs inside the sandbox (the interpreter also builds the sandbox).
   * `cgroup` is the pids cgroup the sandbox makes, for a caller that ends it without `finish` (a standby).
   */
  wrap(command: string, args: string[], spec: SandboxSpec): { command: string; args: string[]; cgroup?: string };
  /** After the wrapped command ended: what the sandbox was, and its leftovers cleaned up. */
  finish(spec: SandboxSpec): Promise<SandboxReport>;
}

/** Exit status of the set-up script when the confinement could not be built (nothing of the command ran). */
export const SANDBOX_SETUP_FAILED = 97;

const isRoot = process.getuid?.() === 0;

// Without root, a user namespace (mapping us to root inside it) is what allows the others.
const UNSHARE_ARGS = [
  ...(isRoot ? [] : ['--user', '--map-root-user']),
  '--net',
  '--pid',
  '--ipc',
  '--uts',
  '--fork',
  '--kill-child',
  '--mount',
  '--propagation',
  'private',
];

/** Builds the sandbox's root and enters it, as the first process of the new namespaces (python/astro_parse/confine.py). */
const CONFINE = path.join(harnessParentDir(), 'astro_parse', 'confine.py');

let probed: boolean | undefined;

function namespacesWork(): boolean {
  if (probed === undefined) {
    const result = spawnSync('unshare', [...UNSHARE_ARGS, '--', '/bin/sh', '-c', 'command -v setpriv >/dev/null'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    probed = result.status === 0;
  }
  return probed;
}

const PIDS_CGROUP_ROOT = '/sys/fs/cgroup/pids';

/** A pids cgroup of our own (cgroup v1, where the host lets us make one): caps forks, threads included. */
function cgroupFor(spec: SandboxSpec): string {
  if (!isRoot) return '-';
  try {
    fs.accessSync(PIDS_CGROUP_ROOT, fs.constants.W_OK);
  } catch {
    return '-';
  }
  return path.join(PIDS_CGROUP_ROOT, `astro-sandbox-${path.basename(spec.scratch)}-${randomBytes(3).toString('hex')}`);
}

const cgroups = new Map<string, string>();

export function hostSandbox(options: { isolate: boolean } = { isolate: true }): HostSandbox {
  if (options.isolate && process.platform === 'linux' && namespacesWork()) {
    return {
      network: 'none',
      wrap: (command, args, spec) => {
        const cgroup = cgroupFor(spec);
        cgroups.set(spec.scratch, cgroup);
        return {
          command: 'unshare',
          cgroup,
          args: [
            ...UNSHARE_ARGS,
            '--',
            // The command's own interpreter, isolated (-I: no PYTHON* variables, no user site; -S: no site-packages).
            command,
            '-I',
            '-S',
            CONFINE,
            spec.projectDir,
            spec.scratch,
            spec.shared,
            cgroup,
            String(spec.pidsMax),
            ...new Set(spec.hide),
            '--',
            ...new Set(spec.reveal),
            '--',
            command,
            ...args,
          ],
        };
      },
      finish: async (spec) => {
        const cgroup = cgroups.get(spec.scratch);
        cgroups.delete(spec.scratch);
        await removeCgroup(cgroup);
        return confinedReport(spec.scratch);
      },
    };
  }
  return {
    network: 'host',
    wrap: (command, args) => ({ command, args }),
    finish: async () => ({ projectView: 'direct', pidsLimit: null }),
  };
}

/** Removes a sandbox's pids cgroup ('-' or undefined: it made none). */
export async function removeCgroup(cgroup: string | undefined): Promise<void> {
  // The namespace's last processes may still be exiting when the command's pipes close.
  for (let attempt = 0; cgroup !== undefined && cgroup !== '-' && attempt < 20; attempt++) {
    try {
      fs.rmdirSync(cgroup);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY') break;
      await sleep(50);
    }
  }
}

/** What a namespace sandbox reported about itself in its scratch directory (python/astro_parse/confine.py). */
export function confinedReport(scratch: string): SandboxReport {
  const read = (name: string) => {
    try {
      return fs.readFileSync(path.join(scratch, 'meta', name), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const pids = read('pids');
  return { projectView: read('view') === 'copy' ? 'copy' : 'overlay', pidsLimit: pids !== undefined ? Number(pids) : null };
}

/**
 * What DAG code must not see: the user's home (config, tokens, SSH and cloud credentials), astro's and Docker's
 * configuration, and astro's own state and cache. A directory that holds the scratch directory cannot be hidden
 * (the sandbox is built there), nor can `/`.
 */
export function hiddenDirectories(input: {
  hostEnv: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  cacheDir: string;
  scratch: string;
}): string[] {
  const { hostEnv } = input;
  const candidates = [
    input.homeDir,
    hostEnv.HOME,
    hostEnv.ASTRO_HOME,
    hostEnv.ASTRO_HOME !== undefined ? path.join(hostEnv.ASTRO_HOME, '.astro') : undefined,
    hostEnv.DOCKER_CONFIG,
    hostEnv.XDG_CONFIG_HOME,
    hostEnv.XDG_CACHE_HOME,
    hostEnv.XDG_STATE_HOME,
    hostEnv.XDG_DATA_HOME,
    hostEnv.ASTRO_CACHE_DIR,
    input.cacheDir,
  ];
  const out: string[] = [];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '' || !path.isAbsolute(candidate)) continue;
    let real: string;
    try {
      real = fs.realpathSync(candidate);
      if (!fs.statSync(real).isDirectory()) continue;
    } catch {
      continue;
    }
    if (real === '/' || isInside(real, input.scratch)) continue;
    for (const p of new Set([path.resolve(candidate), real])) if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** The directories of one sandboxed run: `scratch` on the host, `shared` (state, HOME) shown inside. */
export interface RunDirs {
  scratch: string;
  shared: string;
  stateDir: string;
  homeDir: string;
}

export async function makeRunDirs(prefix: string): Promise<RunDirs> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const shared = path.join(scratch, 'run');
  const dirs = { scratch, shared, stateDir: path.join(shared, 'state'), homeDir: path.join(shared, 'home') };
  await fsp.mkdir(path.join(dirs.stateDir, 'logs'), { recursive: true });
  // HOME is an empty directory of the run: nothing of the user's home is reachable through it.
  await fsp.mkdir(dirs.homeDir, { recursive: true });
  return dirs;
}

export function sandboxSpec(input: {
  projectDir: string;
  dirs: RunDirs;
  reveal: string[];
  hostEnv: Readonly<Record<string, string | undefined>>;
  cacheDir?: string;
  pidsMax?: number;
}): SandboxSpec {
  const hide = hiddenDirectories({
    hostEnv: input.hostEnv,
    homeDir: os.homedir(),
    cacheDir: input.cacheDir ?? '',
    scratch: input.dirs.scratch,
  });
  return {
    projectDir: input.projectDir,
    scratch: input.dirs.scratch,
    shared: input.dirs.shared,
    hide,
    // Showing a directory that holds a hidden one would show that one again: such a path is not shown (the
    // interpreter then fails to start, which is better than a home directory in view).
    reveal: input.reveal.filter((r) => path.isAbsolute(r) && !hide.some((h) => isInside(r, h))),
    pidsMax: input.pidsMax ?? DEFAULT_PIDS_MAX,
  };
}

/** Processes and threads of one sandbox: room for the workers, Airflow's threads, and DAG code that forks. */
export const DEFAULT_PIDS_MAX = 1024;

/** The set-up script's own words (the lines it wrote before giving up) as the reason. */
export function sandboxSetupError(diagnostics: string): UserError {
  const reason = diagnostics
    .split('\n')
    .filter((line) => line.startsWith('astro sandbox: '))
    .map((line) => line.slice('astro sandbox: '.length))
    .pop();
  return new UserError(`The sandbox for DAG code could not be set up${reason !== undefined ? `: ${reason}` : ''}.`, {
    nextStep: 'Parse inside the project image with --image-name, or run on a Linux machine that allows mount and PID namespaces.',
  });
}
