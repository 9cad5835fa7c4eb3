// scripts/dockerd.sh on a machine where an engine once ran and is gone (a crash, or a machine restored from a snapshot
// taken while dockerd ran): its pid files name dead pids, or pids reused by other processes, and dockerd refuses to
// start ("pid file found"). The script must clear those and start the engine, and leave a live engine's pid file alone.
// A stand-in `dockerd` (a script run by its #! line without env: its /proc comm is its file name) behaves as the real one does about its pid file; a
// stand-in client answers once the stand-in's socket exists.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const script = path.resolve('scripts/dockerd.sh');

let dir: string;
let env: NodeJS.ProcessEnv;
const children: number[] = [];

const standInDockerd = `#!/bin/bash
pidfile=/var/run/docker.pid exec_root=/var/run/docker socket=
while (($#)); do
  case $1 in
    --pidfile) pidfile=$2; shift ;;
    --exec-root) exec_root=$2; shift ;;
    --host) socket=\${2#unix://}; shift ;;
  esac
  shift
done
if [[ -e $pidfile ]]; then echo "failed to start daemon: pid file found, ensure docker is not running or delete $pidfile"; exit 1; fi
if [[ -e $exec_root/containerd/containerd.pid ]]; then
  owner=$(cat "/proc/$(<"$exec_root/containerd/containerd.pid")/comm" 2>/dev/null)
  [[ -z $owner || $owner == containerd ]] || { echo "containerd pid file names $owner"; exit 1; }
fi
echo $$ >"$pidfile"
touch "$socket"
trap 'rm -f "$pidfile" "$socket"; exit 0' TERM
while :; do sleep 0.1; done
`;

const standInClient = `#!/usr/bin/env bash
# docker -H unix://<socket> version --format ...
[[ -e \${2#unix://} ]] && echo 0.0.0-stand-in
`;

function run(...args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync('bash', [script, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stderr: result.stderr };
}

/** A pid no process has: one that ran and was reaped. */
function deadPid(): number {
  const child = spawnSync('bash', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

/** A live process whose comm is not dockerd (pid reused by something else). */
function otherProcess(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child.pid!);
  return child.pid!;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-dockerd-script-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(path.join(dir, 'exec', 'containerd'), { recursive: true });
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'dockerd'), standInDockerd, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'docker'), standInClient, { mode: 0o755 });
  env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    DOCKER_BIN: path.join(bin, 'docker'),
    DOCKER_SOCKET: path.join(dir, 'docker.sock'),
    DOCKERD_ARGS: `--pidfile ${path.join(dir, 'docker.pid')} --exec-root ${path.join(dir, 'exec')}`,
    DOCKERD_WAIT_SECONDS: '20',
    ASTRO_DEV_STATE_DIR: path.join(dir, 'state'),
  };
});

afterEach(() => {
  run('stop');
  // Whatever a failed test left: the processes it spawned, and any stand-in engine running from this folder.
  const standIns = fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
  for (const pid of [...children.splice(0), ...standIns]) {
    try {
      process.kill(pid);
    } catch {
      // already gone
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

const engineComm = (pid: string) => fs.readFileSync(`/proc/${pid.trim()}/comm`, 'utf8').trim();

describe('scripts/dockerd.sh ensure', () => {
  it('removes pid files naming dead processes, then starts the engine', () => {
    const stale = deadPid();
    fs.writeFileSync(path.join(dir, 'docker.pid'), `${stale}`);
    fs.writeFileSync(path.join(dir, 'exec', 'containerd', 'containerd.pid'), `${deadPid()}`);

    const { status, stderr } = run('ensure');

    expect(stderr).toContain(`removing stale ${path.join(dir, 'docker.pid')} (no dockerd runs as pid ${stale})`);
    expect(stderr).toContain('containerd.pid (no containerd runs as pid');
    expect(status).toBe(0);
    const started = fs.readFileSync(path.join(dir, 'docker.pid'), 'utf8');
    expect(engineComm(started)).toBe('dockerd');
    expect(fs.existsSync(path.join(dir, 'exec', 'containerd', 'containerd.pid'))).toBe(false);
  });

  it('removes pid files whose pids now belong to other programs', () => {
    const other = otherProcess();
    fs.writeFileSync(path.join(dir, 'docker.pid'), `${other}\n`);
    fs.writeFileSync(path.join(dir, 'exec', 'containerd', 'containerd.pid'), `${otherProcess()}`);

    const { status, stderr } = run('ensure');

    expect(stderr).toContain(`(no dockerd runs as pid ${other})`);
    expect(status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'docker.pid'), 'utf8').trim()).not.toBe(`${other}`);
  });

  it('removes an empty or garbled pid file', () => {
    fs.writeFileSync(path.join(dir, 'docker.pid'), 'not a pid');
    const { status, stderr } = run('ensure');
    expect(stderr).toContain('removing stale');
    expect(status).toBe(0);
  });

  it("leaves a live engine's pid file alone and waits for it instead of starting a second", () => {
    // An engine someone else started, which answers on the socket only after a moment.
    const pidFile = path.join(dir, 'docker.pid');
    const own = spawn(path.join(dir, 'bin', 'dockerd'), ['--pidfile', pidFile, '--host', `unix://${path.join(dir, 'other.sock')}`], {
      stdio: 'ignore',
    });
    children.push(own.pid!);
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(pidFile) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    const later = spawn('bash', ['-c', `sleep 1; touch ${env.DOCKER_SOCKET}`], { stdio: 'ignore' });
    children.push(later.pid!);

    const { status, stderr } = run('ensure');

    expect(stderr).toContain(`waiting for dockerd ${own.pid} (not started by this script)`);
    expect(stderr).not.toContain('removing stale');
    expect(stderr).not.toContain('starting');
    expect(status).toBe(0);
    expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(`${own.pid}`);
  });
});
