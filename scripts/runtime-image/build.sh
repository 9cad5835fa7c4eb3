#!/usr/bin/env bash
# Builds the stand-in Astro Runtime images the tests deploy (no image can be pulled on the test machines):
#   astrocrpublic.azurecr.io/runtime:3.1-8-base   Debian bookworm + the pinned Airflow, user astro, labels
#   astrocrpublic.azurecr.io/runtime:3.1-8        the same plus a Runtime's ONBUILD steps
#
#   build.sh status                      print fresh|stale|missing for each image (exit 1 unless both fresh)
#   build.sh recipe-hash                 print the hash the ONBUILD image is labelled with
#   build.sh build --wheelhouse DIR      (re)build what is not fresh; DIR holds the wheels of the requirements
#
# An image is fresh when its dev.astro-deploy-cli.runtime-recipe label equals the hash of everything that
# shapes it: the debootstrap recipe, the Dockerfiles and helper scripts here, the pinned requirements and this
# script. The debootstrapped root filesystem is cached as a tarball under ~/.cache/astro-dev/rootfs, keyed by
# its own recipe, so changing a Dockerfile does not re-run debootstrap.
#
# Environment: DOCKER_BIN (default /usr/bin/docker), DOCKER_SOCKET (default /var/run/docker.sock),
# ASTRO_DEV_CACHE (default ~/.cache/astro-dev), ASTRO_DEV_STATE_DIR (default <repo>/.state),
# DEBIAN_MIRROR (default http://deb.debian.org/debian; not part of the recipe).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
state_dir=${ASTRO_DEV_STATE_DIR:-$repo_root/.state}
cache_dir=${ASTRO_DEV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/astro-dev}
docker_bin=${DOCKER_BIN:-/usr/bin/docker}
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
requirements=$repo_root/scripts/python/airflow-requirements.txt

readonly RUNTIME_VERSION=3.1-8
readonly AIRFLOW_VERSION=3.1.8
readonly IMAGE_REPO=astrocrpublic.azurecr.io/runtime
readonly RUNTIME_IMAGE=$IMAGE_REPO:$RUNTIME_VERSION
readonly BASE_IMAGE=$IMAGE_REPO:$RUNTIME_VERSION-base
readonly ROOTFS_REPO=astro-dev/debian-rootfs
readonly RECIPE_LABEL=dev.astro-deploy-cli.runtime-recipe
readonly STAGE_LABEL=dev.astro-deploy-cli.build-stage
# python3-venv brings ensurepip, which the image uses to make its Airflow venv.
# shellcheck disable=SC2054 # the commas belong to --include's value
readonly DEBOOTSTRAP_ARGS=(--variant=minbase --arch=amd64 --include=python3,python3-venv,ca-certificates bookworm)
# Bump when the way the tree is trimmed or packed changes: it is part of the root filesystem's recipe.
readonly ROOTFS_PACKING=prune-apt-v1

say() { printf 'runtime-image: %s\n' "$*" >&2; }

