#!/usr/bin/env bash
# The one test command (`npm test`; README and .ci/run call it): installs dependencies when needed, starts the
# local services (scripts/services.sh up), then runs every unit, integration and e2e test with node's runner.
# Extra arguments go to `node --test`, e.g.: bash scripts/test.sh --test-name-pattern='clone'
set -euo pipefail
export MCB_LOG_LEVEL="${MCB_LOG_LEVEL:-warn}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive
# Debian packages, as root and only those missing (installed ones are left alone): debootstrap builds the
# cached sid root (MySQL 9.7 + moto), chromium runs the status-page browser test, redis-server (with redis-cli)
# serves when no Redis answers on 127.0.0.1:6379 and runs the fault tests' private Redis, sentinels and cluster;
# the metadata-outage test stops a private metadata center (MariaDB when installed, else MySQL 9.7); zstd reads
# and writes the zstd archives the codec tests compare with; g++, make and python3 build zstd-napi's native addon
# when npm cannot download its prebuilt binary.
missing=()
for pkg in debootstrap curl ca-certificates redis-server chromium zstd g++ make python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} > 0 )) && [[ $(id -u) -eq 0 ]]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if (( ${#missing[@]} > 0 )) && [[ $(id -u) -ne 0 ]]; then
  echo "[test] missing Debian packages (run as root to install them): ${missing[*]}" >&2
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[test] npm ci" >&2
  npm ci --no-audit --no-fund
fi

# Types first (src, tests, bench; unused locals and parameters included): a broken import or dead code fails in
# seconds, not after the integration tests.
echo "[test] npm run typecheck" >&2
npm run typecheck

bash scripts/services.sh up

shopt -s nullglob
files=(test/unit/*.test.ts test/integration/*.test.ts test/faults/*.test.ts test/e2e/*.test.ts)
shopt -u nullglob
if (( ${#files[@]} == 0 )); then
  echo "[test] no test files under test/unit, test/integration, test/faults or test/e2e" >&2
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
