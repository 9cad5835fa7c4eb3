#!/usr/bin/env bash
# The one test command (README, .ci/run and the GitHub workflow all call this): installs and starts what the
# tests need, builds, type-checks, runs every test, and ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/provision.sh
npm run --silent build
npx --no-install tsc -p tsconfig.test.json --noEmit
# The walls between layers, no import cycles, environment read in one place, one format (eslint.config.js).
npx --no-install eslint .
npx --no-install prettier --check . >/dev/null || { npx --no-install prettier --list-different .; echo 'Run npm run format.' >&2; exit 1; }

mkdir -p .state
status=0
# ASTRO_TEST_LOAD=1 keeps one core busy for the run (scripts/with-load.sh): tests must pass on a loaded machine too.
load=()
if [ "${ASTRO_TEST_LOAD:-}" = 1 ]; then load=(bash scripts/with-load.sh); fi
"${load[@]}" npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=.state/vitest-results.json "$@" || status=$?

# Deploy tests rebuild project images; drop the untagged ones they leave (only images astro labelled).
/usr/bin/docker image prune -f --filter label=io.astronomer.deploy.revision.description >/dev/null 2>&1 || true

node -e '
  const r = JSON.parse(require("fs").readFileSync(".state/vitest-results.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit "$status"
