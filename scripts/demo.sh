#!/usr/bin/env bash
# One command, a real backup: starts the local services (MySQL 9.7 with CLONE, metadata DB, S3, Redis),
# creates the metadata schema, registers the local MySQL, starts the producer (schedules) and this node's
# worker, runs a full backup through them (clone → tar → upload → cleanup), and prints the metadata row and
# the object in storage. Safe to run again: every run makes one more backup.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  # zstd-napi builds its native addon when npm cannot download the prebuilt one: it then needs a compiler.
  if [[ $(id -u) -eq 0 ]] && ! command -v g++ >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++ make python3
  fi
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

echo "== npm run build (bin/mcb.js runs the compiled JavaScript in dist/)"
npm run build --silent

echo "== starting local services (first run builds a cached MySQL 9.7 + S3 root: a few minutes)"
bash scripts/services.sh up
# shellcheck disable=SC1091
source .services/env.sh

demo=.services/demo
mkdir -p "$demo/clone_bak"
ini="$demo/clone.ini"
write_ini() { # $1: tb_instance_id line (may be empty)
  cat > "$ini" <<INI
; The seed's clone.ini layout, plus [redis] and [oss].
[mysql-link]
host = $MCB_TEST_SOURCE_HOST
port = $MCB_TEST_SOURCE_PORT
user = $MCB_TEST_SOURCE_USER
password = $MCB_TEST_SOURCE_PASSWORD
charset = utf8mb4

[metadata-link]
host = $MCB_TEST_METADATA_HOST
port = $MCB_TEST_METADATA_PORT
user = $MCB_TEST_METADATA_USER
password = $MCB_TEST_METADATA_PASSWORD
database = mcb_demo
charset = utf8mb4

[backup-conf]
backup_path = $PWD/$demo/clone_bak
bin_index_path = $MCB_TEST_SOURCE_BINLOG_INDEX
$1
bucket_name = local
full_storage_days = 7
binlog_storage_days = 7
is_cluster = off
debug = off

[redis]
url = $MCB_TEST_REDIS_URL
prefix = mcbdemo

[oss]
endpoint = $MCB_TEST_S3_ENDPOINT:$MCB_TEST_S3_PORT
access_key = $MCB_TEST_S3_ACCESS_KEY
secret_key = $MCB_TEST_S3_SECRET_KEY
secure = off
INI
  chmod 600 "$ini" # it holds passwords
}
mcb() { node bin/mcb.js -f "$ini" "$@"; }

write_ini ""
echo "== mcb migrate"
mcb migrate
id=$(mcb instance list --json | node -e '
  const rows = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const r = rows.find((r) => r.instanceId === process.argv[1]);
  console.log(r ? r.id : "");' "$MCB_TEST_SOURCE_HOST:$MCB_TEST_SOURCE_PORT")
if [[ -z "$id" ]]; then
  echo "== mcb instance add"
  id=$(mcb instance add --host "$MCB_TEST_SOURCE_HOST" --port "$MCB_TEST_SOURCE_PORT" --name demo-local --system demo)
fi
write_ini "tb_instance_id = $id"
echo "local MySQL is tb_instance id $id; config: $ini"

# A little data, so the backup holds something of ours.
node -e '
  const mysql = require("mysql2/promise");
  (async () => {
    const c = await mysql.createConnection({ host: process.env.MCB_TEST_SOURCE_HOST, port: +process.env.MCB_TEST_SOURCE_PORT,
      user: process.env.MCB_TEST_SOURCE_ROOT_USER, password: process.env.MCB_TEST_SOURCE_ROOT_PASSWORD });
    await c.query("CREATE DATABASE IF NOT EXISTS demo");
    await c.query("CREATE TABLE IF NOT EXISTS demo.events (id int AUTO_INCREMENT PRIMARY KEY, at datetime DEFAULT CURRENT_TIMESTAMP)");
    await c.query("INSERT INTO demo.events () VALUES ()");
    await c.end();
  })().catch((e) => { console.error(e.message); process.exit(1); });'

echo "== mcb producer --once (keeps the schedules in Redis in step with tb_instance)"
mcb producer --once
echo "== mcb worker (in the background; log: $demo/worker.log)"
MCB_LOG_LEVEL=info node bin/mcb.js -f "$ini" worker > "$demo/worker.log" 2>&1 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT

echo "== mcb enqueue full --instance $id --wait"
mcb enqueue full --instance "$id" --wait --timeout 900

echo "== mcb backups list --instance $id --limit 3"
mcb backups list --instance "$id" --limit 3
echo "== mcb storage ls --prefix bak_${id}_"
mcb storage ls --prefix "bak_${id}_"
