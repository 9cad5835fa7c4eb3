# Shared by the scripts in scripts/engines/: state folders, Debian packages, detached daemons, env output.
# Sourced, not run. Each script keeps its state in .state/engines/<name>/ (ASTRO_DEV_STATE_DIR overrides .state).

engines_repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Resolved, so that daemons record real paths: .state may be a symlink shared by several checkouts.
engines_state_root=$(realpath -m "${ASTRO_DEV_STATE_DIR:-$engines_repo_root/.state}/engines")
# Debian's client, API 1.41, matching the engine; the first `docker` on PATH may be a newer client.
engines_docker_bin=${DOCKER_BIN:-/usr/bin/docker}

engine_say() { printf '%s: %s\n' "${engine_name:-engines}" "$*" >&2; }
engine_die() { engine_say "error: $*"; exit 1; }

# Prints one `KEY=VALUE` line a test can read (the value quoted for a shell, as provision.env does).
engine_env_line() { printf '%s=%q\n' "$1" "$2"; }

engine_missing_packages() {
  local pkg
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || printf '%s\n' "$pkg"
  done
}

# Installs Debian packages the way scripts/provision.sh does: without recommends, with package scripts kept from
# starting services (sshd, podman units) that these scripts start themselves with their own settings, and under
# provision.sh's lock so two apt runs never overlap.
engine_apt_install() {
  local -a missing
  mapfile -t missing < <(engine_missing_packages "$@")
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || engine_die "installing ${missing[*]} needs root"
  local state_dir=${ASTRO_DEV_STATE_DIR:-$engines_repo_root/.state}
  mkdir -p "$state_dir/logs"
  local log=$state_dir/logs/apt-engines.log
  engine_say "installing ${missing[*]} (log: $log)"
  (
    exec 9>"$state_dir/provision.lock"
    flock 9
    # Another run may have installed them while this one waited for the lock.
    mapfile -t missing < <(engine_missing_packages "${missing[@]}")
    ((${#missing[@]})) || exit 0
    policy=/usr/sbin/policy-rc.d added_policy=
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"
      added_policy=1
    fi
    status=0
    {
      env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    } >"$log" 2>&1 </dev/null || status=$?
    [[ -z $added_policy ]] || rm -f "$policy"
    if ((status != 0)); then
      tail -n 30 "$log" >&2
      exit "$status"
    fi
  ) || engine_die "apt-get failed; full log: $log"
}

# The daemon must outlive this script and the test runner that called it: its own session, and none of our
# descriptors beyond stdio (an inherited lock would otherwise be held for the daemon's lifetime).
engine_start_detached() {
  local log=$1
  shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@"
  ) >>"$log" 2>&1 </dev/null &
  engine_started_pid=$!
}

# The pid in a pid file, while it still names a live process whose command is $2 (pids are reused).
engine_live_pid() {
  local file=$1 comm=$2 pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  printf '%s\n' "$pid"
}

engine_stop_pid() {
  local pid=$1 what=$2 deadline=$((SECONDS + 30))
  engine_say "stopping $what $pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      engine_say "$what $pid still running after 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.2
  done
}

# Waits until `$@` succeeds, while process $pid lives; prints the log tail when it dies or the time runs out.
engine_wait_until() {
  local pid=$1 seconds=$2 log=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      engine_say "process $pid exited before answering; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      engine_say "process $pid did not answer within ${seconds}s; see $log"
      return 1
    fi
    sleep 0.2
  done
}

# Copies an image of the main engine into another engine (none of them can pull), unless it already has the same
# image id there.
engine_copy_image() {
  local image=$1 source_host=$2 target_host=$3
  local want have
  want=$("$engines_docker_bin" -H "$source_host" image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
    engine_die "the main engine has no image $image (run scripts/provision.sh)"
  have=$("$engines_docker_bin" -H "$target_host" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [[ $have == "$want" ]]; then
    return 0
  fi
  engine_say "copying $image into $target_host"
  "$engines_docker_bin" -H "$source_host" save "$image" | "$engines_docker_bin" -H "$target_host" load -q >&2
}
