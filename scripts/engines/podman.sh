#!/usr/bin/env bash
# Debian's Podman for the tests, serving its Docker-compatible API with `podman system service` on a Unix socket
# this script owns. Rootful, with its own storage and run folders (nothing shared with Docker or a system Podman),
# cgroupfs and file events, as there is no systemd here.
#
#   scripts/engines/podman.sh start    install podman (once), start the service, copy the stand-in Runtime base
#                                      image into it; prints the env a test needs (KEY=VALUE lines)
#   scripts/engines/podman.sh env      print that env when the service answers (exit 1 otherwise)
#   scripts/engines/podman.sh status   say whether it answers
#   scripts/engines/podman.sh stop     stop the service (storage is kept, its overlay mount released)
#
# Printed: DOCKER_HOST (unix://…/podman.sock), ENGINE_PODMAN_SOCKET, ENGINE_PODMAN_RUNTIME_IMAGE,
# ENGINE_PODMAN_REGISTRIES_CONF (registries.conf the service reads: 127.0.0.1 registries over plain HTTP).
#
# Environment: RUNTIME_BASE_IMAGE (default astrocrpublic.azurecr.io/runtime:3.1-8-base), MAIN_DOCKER_HOST (where that
# image is copied from; default unix:///var/run/docker.sock).
set -euo pipefail
engine_name=podman
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image=${RUNTIME_BASE_IMAGE:-astrocrpublic.azurecr.io/runtime:3.1-8-base}
main_host=${MAIN_DOCKER_HOST:-unix:///var/run/docker.sock}
dir=$engines_state_root/podman
socket=$dir/podman.sock
pid_file=$dir/service.pid
log=$dir/service.log
registries_conf=$dir/registries.conf
containers_conf=$dir/containers.conf

print_env() {
  engine_env_line DOCKER_HOST "unix://$socket"
  engine_env_line ENGINE_PODMAN_SOCKET "$socket"
  engine_env_line ENGINE_PODMAN_RUNTIME_IMAGE "$image"
  engine_env_line ENGINE_PODMAN_REGISTRIES_CONF "$registries_conf"
}

answers() { curl -fsS --max-time 5 --unix-socket "$socket" http://d/_ping; }

podman_args() {
  printf '%s\n' --root "$dir/storage" --runroot "$dir/run" --tmpdir "$dir/tmp" \
    --cgroup-manager cgroupfs --events-backend file
}

# containers.conf giving containers the hard open-files and processes limits of process $1 ("self": this shell).
ulimits_conf() {
  local limits=/proc/$1/limits nofile nproc
  nofile=$(awk '/^Max open files/ {print $5}' "$limits")
  nproc=$(awk '/^Max processes/ {print $4}' "$limits")
  [[ $nofile != unlimited ]] || nofile=-1
  [[ $nproc != unlimited ]] || nproc=-1
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc"
}

# Whether service $1 was started with our containers.conf (a service started by an older copy of this script was not).
reads_containers_conf() {
  tr '\0' '\n' <"/proc/$1/environ" | grep -qxF "CONTAINERS_CONF=$containers_conf"
}

start_service() {
  rm -f "$socket"
  local -a args
  mapfile -t args < <(podman_args)
  engine_say "starting podman system service on $socket (log: $log)"
  CONTAINERS_REGISTRIES_CONF=$registries_conf CONTAINERS_CONF=$containers_conf engine_start_detached "$log" \
    podman "${args[@]}" system service --time=0 "unix://$socket"
  printf '%s\n' "$engine_started_pid" >"$pid_file"
  engine_wait_until "$engine_started_pid" 60 "$log" answers || exit 1
}

start() {
  [[ $EUID -eq 0 ]] || engine_die "starting a rootful podman service needs root"
  engine_apt_install podman
  command -v curl >/dev/null || engine_die "curl is needed to check the service"
  mkdir -p "$dir/storage" "$dir/run" "$dir/tmp"
  exec 8>"$dir/lock"
  flock 8
  # The test registries listen on ephemeral ports of 127.0.0.1 without TLS (the local platform's as localhost:PORT);
  # Podman, unlike dockerd, does not treat loopback registries as insecure by itself.
  # The service reads its configuration once, at start: a changed file means a restart.
  local conf stale=false
  conf=$(printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n\n' 127.0.0.1 127.0.0.1 localhost localhost)
  if [[ ! -f $registries_conf || $(<"$registries_conf") != "$conf" ]]; then
    printf '%s\n' "$conf" >"$registries_conf"
    stale=true
  fi
  local pid
  if pid=$(engine_live_pid "$pid_file" podman) && [[ $stale == false ]] && reads_containers_conf "$pid" && answers >/dev/null 2>&1; then
    engine_say "podman service $pid answers on $socket"
  else
    [[ -z ${pid:-} ]] || engine_stop_pid "$pid" "podman service"
    [[ -f $containers_conf ]] || ulimits_conf self >"$containers_conf"
    start_service
    pid=$engine_started_pid
  fi
  # Rootful Podman gives each container the highest open-files and processes limits the kernel allows, which only a
  # root with CAP_SYS_RESOURCE may set: in a container or VM without it every container start fails ("error setting
  # rlimits"). Containers get the service's own hard limits instead (read once it runs: Podman adjusts its own at
  # start), which are always allowed.
  conf=$(ulimits_conf "$pid")
  if [[ $(cat "$containers_conf" 2>/dev/null) != "$conf" ]]; then
    printf '%s\n' "$conf" >"$containers_conf"
    engine_stop_pid "$pid" "podman service"
    start_service
  fi
  engine_copy_image "$image" "$main_host" "unix://$socket"
  print_env
}

stop() {
  local pid
  if pid=$(engine_live_pid "$pid_file" podman); then engine_stop_pid "$pid" "podman service"; else engine_say "not running"; fi
  rm -f "$pid_file" "$socket"
  # Podman's overlay driver keeps its storage folder mounted on itself after the service ends; left mounted, the
  # checkout cannot be deleted (EBUSY). The next start mounts it again.
  if mountpoint -q "$dir/storage/overlay" 2>/dev/null; then umount "$dir/storage/overlay" || engine_say "could not unmount $dir/storage/overlay"; fi
}

case ${1:-} in
  start) start ;;
  env) answers >/dev/null 2>&1 || engine_die "not running (scripts/engines/podman.sh start)"; print_env ;;
  status) if answers >/dev/null 2>&1; then echo "podman answers on $socket"; else echo "not running"; exit 1; fi ;;
  stop) stop ;;
  *) printf 'usage: %s start|env|status|stop\n' "$0" >&2; exit 2 ;;
esac
