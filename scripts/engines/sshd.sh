#!/usr/bin/env bash
# Debian's OpenSSH server on 127.0.0.1 for the tests, reaching a Docker Engine the way `DOCKER_HOST=ssh://…` does:
# the client runs `docker system dial-stdio` on the server and speaks the engine API over that session. Its own
# config, host key and throwaway client key; root may log in with that key only, and only to run that command
# (a forced command that also records every session in a log the tests read).
#
#   scripts/engines/sshd.sh start    make keys (once), start sshd; prints the env a test needs (KEY=VALUE lines)
#   scripts/engines/sshd.sh env      print that env when sshd answers (exit 1 otherwise)
#   scripts/engines/sshd.sh status   say whether it answers
#   scripts/engines/sshd.sh stop     stop it (keys are kept)
#
# Printed: DOCKER_HOST (ssh://root@127.0.0.1:PORT), ENGINE_SSH_HOME (a HOME whose ~/.ssh holds the client key and a
# known_hosts line for this server), ENGINE_SSH_UNAUTHORIZED_HOME (the same with a key the server does not accept),
# ENGINE_SSH_SESSIONS_LOG (one line per session: time and command), ENGINE_SSH_ENGINE_HOST (the engine the sessions
# reach).
#
# Environment: ENGINE_SSH_PORT (default 22220), ENGINE_SSH_DOCKER_HOST (the engine `docker system dial-stdio`
# reaches on the server side; default unix:///var/run/docker.sock, the main engine).
set -euo pipefail
engine_name=sshd
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

port=${ENGINE_SSH_PORT:-22220}
engine_host=${ENGINE_SSH_DOCKER_HOST:-unix:///var/run/docker.sock}
dir=$engines_state_root/sshd
pid_file=$dir/sshd.pid
log=$dir/sshd.log
sessions=$dir/sessions.log

print_env() {
  engine_env_line DOCKER_HOST "ssh://root@127.0.0.1:$port"
  engine_env_line ENGINE_SSH_HOME "$dir/home"
  engine_env_line ENGINE_SSH_UNAUTHORIZED_HOME "$dir/home-unauthorized"
  engine_env_line ENGINE_SSH_SESSIONS_LOG "$sessions"
  engine_env_line ENGINE_SSH_ENGINE_HOST "$engine_host"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

make_home() {
  local home=$1
  mkdir -p "$home/.ssh"
  chmod 0700 "$home" "$home/.ssh"
  [[ -f $home/.ssh/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "astro-test@$(basename "$home")" -f "$home/.ssh/id_ed25519"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$dir/ssh_host_ed25519_key.pub")" >"$home/.ssh/known_hosts"
}

configure() {
  mkdir -p "$dir"
  [[ -f $dir/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C astro-test-host -f "$dir/ssh_host_ed25519_key"
  make_home "$dir/home"
  make_home "$dir/home-unauthorized"
  cat >"$dir/dial.sh" <<DIAL
#!/bin/sh
# Forced command: record the session, then allow only what a Docker client asks for over ssh.
printf '%s %s\n' "\$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "\$SSH_ORIGINAL_COMMAND" >>'$sessions'
case "\$SSH_ORIGINAL_COMMAND" in
  'docker system dial-stdio') DOCKER_HOST='$engine_host' exec docker system dial-stdio ;;
  *) echo "this test server runs only 'docker system dial-stdio'" >&2; exit 1 ;;
esac
DIAL
  chmod 0755 "$dir/dial.sh"
  printf 'command="%s",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
    "$dir/dial.sh" "$(cat "$dir/home/.ssh/id_ed25519.pub")" >"$dir/authorized_keys"
  chmod 0600 "$dir/authorized_keys"
  touch "$sessions"
  cat >"$dir/sshd_config" <<CONFIG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $pid_file
AuthorizedKeysFile $dir/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
CONFIG
}

start() {
  [[ $EUID -eq 0 ]] || engine_die "starting sshd for root logins needs root"
  engine_apt_install openssh-server
  mkdir -p "$dir"
  exec 8>"$dir/lock"
  flock 8
  configure
  local pid
  if pid=$(engine_live_pid "$pid_file" sshd) && listening; then
    # Reload the config and the authorized key in case they changed.
    kill -HUP "$pid"
    engine_say "sshd $pid listens on 127.0.0.1:$port"
  else
    [[ -z ${pid:-} ]] || engine_stop_pid "$pid" sshd
    mkdir -p /run/sshd # sshd's privilege separation directory
    /usr/sbin/sshd -t -f "$dir/sshd_config" || engine_die "sshd rejects $dir/sshd_config"
    engine_say "starting sshd on 127.0.0.1:$port (log: $log)"
    engine_start_detached "$log" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
    engine_wait_until "$engine_started_pid" 20 "$log" listening || exit 1
  fi
  print_env
}

stop() {
  local pid
  if pid=$(engine_live_pid "$pid_file" sshd); then engine_stop_pid "$pid" sshd; else engine_say "not running"; fi
  rm -f "$pid_file"
}

case ${1:-} in
  start) start ;;
  env) listening || engine_die "not running (scripts/engines/sshd.sh start)"; print_env ;;
  status) if listening; then echo "sshd listens on 127.0.0.1:$port"; else echo "not running"; exit 1; fi ;;
  stop) stop ;;
  *) printf 'usage: %s start|env|status|stop\n' "$0" >&2; exit 2 ;;
esac
