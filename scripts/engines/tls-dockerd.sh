#!/usr/bin/env bash
# A second Docker Engine for the tests, reached over TCP with mutual TLS on 127.0.0.1, the way CI reaches a
# `docker:dind` service. It has its own data, exec root, pid file, containerd and Unix socket, and its own bridge,
# so it never touches the main engine's docker0 or iptables rules.
#
#   scripts/engines/tls-dockerd.sh start    make the certificates (once), start dockerd, copy the stand-in Runtime
#                                           base image into it; prints the env a test needs (KEY=VALUE lines)
#   scripts/engines/tls-dockerd.sh env      print that env when the engine answers (exit 1 otherwise)
#   scripts/engines/tls-dockerd.sh status   say whether it answers
#   scripts/engines/tls-dockerd.sh stop     stop it and remove its bridge (data and certificates are kept)
#
# Printed: DOCKER_HOST (tcp://127.0.0.1:PORT), DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem of
# a client the engine accepts), ENGINE_TLS_WRONG_CA_CERT_PATH (the same client, trusting another CA),
# ENGINE_TLS_CA_DIR (ca.pem, cert.pem, key.pem for `docker context create --docker host=…,ca=…`), ENGINE_TLS_SOCKET
# (the engine's own Unix socket, for setup and checks), ENGINE_TLS_RUNTIME_IMAGE (the image it holds).
#
# Environment: ENGINE_TLS_PORT (default 23760), ENGINE_TLS_BRIDGE (default astro-tls0), ENGINE_TLS_SUBNET
# (default 172.31.250.1/24), RUNTIME_BASE_IMAGE (default astrocrpublic.azurecr.io/runtime:3.1-8-base),
# MAIN_DOCKER_HOST (where that image is copied from; default unix:///var/run/docker.sock).
set -euo pipefail
engine_name=tls-dockerd
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

port=${ENGINE_TLS_PORT:-23760}
bridge=${ENGINE_TLS_BRIDGE:-astro-tls0}
subnet=${ENGINE_TLS_SUBNET:-172.31.250.1/24}
image=${RUNTIME_BASE_IMAGE:-astrocrpublic.azurecr.io/runtime:3.1-8-base}
main_host=${MAIN_DOCKER_HOST:-unix:///var/run/docker.sock}
dir=$engines_state_root/tls-dockerd
certs=$dir/certs
socket=$dir/docker.sock
pid_file=$dir/dockerd.pid
log=$dir/dockerd.log

print_env() {
  engine_env_line DOCKER_HOST "tcp://127.0.0.1:$port"
  engine_env_line DOCKER_TLS_VERIFY 1
  engine_env_line DOCKER_CERT_PATH "$certs/client"
  engine_env_line ENGINE_TLS_WRONG_CA_CERT_PATH "$certs/client-wrong-ca"
  engine_env_line ENGINE_TLS_CA_DIR "$certs/client"
  engine_env_line ENGINE_TLS_SOCKET "$socket"
  engine_env_line ENGINE_TLS_RUNTIME_IMAGE "$image"
}

answers_on_socket() { "$engines_docker_bin" -H "unix://$socket" version --format '{{.Server.Version}}'; }
answers_over_tls() {
  "$engines_docker_bin" -H "tcp://127.0.0.1:$port" --tlsverify --tlscacert "$certs/client/ca.pem" \
    --tlscert "$certs/client/cert.pem" --tlskey "$certs/client/key.pem" version --format '{{.Server.Version}}'
}

# A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a second CA that signed
# nothing the engine presents (for "wrong CA" tests). Made once; kept across restarts.
make_certs() {
  [[ -f $certs/.complete ]] && return 0
  engine_say "making certificates in $certs"
  rm -rf "$certs"
  mkdir -p "$certs"/{ca,wrong-ca,server,client,client-wrong-ca}
  local days=3650 subj='/O=astro-deploy-cli tests'
  (
    cd "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca/key.pem -out ca/cert.pem -days $days -subj "$subj/CN=astro test engine CA"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong-ca/key.pem -out wrong-ca/cert.pem -days $days -subj "$subj/CN=some other CA"
    openssl req -newkey rsa:2048 -nodes -keyout server/key.pem -out server/req.pem -subj "$subj/CN=127.0.0.1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server/ext.cnf
    openssl x509 -req -in server/req.pem -CA ca/cert.pem -CAkey ca/key.pem -CAcreateserial -out server/cert.pem \
      -days $days -extfile server/ext.cnf
    openssl req -newkey rsa:2048 -nodes -keyout client/key.pem -out client/req.pem -subj "$subj/CN=astro test client"
    printf 'extendedKeyUsage=clientAuth\n' >client/ext.cnf
    openssl x509 -req -in client/req.pem -CA ca/cert.pem -CAkey ca/key.pem -CAcreateserial -out client/cert.pem \
      -days $days -extfile client/ext.cnf
    cp ca/cert.pem client/ca.pem
    cp client/cert.pem client/key.pem client-wrong-ca/
    cp wrong-ca/cert.pem client-wrong-ca/ca.pem
    rm -f server/req.pem client/req.pem
    chmod 0600 ca/key.pem wrong-ca/key.pem server/key.pem client/key.pem client-wrong-ca/key.pem
  ) >"$dir/openssl.log" 2>&1 || { tail -n 20 "$dir/openssl.log" >&2; engine_die "openssl failed"; }
  touch "$certs/.complete"
}

# dockerd deletes docker0 when told --bridge=none, and fights over it when both use it: this engine gets a bridge
# of its own, made here because dockerd creates only the default one itself.
ensure_bridge() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$subnet" dev "$bridge"
  fi
  ip link set "$bridge" up
}

