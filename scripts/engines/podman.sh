#!/usr/bin/env bash
# Debian's Podman for the tests, serving its Docker-compatible API with `podman system service` on a Unix socket
# this script owns. Rootful, with its own storage and run folders (nothing shared with Docker or a system Podman),
# cgroupfs and file events, as there is no systemd here.
#
#   scripts/engines/podman.sh start    install podman (once), start the service, copy the stand-in Runtime base
#                                      image into it; prints the env a test needs (KEY=VALUE lines)
#   scripts/engines/podman.sh env      print that env when the service answers (exit 1 otherwise)
#   scripts/engines/podman.sh status   say whether it answers
#   scripts/engines/podman.sh stop     stop the service (storage is kept)
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

start() {
  [[ $EUID -eq 0 ]] || engine_die "starting a rootful podman service needs root"
  engine_apt_install podman
  command -v curl >/dev/null || engine_die "curl is needed to check the service"
  mkdir -p "$dir/storage" "$dir/run" "$dir/tmp"
  exec 8>"$dir/lock"
  flock 8
  # The test registries listen on ephemeral ports of 127.0.0.1 without TLS; Podman, unlike dockerd, does not treat
  # loopback registries as insecure by itself.
  printf '[[registry]]\nprefix = "127.0.0.1"\nlocation = "127.0.0.1"\ninsecure = true\n' >"$registries_conf"
  local pid
  if pid=$(engine_live_pid "$pid_file" podman) && answers >/dev/null 2>&1; then
    engine_say "podman service $pid answers on $socket"
  else
    [[ -z ${pid:-} ]] || engine_stop_pid "$pid" "podman service"
    rm -f "$socket"
    local -a args
    mapfile -t args < <(podman_args)
    engine_say "starting podman system service on $socket (log: $log)"
    CONTAINERS_REGISTRIES_CONF=$registries_conf engine_start_detached "$log" \
      podman "${args[@]}" system service --time=0 "unix://$socket"
    pid=$engine_started_pid
    printf '%s\n' "$pid" >"$pid_file"
    engine_wait_until "$pid" 60 "$log" answers || exit 1
  fi
  engine_copy_image "$image" "$main_host" "unix://$socket"
  print_env
}

stop() {
  local pid
  if pid=$(engine_live_pid "$pid_file" podman); then engine_stop_pid "$pid" "podman service"; else engine_say "not running"; fi
  rm -f "$pid_file" "$socket"
}

case ${1:-} in
  start) start ;;
  env) answers >/dev/null 2>&1 || engine_die "not running (scripts/engines/podman.sh start)"; print_env ;;
  status) if answers >/dev/null 2>&1; then echo "podman answers on $socket"; else echo "not running"; exit 1; fi ;;
  stop) stop ;;
  *) printf 'usage: %s start|env|status|stop\n' "$0" >&2; exit 2 ;;
esac
