#!/usr/bin/env bash
# Installs and starts the real components the tests run against, on a fresh Debian 12 machine or in CI, and
# does next to nothing when they are already in place. Writes .state/provision.env for the tests to source.
#
#   scripts/provision.sh           provision (idempotent; root for apt, dockerd and debootstrap)
#   scripts/provision.sh --check   say what is present, missing or stale without changing anything
#                                  (exit 0 when everything is in place, 1 otherwise)
#
# Steps: apt packages, Docker Engine (scripts/dockerd.sh), npm dependencies, pinned Python venv with Airflow 3,
# a second pinned venv with Airflow 2, stand-in Astro Runtime images (scripts/runtime-image/build.sh),
# provision.env.
#
# Environment: ASTRO_DEV_CACHE (default ~/.cache/astro-dev: wheelhouse, root filesystem tarball),
# ASTRO_DEV_STATE_DIR (default <repo>/.state), DOCKER_SOCKET (default /var/run/docker.sock),
# DOCKER_BIN (default /usr/bin/docker), ASTRO_DEV_PYTHON (default /usr/bin/python3: Debian 12's CPython 3.11,
# the same interpreter the Runtime image uses).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state_dir=${ASTRO_DEV_STATE_DIR:-$repo_root/.state}
cache_dir=${ASTRO_DEV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/astro-dev}
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
docker_bin=${DOCKER_BIN:-/usr/bin/docker}
base_python=${ASTRO_DEV_PYTHON:-/usr/bin/python3}
requirements=$repo_root/scripts/python/airflow-requirements.txt
venv=$state_dir/airflow-venv
venv_stamp=$venv/.provision-recipe
npm_stamp=$state_dir/npm-ci.stamp
env_file=$state_dir/provision.env
build_image=$repo_root/scripts/runtime-image/build.sh
# Airflow 2 (Runtime 12): parse and pytest must give the container's verdicts on both majors.
airflow2_requirements=$repo_root/scripts/python/airflow2-requirements.txt
airflow2_venv=$state_dir/airflow2-venv

readonly AIRFLOW_VERSION=3.1.8
readonly AIRFLOW2_VERSION=2.10.5
readonly RUNTIME_VERSION=3.1-8
readonly RUNTIME_IMAGE=astrocrpublic.azurecr.io/runtime:$RUNTIME_VERSION
readonly RUNTIME_BASE_IMAGE=astrocrpublic.azurecr.io/runtime:$RUNTIME_VERSION-base
# Installed with their recommended packages: docker.io wants apparmor and cgroupfs-mount to run containers.
readonly APT_PACKAGES=(docker.io docker-registry debootstrap openssl iproute2 ca-certificates python3 python3-venv)
# Headless use needs none of chromium's recommendations (sandbox helper, desktop services), only fonts.
readonly APT_PACKAGES_NO_RECOMMENDS=(chromium fonts-liberation)

export DOCKER_SOCKET=$socket DOCKER_BIN=$docker_bin ASTRO_DEV_STATE_DIR=$state_dir ASTRO_DEV_CACHE=$cache_dir