start() {
  [[ $EUID -eq 0 ]] || engine_die "starting a second dockerd needs root"
  command -v dockerd >/dev/null || engine_die "dockerd is not installed (Debian package docker.io; run scripts/provision.sh)"
  mkdir -p "$dir"
  exec 8>"$dir/lock"
  flock 8
  make_certs
  local pid
  if pid=$(engine_live_pid "$pid_file" dockerd) && answers_on_socket >/dev/null 2>&1; then
    engine_say "dockerd $pid answers on tcp://127.0.0.1:$port"
  else
    [[ -z ${pid:-} ]] || engine_stop_pid "$pid" dockerd
    ensure_bridge
    mkdir -p "$dir/data" "$dir/exec"
    printf '{}\n' >"$dir/daemon.json"
    engine_say "starting dockerd on tcp://127.0.0.1:$port (log: $log)"
    engine_start_detached "$log" dockerd \
      --config-file "$dir/daemon.json" \
      --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pid_file" \
      -H "unix://$socket" -H "tcp://127.0.0.1:$port" \
      --tlsverify --tlscacert "$certs/ca/cert.pem" --tlscert "$certs/server/cert.pem" --tlskey "$certs/server/key.pem" \
      --bridge "$bridge" --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false
    pid=$engine_started_pid
    engine_wait_until "$pid" 60 "$log" answers_on_socket || exit 1
  fi
  engine_wait_until "$(engine_live_pid "$pid_file" dockerd)" 30 "$log" answers_over_tls || exit 1
  engine_copy_image "$image" "$main_host" "unix://$socket"
  print_env
}

stop() {
  local pid
  if pid=$(engine_live_pid "$pid_file" dockerd); then
    engine_stop_pid "$pid" dockerd
  else
    engine_say "not running"
  fi
  rm -f "$pid_file"
  if ip link show "$bridge" >/dev/null 2>&1; then ip link delete "$bridge"; fi
}

case ${1:-} in
  start) start ;;
  env) answers_over_tls >/dev/null 2>&1 || engine_die "not running (scripts/engines/tls-dockerd.sh start)"; print_env ;;
  status)
    if answers_over_tls >/dev/null 2>&1; then echo "dockerd answers on tcp://127.0.0.1:$port (TLS)"; else echo "not running"; exit 1; fi
    ;;
  stop) stop ;;
  *) printf 'usage: %s start|env|status|stop\n' "$0" >&2; exit 2 ;;
esac