temp_dirs=()
# --one-file-system: a debootstrap cut short can leave proc/sys mounted inside its target.
remove_temp_dirs() { ((${#temp_dirs[@]} == 0)) || rm -rf --one-file-system "${temp_dirs[@]}"; }
trap remove_temp_dirs EXIT
docker() { "$docker_bin" -H "unix://$socket" "$@"; }
sha256() { sha256sum | cut -c1-64; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

rootfs_recipe_hash() {
  printf 'debootstrap %s\npacking %s\n' "${DEBOOTSTRAP_ARGS[*]}" "$ROOTFS_PACKING" | sha256
}

files_hash() {
  local f
  for f in "$@"; do
    printf '%s %s\n' "${f#"$repo_root"/}" "$(sha256 <"$f")"
  done
}

base_recipe_hash() {
  {
    printf 'runtime %s airflow %s rootfs %s\n' "$RUNTIME_VERSION" "$AIRFLOW_VERSION" "$(rootfs_recipe_hash)"
    files_hash "$here/Dockerfile.base" "$here/install-system-packages" "$here/install-python-dependencies" \
      "$here/build.sh" "$requirements"
  } | sha256
}

# Editing only the ONBUILD Dockerfile rebuilds only the ONBUILD image, which takes a second.
runtime_recipe_hash() {
  { printf 'base %s\n' "$1"; files_hash "$here/Dockerfile"; } | sha256
}

image_label() {
  docker image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null || true
}

image_layers() {
  docker image inspect --format '{{json .RootFS.Layers}}' "$1" 2>/dev/null || true
}

base_state() {
  local label
  label=$(image_label "$BASE_IMAGE")
  if [[ -z $label ]]; then echo missing; elif [[ $label == "$1" ]]; then echo fresh; else echo stale; fi
}

# The ONBUILD image adds no layers, so "built on the current base" means "has exactly the base's layers".
runtime_state() {
  local label
  label=$(image_label "$RUNTIME_IMAGE")
  if [[ -z $label ]]; then
    echo missing
  elif [[ $label == "$(runtime_recipe_hash "$1")" && $(image_layers "$RUNTIME_IMAGE") == "$(image_layers "$BASE_IMAGE")" ]]; then
    echo fresh
  else
    echo stale
  fi
}

status() {
  local hash base runtime
  hash=$(base_recipe_hash)
  base=$(base_state "$hash")
  runtime=$(runtime_state "$hash")
  printf '%s %s\n%s %s\n' "$BASE_IMAGE" "$base" "$RUNTIME_IMAGE" "$runtime"
  [[ $base == fresh && $runtime == fresh ]]
}

ensure_rootfs_tarball() {
  local tarball=$1
  [[ -s $tarball ]] && return 0
  command -v debootstrap >/dev/null || { say "debootstrap is not installed"; return 1; }
  [[ $EUID -eq 0 ]] || { say "debootstrap needs root"; return 1; }
  mkdir -p "$(dirname "$tarball")"
  local work started
  work=$(mktemp -d "$(dirname "$tarball")/build.XXXXXX")
  temp_dirs+=("$work")
  started=$(now_ms)
  say "debootstrap ${DEBOOTSTRAP_ARGS[*]} (log: $state_dir/logs/debootstrap.log)"
  if ! debootstrap "${DEBOOTSTRAP_ARGS[@]}" "$work/rootfs" "$mirror" >"$state_dir/logs/debootstrap.log" 2>&1; then
    tail -n 20 "$state_dir/logs/debootstrap.log" >&2
    say "debootstrap failed; full log: $state_dir/logs/debootstrap.log"
    return 1
  fi
  # Package caches and indexes are a third of the tree and stale by the time an image uses them;
  # install-system-packages runs apt-get update itself.
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" --numeric-owner -c . | gzip -1 >"$work/rootfs.tar.gz"
  mv "$work/rootfs.tar.gz" "$tarball"
  find "$(dirname "$tarball")" -maxdepth 1 -name 'bookworm-minbase-*.tar.gz' ! -path "$tarball" -delete
  say "root filesystem cached as $tarball ($(seconds_since "$started"))"
}

ensure_rootfs_image() {
  local rootfs_hash=$1 image=$2
  if docker image inspect "$image" >/dev/null 2>&1; then
    return 0
  fi
  local tarball=$cache_dir/rootfs/bookworm-minbase-$rootfs_hash.tar.gz started
  ensure_rootfs_tarball "$tarball"
  started=$(now_ms)
  docker import --message "debootstrap ${DEBOOTSTRAP_ARGS[*]}" - "$image" <"$tarball" >/dev/null
  say "imported the root filesystem as $image ($(seconds_since "$started"))"
}

# Stage a build context in a temporary directory: docker sends the whole context directory to the engine.
stage_base_context() {
  local context=$1 wheelhouse=$2
  cp "$here/Dockerfile.base" "$here/install-system-packages" "$here/install-python-dependencies" "$context/"
  cp "$requirements" "$context/airflow-requirements.txt"
  mkdir "$context/wheels"
  cp "$wheelhouse"/*.whl "$context/wheels/"
}

# The classic builder, as the CLI's own builds through the engine API use. --force-rm: a failed step must not
# leave its container behind, pinning the stage image that remove_leftovers would otherwise delete.
run_build() {
  local what=$1 log=$2 started
  shift 2
  started=$(now_ms)
  say "building $what (log: $log)"
  if ! DOCKER_BUILDKIT=0 docker build --force-rm --platform linux/amd64 "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    remove_stage_images
    say "docker build of $what failed; full log: $log"
    return 1
  fi
  say "built $what ($(seconds_since "$started"))"
}

remove_if_untagged() {
  local id=$1
  [[ -n $id ]] || return 0
  if [[ $(docker image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null) == 0 ]]; then
    docker image rm "$id" >/dev/null 2>&1 || true
  fi
}

# What a rebuild leaves behind: superseded root filesystems and the wheel-install stage (its wheels make it
# larger than the image itself, and a rebuild of the base reinstalls from the wheelhouse in seconds anyway).
remove_leftovers() {
  local keep_rootfs=$1 tag
  for tag in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$ROOTFS_REPO"); do
    [[ $tag == "$keep_rootfs" ]] || docker image rm "$tag" >/dev/null 2>&1 || true
  done
  remove_stage_images
}

remove_stage_images() {
  local id
  for id in $(docker image ls --quiet --filter dangling=true --filter "label=$STAGE_LABEL"); do
    docker image rm "$id" >/dev/null 2>&1 || true
  done
}

smoke_test() {
  local check=$repo_root/scripts/python/check_airflow.py log=$state_dir/logs/runtime-check.log summary started
  started=$(now_ms)
  if ! summary=$(docker run --rm --network none -v "$check:/tmp/check_airflow.py:ro" "$RUNTIME_IMAGE" \
    python /tmp/check_airflow.py "$AIRFLOW_VERSION" 2>"$log"); then
    say "${summary:-the check did not run}; see $log"
    return 1
  fi
  say "$RUNTIME_IMAGE with --network none: $summary ($(seconds_since "$started"))"
}

build() {
  local wheelhouse=
  while (($#)); do
    case $1 in
      --wheelhouse) wheelhouse=${2:?}; shift 2 ;;
      *) say "unknown argument $1"; return 2 ;;
    esac
  done
  [[ -d $wheelhouse ]] || { say "build needs --wheelhouse DIR"; return 2; }

  local hash rootfs_hash rootfs_image
  hash=$(base_recipe_hash)
  rootfs_hash=$(rootfs_recipe_hash)
  rootfs_image=$ROOTFS_REPO:bookworm-${rootfs_hash:0:16}
  mkdir -p "$state_dir/logs"

  local old_base old_runtime context
  old_base=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  old_runtime=$(docker image inspect --format '{{.Id}}' "$RUNTIME_IMAGE" 2>/dev/null || true)
  context=$(mktemp -d)
  temp_dirs+=("$context")

  if [[ $(base_state "$hash") != fresh ]]; then
    ensure_rootfs_image "$rootfs_hash" "$rootfs_image"
    mkdir "$context/base"
    stage_base_context "$context/base" "$wheelhouse"
    run_build "$BASE_IMAGE" "$state_dir/logs/runtime-base-build.log" -f "$context/base/Dockerfile.base" \
      --build-arg "ROOTFS_IMAGE=$rootfs_image" --build-arg "RUNTIME_VERSION=$RUNTIME_VERSION" \
      --build-arg "AIRFLOW_VERSION=$AIRFLOW_VERSION" --build-arg "RECIPE_HASH=$hash" \
      -t "$BASE_IMAGE" "$context/base"
  fi
  if [[ $(runtime_state "$hash") != fresh ]]; then
    mkdir "$context/runtime"
    cp "$here/Dockerfile" "$context/runtime/"
    run_build "$RUNTIME_IMAGE" "$state_dir/logs/runtime-build.log" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      --label "$RECIPE_LABEL=$(runtime_recipe_hash "$hash")" -t "$RUNTIME_IMAGE" "$context/runtime"
  fi
  smoke_test
  remove_if_untagged "$old_runtime"
  remove_if_untagged "$old_base"
  remove_leftovers "$rootfs_image"
}

case ${1:-} in
  status) status ;;
  recipe-hash) runtime_recipe_hash "$(base_recipe_hash)" ;;
  build) shift; build "$@" ;;
  *)
    printf 'usage: %s status|recipe-hash|build --wheelhouse DIR\n' "$0" >&2
    exit 2
    ;;
esac
