#!/usr/bin/env bash
# The demo: install what is needed, start the local Astronomer platform (http://localhost:8888), and deploy the
# example project in fixtures/example-project to it with astro, the way CI would (an Astro API token).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/provision.sh
npm run --silent build
# shellcheck disable=SC1091
source .state/provision.env

state=.state/platform
if ! npx --no-install tsx test/platform/cli.ts status --state "$state" >/dev/null 2>&1; then
  npx --no-install tsx test/platform/cli.ts start --state "$state"
fi
platform_url=$(node -e 'console.log(require(process.argv[1]).platform.url)' "$PWD/$state/endpoints.json")
token=$(node -e '
  const t = require(process.argv[1]);
  console.log(t.apiTokens.find((x) => x.id === "cltokwsdataplatform000000").token);
' "$PWD/$state/tokens.json")

home=.state/demo-home
mkdir -p "$home/.astro"
printf 'context: localhost\nlocal:\n  core: %s\n' "$platform_url" > "$home/.astro/config.yaml"
chmod 600 "$home/.astro/config.yaml"

echo
echo "Deploying fixtures/example-project to Deployment 'dag-deploy-on' on $platform_url ..."
cd fixtures/example-project
ASTRO_HOME="$PWD/../../$home" ASTRO_API_TOKEN="$token" ASTRO_PARSE_PYTHON="$AIRFLOW_PYTHON" \
  node ../../bin/astro.js deploy cldepdagon000000000000000 --wait --wait-time 2m --description "demo deploy"
cd ../..

echo
echo "Done. What the platform recorded:  curl -s $platform_url/_platform/state | head -c 2000"
echo "Stop the platform with:            npm run platform:stop"
