#!/usr/bin/env bash
# Runs a command with one core kept busy, the way a shared CI runner or a laptop compiling something is busy, so
# races that only show under load show here too: `bash scripts/with-load.sh npx vitest run --project unit`.
# The load is one busy loop, bounded in time (ASTRO_TEST_LOAD_SECONDS, default 3600) and ended with the command,
# however the command ends.
set -euo pipefail

seconds="${ASTRO_TEST_LOAD_SECONDS:-3600}"
timeout "$seconds" bash -c 'while :; do :; done' &
load_pid=$!
stop_load() { kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; }
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM

echo "with-load: one core busy (pid $load_pid, at most ${seconds}s) while: $*" >&2
status=0
"$@" || status=$?
exit "$status"
