#!/usr/bin/env bash
# The Docker Engine the integration tests build and run against.
#
#   scripts/dockerd.sh ensure   use the engine answering on the socket, or start dockerd in the background
#   scripts/dockerd.sh stop     stop dockerd, but only if `ensure` started it
#   scripts/dockerd.sh status   say whether an engine answers and who started it (exit 1 when none answers)
#
# Environment: DOCKER_SOCKET (default /var/run/docker.sock), DOCKER_BIN (default /usr/bin/docker: the Debian
# client that matches the engine; the first `docker` on PATH may be a newer client-only binary),
# DOCKERD_WAIT_SECONDS (default 60), DOCKERD_ARGS (extra dockerd flags, split on spaces, e.g. a separate
# --data-root/--exec-root/--pidfile for a second engine; never `--bridge none` beside a running engine: dockerd
# then deletes the shared docker0 interface), ASTRO_DEV_STATE_DIR (default <repo>/.state).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir=${ASTRO_DEV_STATE_DIR:-$repo_root/.state}
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
docker_bin=${DOCKER_BIN:-/usr/bin/docker}
wait_seconds=${DOCKERD_WAIT_SECONDS:-60}
read -r -a extra_args <<<"${DOCKERD_ARGS:-}"
pid_file=$state_dir/dockerd.pid
log_file=$state_dir/dockerd.log

say() { printf 'dockerd: %s\n' "$*" >&2; }

engine_version() {
  if [[ -x $docker_bin ]]; then
    "$docker_bin" -H "unix://$socket" version --format '{{.Server.Version}}' 2>/dev/null
  elif command -v curl >/dev/null; then
    curl -fsS --max-time 5 --unix-socket "$socket" http://localhost/version 2>/dev/null |
      sed -n 's/.*"Version":"\([^"]*\)".*/\1/p' | head -n1
  else
    return 1
  fi
}

# The pid file only counts while it names a live dockerd: pids are reused after a reboot or a crash.
our_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

# dockerd's own pid file (its --pidfile, or /var/run/docker.pid) and the one it writes for the containerd it starts:
# after a crash, or on a machine restored from a snapshot taken while an engine ran, they name processes that are gone,
# and dockerd then refuses to start ("pid file found, ensure docker is not running"). A pid file naming a live process
# of the right name is left alone.
flag_value() {
  local name=$1 default=$2 i arg
  for ((i = 0; i < ${#extra_args[@]}; i++)); do
    arg=${extra_args[i]}
    case $arg in
      "$name"=*) printf '%s\n' "${arg#*=}"; return ;;
      "$name") printf '%s\n' "${extra_args[i + 1]:-}"; return ;;
    esac
  done
  printf '%s\n' "$default"
}

clear_stale_pid_file() {
  local file=$1 comm=$2 pid
  [[ -f $file ]] || return 0
  pid=$(<"$file") || return 0
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]; then
    return 0
  fi
  say "removing stale $file (no $comm runs as pid ${pid:-?})"
  rm -f "$file"
}

# A dockerd of someone else's that is running but does not (yet) answer on the socket: its pid, from its pid file.
running_engine_pid() {
  local file pid
  file=$(flag_value --pidfile /var/run/docker.pid)
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

# The engine must outlive this script and whatever test runner called it: its own session, and none of our
# descriptors beyond stdio (an inherited lock, such as provision.sh's, would otherwise be held for its lifetime).
start_detached() {
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@"
  ) >>"$log_file" 2>&1 </dev/null &
}

ensure() {
  local version
  if version=$(engine_version) && [[ -n $version ]]; then
    say "engine $version answers on $socket"
    return 0
  fi
  local pid
  if pid=$(our_pid); then
    say "waiting for dockerd $pid started earlier"
  elif pid=$(running_engine_pid); then
    say "waiting for dockerd $pid (not started by this script), which does not answer on $socket yet"
  else
    local dockerd_bin
    dockerd_bin=$(command -v dockerd || true)
    [[ -n $dockerd_bin ]] || { say "dockerd is not installed (Debian package docker.io)"; return 1; }
    [[ $EUID -eq 0 ]] || { say "no engine answers on $socket and starting dockerd needs root"; return 1; }
    mkdir -p "$state_dir"
    clear_stale_pid_file "$(flag_value --pidfile /var/run/docker.pid)" dockerd
    clear_stale_pid_file "$(flag_value --exec-root /var/run/docker)/containerd/containerd.pid" containerd
    say "starting $dockerd_bin on $socket (log: $log_file)"
    start_detached "$dockerd_bin" --host "unix://$socket" "${extra_args[@]}"
    pid=$!
    printf '%s\n' "$pid" >"$pid_file"
  fi
  local deadline=$((SECONDS + wait_seconds))
  until version=$(engine_version) && [[ -n $version ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited before answering; last lines of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      rm -f "$pid_file"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "dockerd $pid did not answer on $socket within ${wait_seconds}s; see $log_file"
      return 1
    fi
    sleep 0.2
  done
  say "engine $version answers on $socket (dockerd $pid)"
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$pid_file"
    say "no dockerd started by this script is running; leaving any other engine alone"
    return 0
  fi
  say "stopping dockerd $pid"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "dockerd $pid still running after 30s"
      return 1
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  say "stopped"
}

status() {
  local version pid
  if version=$(engine_version) && [[ -n $version ]]; then
    if pid=$(our_pid); then
      printf 'engine %s answers on %s (dockerd %s, started by scripts/dockerd.sh)\n' "$version" "$socket" "$pid"
    else
      printf 'engine %s answers on %s (not started by scripts/dockerd.sh)\n' "$version" "$socket"
    fi
    return 0
  fi
  printf 'no engine answers on %s\n' "$socket"
  return 1
}

case ${1:-} in
  ensure) ensure ;;
  stop) stop ;;
  status) status ;;
  *)
    printf 'usage: %s ensure|stop|status\n' "$0" >&2
    exit 2
    ;;
esac
