/**
 * The host-mode sandbox. Where the kernel lets us (root, or unprivileged user namespaces), the harness runs in new
 * network, PID and mount namespaces: no network at all (not even loopback), every process it leaves behind dies
 * with it, and the filesystem is read-only except for the temporary directories it needs (the project included:
 * DAG code can read it, not change it). Elsewhere it runs as a plain process and the report says so.
 */
import { spawnSync } from 'node:child_process';

export interface SandboxPaths {
  /** Read-only even if it lies below a writable directory. */
  readOnly: string;
  /** Stay writable (temporary directories, the cache the harness writes to). */
  writable: string[];
}

export interface HostSandbox {
  /** Wraps a command line so that it runs inside the sandbox. */
  wrap(command: string, args: string[], paths: SandboxPaths): { command: string; args: string[] };
  network: 'none' | 'host';
}

// Without root, a user namespace (mapping us to root inside it) is what allows the others.
const UNSHARE_ARGS = [
  ...(process.getuid?.() === 0 ? [] : ['--map-root-user']),
  '--net',
  '--pid',
  '--fork',
  '--kill-child',
  '--mount',
  '--propagation',
  'private',
];

// Runs as the first process of the new namespaces (mounts are private to them): keep the writable directories
// writable (bind mounts of their own), make the project and then every other mount read-only, then become the
// command. Best effort: the harness reports what it finds read-only.
//   sh -c SCRIPT astro-sandbox <read-only dir> <writable dir>... -- <command> <args>...
const CONFINE_AND_EXEC = `
ro="$1"; shift
keep="
"
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  mount --bind "$1" "$1" 2>/dev/null && keep="$keep$1
"
  shift
done
shift
mount --bind "$ro" "$ro" 2>/dev/null && mount -o remount,bind,ro "$ro" "$ro" 2>/dev/null
keep="$keep$ro
"
for m in $(awk '{print $2}' /proc/self/mounts); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|*\\\\*) continue ;; esac
  case "$keep" in *"
$m
"*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null
done
exec "$@"
`;

let probed: boolean | undefined;

function namespacesWork(): boolean {
  if (probed === undefined) {
    const result = spawnSync('unshare', [...UNSHARE_ARGS, '--', '/bin/sh', '-c', 'exit 0'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    probed = result.status === 0;
  }
  return probed;
}

export function hostSandbox(options: { isolate: boolean } = { isolate: true }): HostSandbox {
  if (options.isolate && process.platform === 'linux' && namespacesWork()) {
    return {
      network: 'none',
      wrap: (command, args, paths) => ({
        command: 'unshare',
        args: [
          ...UNSHARE_ARGS,
          '--',
          '/bin/sh',
          '-c',
          CONFINE_AND_EXEC,
          'astro-sandbox',
          paths.readOnly,
          ...[...new Set(paths.writable)],
          '--',
          command,
          ...args,
        ],
      }),
    };
  }
  return { network: 'host', wrap: (command, args) => ({ command, args }) };
}
