#!/usr/bin/env bash
# The one test command (`npm test`; README and .ci/run call it): installs dependencies when needed, starts the
# local services (scripts/services.sh up), then runs every unit, integration and e2e test with node's runner.
# Extra arguments go to `node --test`, e.g.: bash scripts/test.sh --test-name-pattern='clone'
set -euo pipefail
export MCB_LOG_LEVEL="${MCB_LOG_LEVEL:-warn}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[test] npm ci" >&2
  npm ci --no-audit --no-fund
fi

bash scripts/services.sh up

shopt -s nullglob
files=(test/unit/*.test.ts test/integration/*.test.ts test/e2e/*.test.ts)
shopt -u nullglob
if (( ${#files[@]} == 0 )); then
  echo "[test] no test files under test/unit, test/integration or test/e2e" >&2
  exit 1
fi

# --test-force-exit (Node >= 20.14): once every test of a file has finished, a leaked handle (an unclosed Redis
# or MySQL connection) must not keep that file's process, and so the whole run, alive forever.
force_exit=()
if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 14) ? 0 : 1)'; then
  force_exit=(--test-force-exit)
fi

set +e
node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${force_exit[@]}" "$@" "${files[@]}"
code=$?
set -e
exit "$code"