say() { printf 'provision: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
sha256() { sha256sum | cut -c1-64; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

# Timing per step, reported at the end so a slow provision shows where the time went.
timings=()
step_started=0
step_begin() { step_started=$(now_ms); say "[$1] $2"; }
step_end() {
  timings+=("$1 $(seconds_since "$step_started")")
  say "[$1] done (${timings[-1]#* })"
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "needs root for: $*"
  fi
}

# --- apt ------------------------------------------------------------------------------------------------

missing_apt_packages() {
  local pkg
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || printf '%s\n' "$pkg"
  done
}

apt_install() {
  local -a plain no_recommends
  mapfile -t plain < <(missing_apt_packages "${APT_PACKAGES[@]}")
  mapfile -t no_recommends < <(missing_apt_packages "${APT_PACKAGES_NO_RECOMMENDS[@]}")
  ((${#plain[@]} + ${#no_recommends[@]})) || return 0
  say "installing ${plain[*]} ${no_recommends[*]}"
  # Keep package scripts from starting services (dockerd, docker-registry): on a machine without systemd they
  # fail or start them with settings the tests do not use. scripts/dockerd.sh starts the engine itself.
  local policy=/usr/sbin/policy-rc.d added_policy=
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
    added_policy=1
  fi
  local status=0
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      { ((${#plain[@]} == 0)) ||
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${plain[@]}"; } &&
      { ((${#no_recommends[@]} == 0)) ||
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${no_recommends[@]}"; }
  } >"$state_dir/logs/apt.log" 2>&1 </dev/null || status=$?
  [[ -z $added_policy ]] || as_root rm -f "$policy"
  if ((status != 0)); then
    tail -n 30 "$state_dir/logs/apt.log" >&2
    die "apt-get failed; full log: $state_dir/logs/apt.log"
  fi
}

# --- npm ------------------------------------------------------------------------------------------------

npm_fingerprint() {
  printf 'node %s\n%s\n' "$(node --version)" "$(sha256 <"$repo_root/package-lock.json")" | sha256
}

# A node_modules installed before there was a stamp is accepted when npm's own record of what it installed
# (node_modules/.package-lock.json) agrees with package-lock.json, so an existing tree is not reinstalled.
node_modules_match_lock() {
  [[ -f $repo_root/node_modules/.package-lock.json ]] || return 1
  node --input-type=module - "$repo_root" <<'EOF'
import { readFileSync } from 'node:fs';
const root = process.argv[2];
const read = (p) => JSON.parse(readFileSync(`${root}/${p}`, 'utf8')).packages ?? {};
const wanted = read('package-lock.json');
const installed = read('node_modules/.package-lock.json');
const stale = Object.entries(wanted).filter(
  ([path, meta]) => path !== '' && !meta.optional && installed[path]?.version !== meta.version,
);
const extra = Object.keys(installed).filter((path) => !(path in wanted));
process.exit(stale.length === 0 && extra.length === 0 ? 0 : 1);
EOF
}

npm_state() {
  if [[ ! -d $repo_root/node_modules ]]; then
    echo missing
  elif [[ -f $npm_stamp && $(<"$npm_stamp") == "$(npm_fingerprint)" ]]; then
    echo fresh
  elif [[ ! -f $npm_stamp ]] && node_modules_match_lock; then
    echo adopt
  else
    echo stale
  fi
}

ensure_npm() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node and npm must be installed (Node 20)"
  fi
  local state
  state=$(npm_state)
  case $state in
    fresh) say "node_modules matches package-lock.json" ;;
    adopt)
      say "node_modules already matches package-lock.json; recording it"
      npm_fingerprint >"$npm_stamp"
      ;;
    *)
      say "npm ci (node_modules $state; log: $state_dir/logs/npm-ci.log)"
      # Other tools in this tree install packages under the same lock; never run two npm installs at once.
      if ! (cd "$repo_root" && flock /tmp/npm.lock npm ci --no-audit --no-fund) \
        >"$state_dir/logs/npm-ci.log" 2>&1 </dev/null; then
        tail -n 30 "$state_dir/logs/npm-ci.log" >&2
        die "npm ci failed; full log: $state_dir/logs/npm-ci.log"
      fi
      npm_fingerprint >"$npm_stamp"
      ;;
  esac
}

# --- Python ---------------------------------------------------------------------------------------------

requirements_hash() { sha256 <"$requirements"; }

venv_recipe() {
  printf 'python %s %s\nrequirements %s\n' "$(readlink -f "$base_python")" \
    "$("$base_python" -c 'import sys; print(sys.version.split()[0])')" "$(requirements_hash)"
}

venv_state() {
  if [[ ! -x $venv/bin/python ]]; then
    echo missing
  elif [[ -f $venv_stamp && $(<"$venv_stamp") == "$(venv_recipe)" ]]; then
    echo fresh
  else
    echo stale
  fi
}

wheelhouse_dir() { printf '%s/wheels/%s\n' "$cache_dir" "$(requirements_hash | cut -c1-16)"; }

# Every pinned wheel, downloaded once per requirements file; the venv and the image install from it offline.
ensure_wheelhouse() {
  local pip=$1 dir
  dir=$(wheelhouse_dir)
  [[ -f $dir/.complete ]] && return 0
  say "downloading the pinned wheels into $dir (log: $state_dir/logs/pip-download.log)"
  mkdir -p "$(dirname "$dir")"
  local partial=$dir.partial.$$ started
  started=$(now_ms)
  rm -rf "$partial"
  # Without PIP_FIND_LINKS: a machine-local wheel directory must not decide what gets pinned.
  if ! env -u PIP_FIND_LINKS -u PIP_NO_INDEX "$pip" download --disable-pip-version-check --no-deps \
    --only-binary=:all: -r "$requirements" -d "$partial" >"$state_dir/logs/pip-download.log" 2>&1 </dev/null; then
    tail -n 30 "$state_dir/logs/pip-download.log" >&2
    rm -rf "$partial"
    die "pip download failed; full log: $state_dir/logs/pip-download.log"
  fi
  touch "$partial/.complete"
  rm -rf "$dir"
  mv "$partial" "$dir"
  # Wheelhouses of earlier requirements files are dead weight (about 50 MB each).
  find "$(dirname "$dir")" -mindepth 1 -maxdepth 1 -type d ! -path "$dir" ! -name '*.partial.*' -exec rm -rf {} +
  say "downloaded $(find "$dir" -name '*.whl' | wc -l) wheels ($(seconds_since "$started"))"
}

ensure_venv() {
  local state
  state=$(venv_state)
  if [[ $state == fresh ]]; then
    say "$venv matches $(basename "$requirements")"
    return 0
  fi
  "$base_python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$base_python is not CPython 3.11 (the Runtime image's Python); set ASTRO_DEV_PYTHON"
  say "creating $venv (venv $state)"
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  ensure_wheelhouse "$venv/bin/pip"
  local started
  started=$(now_ms)
  if ! env -u PIP_FIND_LINKS "$venv/bin/pip" install --disable-pip-version-check --no-index --only-binary=:all: \
    --find-links "$(wheelhouse_dir)" -r "$requirements" >"$state_dir/logs/venv-install.log" 2>&1 </dev/null; then
    tail -n 30 "$state_dir/logs/venv-install.log" >&2
    die "installing the pinned requirements failed; full log: $state_dir/logs/venv-install.log"
  fi
  say "installed the pinned requirements ($(seconds_since "$started"))"
  local summary
  summary=$("$venv/bin/python" "$repo_root/scripts/python/check_airflow.py" "$AIRFLOW_VERSION" \
    2>"$state_dir/logs/venv-check.log") || die "${summary:-check failed}; see $state_dir/logs/venv-check.log"
  say "$summary"
  venv_recipe >"$venv_stamp"
}

# --- Python: the Airflow 2 venv ---------------------------------------------------------------------------

airflow2_recipe() {
  printf 'python %s %s\nrequirements %s\n' "$(readlink -f "$base_python")" \
    "$("$base_python" -c 'import sys; print(sys.version.split()[0])')" "$(sha256 <"$airflow2_requirements")"
}

airflow2_venv_state() {
  if [[ ! -x $airflow2_venv/bin/python ]]; then
    echo missing
  elif [[ -f $airflow2_venv/.provision-recipe && $(<"$airflow2_venv/.provision-recipe") == "$(airflow2_recipe)" ]]; then
    echo fresh
  else
    echo stale
  fi
}

airflow2_wheelhouse_dir() { printf '%s/wheels-airflow2/%s\n' "$cache_dir" "$(sha256 <"$airflow2_requirements" | cut -c1-16)"; }

# Like ensure_wheelhouse, but with `pip wheel`: one pin (python-nvd3) exists only as an sdist and is built into a
# wheel here, once, while the index is reachable; the venv then installs offline from the wheelhouse.
ensure_airflow2_wheelhouse() {
  local pip=$1 dir
  dir=$(airflow2_wheelhouse_dir)
  [[ -f $dir/.complete ]] && return 0
  say "downloading and building the Airflow 2 wheels into $dir (log: $state_dir/logs/pip-wheel-airflow2.log)"
  mkdir -p "$(dirname "$dir")"
  local partial=$dir.partial.$$ started
  started=$(now_ms)
  rm -rf "$partial"
  if ! env -u PIP_FIND_LINKS -u PIP_NO_INDEX "$pip" wheel --disable-pip-version-check --no-deps --use-pep517 \
    --prefer-binary -r "$airflow2_requirements" -w "$partial" >"$state_dir/logs/pip-wheel-airflow2.log" 2>&1 </dev/null; then
    tail -n 30 "$state_dir/logs/pip-wheel-airflow2.log" >&2
    rm -rf "$partial"
    die "pip wheel failed; full log: $state_dir/logs/pip-wheel-airflow2.log"
  fi
  touch "$partial/.complete"
  rm -rf "$dir"
  mv "$partial" "$dir"
  find "$(dirname "$dir")" -mindepth 1 -maxdepth 1 -type d ! -path "$dir" ! -name '*.partial.*' -exec rm -rf {} +
  say "wheelhouse has $(find "$dir" -name '*.whl' | wc -l) wheels ($(seconds_since "$started"))"
}

ensure_airflow2_venv() {
  local state
  state=$(airflow2_venv_state)
  if [[ $state == fresh ]]; then
    say "$airflow2_venv matches $(basename "$airflow2_requirements")"
    return 0
  fi
  "$base_python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$base_python is not CPython 3.11; set ASTRO_DEV_PYTHON"
  say "creating $airflow2_venv (venv $state)"
  rm -rf "$airflow2_venv"
  "$base_python" -m venv "$airflow2_venv"
  ensure_airflow2_wheelhouse "$airflow2_venv/bin/pip"
  local started
  started=$(now_ms)
  if ! env -u PIP_FIND_LINKS "$airflow2_venv/bin/pip" install --disable-pip-version-check --no-index \
    --find-links "$(airflow2_wheelhouse_dir)" -r "$airflow2_requirements" \
    >"$state_dir/logs/venv-airflow2-install.log" 2>&1 </dev/null; then
    tail -n 30 "$state_dir/logs/venv-airflow2-install.log" >&2
    die "installing the Airflow 2 requirements failed; full log: $state_dir/logs/venv-airflow2-install.log"
  fi
  say "installed the Airflow 2 requirements ($(seconds_since "$started"))"
  local summary
  summary=$("$airflow2_venv/bin/python" "$repo_root/scripts/python/check_airflow.py" "$AIRFLOW2_VERSION" \
    2>"$state_dir/logs/venv-airflow2-check.log") || die "${summary:-check failed}; see $state_dir/logs/venv-airflow2-check.log"
  say "$summary"
  airflow2_recipe >"$airflow2_venv/.provision-recipe"
}

# --- runtime images ---------------------------------------------------------------------------------------

ensure_runtime_images() {
  local status
  if status=$("$build_image" status); then
    say "runtime images are up to date with their recipe"
    return 0
  fi
  say "runtime images: $(tr '\n' ' ' <<<"$status")"
  ensure_wheelhouse "$venv/bin/pip"
  "$build_image" build --wheelhouse "$(wheelhouse_dir)"
}

# --- provision.env ------------------------------------------------------------------------------------------

write_env_file() {
  local chromium registry
  chromium=$(command -v chromium || true)
  registry=$(command -v docker-registry || true)
  [[ -n $chromium ]] || die "chromium is not on PATH"
  [[ -n $registry ]] || die "docker-registry is not on PATH"
  {
    printf '# Written by scripts/provision.sh; sourced by the tests. Do not edit.\n'
    printf '%s=%q\n' \
      DOCKER_SOCKET "$socket" \
      DOCKER_HOST "unix://$socket" \
      DOCKER_BIN "$docker_bin" \
      AIRFLOW_VENV "$venv" \
      AIRFLOW_PYTHON "$venv/bin/python" \
      AIRFLOW_VERSION "$AIRFLOW_VERSION" \
      AIRFLOW2_VENV "$airflow2_venv" \
      AIRFLOW2_PYTHON "$airflow2_venv/bin/python" \
      AIRFLOW2_VERSION "$AIRFLOW2_VERSION" \
      RUNTIME_IMAGE "$RUNTIME_IMAGE" \
      RUNTIME_BASE_IMAGE "$RUNTIME_BASE_IMAGE" \
      RUNTIME_VERSION "$RUNTIME_VERSION" \
      RUNTIME_RECIPE "$("$build_image" recipe-hash)" \
      REGISTRY_BIN "$registry" \
      CHROMIUM_BIN "$chromium" \
      ASTRO_DEV_CACHE "$cache_dir" \
      ASTRO_DEV_STATE_DIR "$state_dir"
  } >"$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}

# --- check mode ---------------------------------------------------------------------------------------------

check() {
  local ok=0 missing
  report() { printf '%-8s %s\n' "$1" "$2"; [[ $1 == ok || $1 == info ]] || ok=1; }

  missing=$(missing_apt_packages "${APT_PACKAGES[@]}" "${APT_PACKAGES_NO_RECOMMENDS[@]}" | tr '\n' ' ')
  if [[ -z $missing ]]; then report ok "apt packages"; else report missing "apt packages: $missing"; fi

  local engine
  if engine=$(DOCKER_BIN=$docker_bin "$repo_root/scripts/dockerd.sh" status 2>/dev/null); then
    report ok "$engine"
  else
    report missing "$engine"
  fi

  if command -v node >/dev/null; then
    local npm
    npm=$(npm_state)
    case $npm in
      fresh) report ok "node_modules (stamped)" ;;
      adopt) report ok "node_modules (matches package-lock.json; stamp written on the next provision)" ;;
      *) report "$npm" "node_modules" ;;
    esac
  else
    report missing "node"
  fi

  if [[ -x $base_python ]]; then
    local venv_now
    venv_now=$(venv_state)
    if [[ $venv_now == fresh ]]; then report ok "$venv"; else report "$venv_now" "$venv"; fi
    venv_now=$(airflow2_venv_state)
    if [[ $venv_now == fresh ]]; then report ok "$airflow2_venv"; else report "$venv_now" "$airflow2_venv"; fi
  else
    report missing "$base_python"
  fi

  if [[ -f $(wheelhouse_dir)/.complete ]]; then
    report ok "wheelhouse $(wheelhouse_dir)"
  else
    report info "wheelhouse $(wheelhouse_dir) absent (downloaded only when the venv or images are rebuilt)"
  fi

  if [[ -x $docker_bin ]] && "$repo_root/scripts/dockerd.sh" status >/dev/null 2>&1; then
    local image state
    while read -r image state; do
      if [[ $state == fresh ]]; then report ok "$image"; else report "$state" "$image"; fi
    done < <("$build_image" status || true)
  else
    report unknown "runtime images (no engine answers)"
  fi

  if [[ -f $env_file ]]; then report ok "$env_file"; else report missing "$env_file"; fi
  return $ok
}

# --- main ---------------------------------------------------------------------------------------------------

main() {
  case ${1:-} in
    --check) check; return ;;
    '') ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; return 0 ;;
    *) say "unknown argument $1 (try --help)"; return 2 ;;
  esac

  mkdir -p "$state_dir/logs"
  # Test runners in parallel may all call this at once; the first one provisions, the others wait.
  exec 9>"$state_dir/provision.lock"
  if ! flock -n 9; then
    say "another provision run holds $state_dir/provision.lock; waiting"
    flock 9
  fi

  local started
  started=$(now_ms)

  step_begin apt "apt packages"
  apt_install
  step_end apt

  step_begin dockerd "Docker Engine"
  "$repo_root/scripts/dockerd.sh" ensure
  step_end dockerd

  step_begin npm "npm dependencies"
  ensure_npm
  step_end npm

  step_begin venv "Python venv with apache-airflow==$AIRFLOW_VERSION"
  ensure_venv
  step_end venv

  step_begin venv2 "Python venv with apache-airflow==$AIRFLOW2_VERSION"
  ensure_airflow2_venv
  step_end venv2

  step_begin image "stand-in Runtime images $RUNTIME_IMAGE and -base"
  ensure_runtime_images
  step_end image

  step_begin env "writing $env_file"
  write_env_file
  step_end env

  say "done in $(seconds_since "$started") ($(IFS=,; printf '%s' "${timings[*]}" | sed 's/,/, /g'))"
}

# Sourcing the file (to call one step while debugging) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
