#!/usr/bin/env bash
# Local services for mcb's tests and demo: Redis, a MySQL 9.7 source with CLONE + binlog + GTID, a read-only
# replica of it, a metadata center (the machine's MariaDB or a third MySQL) and moto as S3.
#
#   bash scripts/services.sh up       start what is not already answering, write .services/env.json + env.sh
#   bash scripts/services.sh down     stop what this script started (pid files); data directories are kept
#   bash scripts/services.sh status   what answers
#   bash scripts/services.sh env      print .services/env.sh
#
# See docs/local-services.md (ports, environment variables, how to reset) and docs/architecture.md (env.json).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${MCB_CACHE_DIR:-/var/cache/mcb}"
ROOT="$CACHE_DIR/sid-root"
STATE="${MCB_SERVICES_DIR:-$REPO/.services}"
ROOT_PACKAGES="mysql-server-core,mysql-client-core,python3-moto,python3-flask,python3-flask-cors,python3-cffi-backend"

# Ports. The *_PROBE_PORT ones are services of the machine that are reused when they answer.
REDIS_PROBE_PORT="${MCB_REDIS_PROBE_PORT:-6379}"
REDIS_PORT="${MCB_REDIS_PORT:-16379}"
SOURCE_PORT="${MCB_SOURCE_PORT:-13306}"
REPLICA_PORT="${MCB_REPLICA_PORT:-13307}"
METADATA_PROBE_PORT="${MCB_METADATA_PROBE_PORT:-3306}"
METADATA_PORT="${MCB_METADATA_PORT:-13308}"
S3_PORT="${MCB_S3_PORT:-19000}"
TIMEOUT="${MCB_SERVICES_TIMEOUT:-180}"   # seconds to wait for each service to answer

BACKUP_USER=backup_clone
BACKUP_PASSWORD=admin123
REPL_USER=mcb_repl
REPL_PASSWORD=mcb_repl_pw
S3_BUCKET=local
S3_ACCESS_KEY=mcb
S3_SECRET_KEY=mcbsecret

LOADER="$ROOT/lib64/ld-linux-x86-64.so.2"
LIBS="$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu"
MYSQLD=("$LOADER" --library-path "$LIBS" "$ROOT/usr/sbin/mysqld")
MYSQLD_BASE=(--no-defaults --user=root "--basedir=$ROOT/usr" "--lc-messages-dir=$ROOT/usr/share/mysql"
  "--character-sets-dir=$ROOT/usr/share/mysql/charsets" "--plugin-dir=$ROOT/usr/lib/mysql/plugin")
MYSQL=("$LOADER" --library-path "$LIBS" "$ROOT/usr/bin/mysql")
MYSQLBINLOG=("$LOADER" --library-path "$LIBS" "$ROOT/usr/bin/mysqlbinlog")

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
tail_log() { [[ -f "$1" ]] && { printf -- '--- last lines of %s ---\n' "$1" >&2; tail -n 25 "$1" >&2; } || true; }

# ---------------------------------------------------------------------------------------------- helpers

# A process that exists and is not a zombie.
pid_running() {
  [[ -n "${1:-}" && -r "/proc/$1/stat" ]] || return 1
  local state
  state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ "$state" != Z && "$state" != X ]]
}

# pid_alive PIDFILE PATTERN: the pid file names a running process whose command line contains PATTERN.
pid_alive() {
  [[ -s "$1" ]] || return 1
  local pid
  pid="$(tr -dc 0-9 <"$1")"
  pid_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

tcp_open() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
  fi
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'PING\r\n' >&3; IFS= read -r l <&3; [[ \$l == +PONG* ]]" 2>/dev/null
}

# sql PORT [mysql args...]: the sid root's client as root without password over TCP.
sql() {
  local port="$1"; shift
  "${MYSQL[@]}" --no-defaults "--plugin-dir=$ROOT/usr/lib/mysql/plugin" --connect-timeout=5 \
    -h127.0.0.1 -P"$port" -uroot -N -B "$@"
}
mysql_root_ok() { sql "$1" -e 'SELECT 1' >/dev/null 2>&1; }

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" 2>/dev/null || true; }

# A unix socket path must stay under ~107 bytes; long checkouts get theirs under /tmp.
socket_path() {
  local s="$STATE/$1/mysqld.sock"
  if (( ${#s} > 100 )); then
    local d
    d="/tmp/mcb-sock-$(printf %s "$STATE" | md5sum | cut -c1-12)"
    mkdir -p "$d"
    s="$d/$1.sock"
  fi
  printf %s "$s"
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need the Debian package(s) $*, and apt-get is not here"
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; } ||
    die "apt-get install $* failed"
}

take_lock() {
  # One lock for the whole machine: several checkouts share the ports and the sid root.
  local lockfile="$CACHE_DIR/services.lock"
  mkdir -p "$CACHE_DIR" 2>/dev/null && touch "$lockfile" 2>/dev/null || lockfile="$STATE/.lock"
  exec 9>>"$lockfile"
  if ! flock -n 9; then
    log "waiting for another services.sh run (lock $lockfile)"
    flock -w 1800 9 || die "could not take the lock $lockfile within 30 minutes"
  fi
}

# ---------------------------------------------------------------------------------------------- sid root

root_missing() {
  local f
  for f in "$LOADER" "$ROOT/usr/sbin/mysqld" "$ROOT/usr/bin/mysql" "$ROOT/usr/bin/mysqlbinlog" \
    "$ROOT/usr/lib/mysql/plugin/mysql_clone.so" "$ROOT/usr/bin/moto_server"; do
    [[ -e "$f" ]] || { printf %s "$f"; return 0; }
  done
  return 1
}

remove_tree() { # unmounts whatever an interrupted debootstrap left mounted inside, then removes
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf --one-file-system "$1"
}

ensure_root() {
  local missing
  missing="$(root_missing)" || return 0
  [[ -e "$ROOT" ]] && die "$ROOT exists but is incomplete ($missing is missing); remove it to rebuild: rm -rf --one-file-system '$ROOT'"
  [[ $EUID -eq 0 ]] || die "building $ROOT with debootstrap needs root"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local stale
  for stale in "$ROOT".tmp.*; do
    if [[ -e "$stale" ]]; then log "removing the unfinished root $stale"; remove_tree "$stale"; fi
  done
  local tmp="$ROOT.tmp.$$"
  log "building the Debian sid root $ROOT with debootstrap (a few minutes, about 900 MB; log $CACHE_DIR/debootstrap.log)"
  if ! debootstrap --variant=minbase "--include=$ROOT_PACKAGES" sid "$tmp" >"$CACHE_DIR/debootstrap.log" 2>&1; then
    tail_log "$CACHE_DIR/debootstrap.log"
    remove_tree "$tmp"
    die "debootstrap failed; see $CACHE_DIR/debootstrap.log"
  fi
  local saved_root="$ROOT"
  ROOT="$tmp" LOADER="$tmp/lib64/ld-linux-x86-64.so.2"
  if missing="$(root_missing)"; then
    ROOT="$saved_root"; remove_tree "$tmp"; die "debootstrap finished but $missing is missing; see $CACHE_DIR/debootstrap.log"
  fi
  ROOT="$saved_root" LOADER="$saved_root/lib64/ld-linux-x86-64.so.2"
  mv "$tmp" "$ROOT"
  log "sid root ready: $ROOT"
}

# ---------------------------------------------------------------------------------------------- Redis

REDIS_URL="" REDIS_NOTE=""
ensure_redis() {
  if redis_ping "$REDIS_PROBE_PORT"; then
    REDIS_URL="redis://127.0.0.1:$REDIS_PROBE_PORT" REDIS_NOTE="the machine's own"
    return
  fi
  local dir="$STATE/redis" pidf="$STATE/redis/redis.pid" logf="$STATE/logs/redis.log"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  if pid_alive "$pidf" redis-server; then
    REDIS_NOTE="started here, pid $(cat "$pidf")"
  elif redis_ping "$REDIS_PORT"; then
    REDIS_NOTE="already answering, not started here"; return
  elif tcp_open "$REDIS_PORT"; then
    die "127.0.0.1:$REDIS_PORT is taken by something that does not answer Redis PING; free it or set MCB_REDIS_PORT"
  else
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    mkdir -p "$dir"
    log "starting redis-server on 127.0.0.1:$REDIS_PORT (nothing answers on $REDIS_PROBE_PORT)"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
      --pidfile "$pidf" --logfile "$logf" --dir "$dir" --maxmemory-policy noeviction </dev/null >>"$logf" 2>&1 9>&- ||
      { tail_log "$logf"; die "redis-server did not start; see $logf"; }
    REDIS_NOTE="started here"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until redis_ping "$REDIS_PORT"; do
    (( SECONDS < deadline )) || { tail_log "$logf"; die "Redis on 127.0.0.1:$REDIS_PORT did not answer within ${TIMEOUT}s; see $logf"; }
    sleep 0.3
  done
  pid_alive "$pidf" redis-server && REDIS_NOTE="started here, pid $(cat "$pidf")"
  return 0
}

# ---------------------------------------------------------------------------------------------- MySQL

declare -A MYSQL_NOTE=()

# start_mysql NAME PORT [extra mysqld args...]: start (initializing the datadir on first use) unless answering.
start_mysql() {
  local name="$1" port="$2"; shift 2
  local dir="$STATE/$name" data="$STATE/$name/data" logf="$STATE/logs/$name.log"
  local pidf="$STATE/$name/mysqld.pid" sock
  sock="$(socket_path "$name")"
  if pid_alive "$pidf" "--datadir=$data"; then
    MYSQL_NOTE[$name]="started here, pid $(cat "$pidf")"
    wait_mysql "$name" "$port" "$logf" "$pidf" "$(tr -dc 0-9 <"$pidf")"
    return
  fi
  if tcp_open "$port"; then
    mysql_root_ok "$port" ||
      die "127.0.0.1:$port ($name) is taken by something that is not a MySQL server accepting root without a password; stop it or choose another port (docs/local-services.md)"
    log "$name: reusing the MySQL server already answering on 127.0.0.1:$port (not started by this script)"
    MYSQL_NOTE[$name]="already answering, not started here"
    return
  fi
  mkdir -p "$dir" "$STATE/logs"
  if [[ ! -d "$data/mysql" ]]; then
    local init="$data.init" initlog="$STATE/logs/$name-initialize.log"
    log "$name: initializing $data (--initialize-insecure)"
    rm -rf "$init" "$data"
    if ! "${MYSQLD[@]}" "${MYSQLD_BASE[@]}" --initialize-insecure "--datadir=$init" >"$initlog" 2>&1; then
      tail_log "$initlog"; die "$name: mysqld --initialize-insecure failed; see $initlog"
    fi
    mv "$init" "$data"
  fi
  log "$name: starting mysqld on 127.0.0.1:$port"
  setsid nohup "${MYSQLD[@]}" "${MYSQLD_BASE[@]}" "--datadir=$data" "--port=$port" --bind-address=127.0.0.1 \
    "--socket=$sock" "--pid-file=$pidf" "--log-error=$logf" --mysqlx=OFF --secure-file-priv= "$@" \
    </dev/null >>"$logf" 2>&1 9>&- &
  local launched=$!
  echo "$launched" >"$pidf"
  MYSQL_NOTE[$name]="started here"
  wait_mysql "$name" "$port" "$logf" "$pidf" "$launched"
  MYSQL_NOTE[$name]="started here, pid $(cat "$pidf" 2>/dev/null || echo "$launched")"
}

wait_mysql() { # NAME PORT LOG PIDFILE LAUNCHED_PID
  local name="$1" port="$2" logf="$3" pidf="$4" launched="$5"
  local deadline=$((SECONDS + TIMEOUT))
  until mysql_root_ok "$port"; do
    if [[ -n "$launched" ]] && ! pid_running "$launched" && ! pid_alive "$pidf" mysqld; then
      tail_log "$logf"; die "$name: mysqld exited before answering on 127.0.0.1:$port; see $logf"
    fi
    (( SECONDS < deadline )) || { tail_log "$logf"; die "$name: mysqld did not answer on 127.0.0.1:$port within ${TIMEOUT}s; see $logf"; }
    sleep 0.5
  done
}

# backup_grants_ok PORT: both backup_clone accounts exist with the seed's grants.
backup_grants_ok() {
  local port="$1" host g
  for host in 127.0.0.1 localhost; do
    g="$(sql "$port" -e "SHOW GRANTS FOR '$BACKUP_USER'@'$host'" 2>/dev/null)" || return 1
    grep -q 'RELOAD, PROCESS, REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\*' <<<"$g" || return 1
    grep -q 'BACKUP_ADMIN' <<<"$g" || return 1
    grep -q 'SELECT ON `performance_schema`\.\*' <<<"$g" || return 1
  done
}
repl_user_ok() {
  local host
  for host in 127.0.0.1 localhost; do
    sql "$1" -e "SHOW GRANTS FOR '$REPL_USER'@'$host'" 2>/dev/null | grep -q 'REPLICATION SLAVE' || return 1
  done
}

ensure_source_users() {
  if backup_grants_ok "$SOURCE_PORT" && repl_user_ok "$SOURCE_PORT"; then return; fi
  log "source: creating $BACKUP_USER and $REPL_USER"
  local h q=""
  for h in 127.0.0.1 localhost; do
    q+="CREATE USER IF NOT EXISTS '$BACKUP_USER'@'$h' IDENTIFIED BY '$BACKUP_PASSWORD';
        GRANT BACKUP_ADMIN, RELOAD, REPLICATION CLIENT, PROCESS ON *.* TO '$BACKUP_USER'@'$h';
        GRANT REPLICATION SLAVE ON *.* TO '$BACKUP_USER'@'$h'; -- binlog_stream = on (docs/binlog-streaming.md)
        GRANT SELECT ON performance_schema.* TO '$BACKUP_USER'@'$h';
        CREATE USER IF NOT EXISTS '$REPL_USER'@'$h' IDENTIFIED BY '$REPL_PASSWORD';
        GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'$h';"
  done
  sql "$SOURCE_PORT" -e "$q" || die "source: creating the users failed"
}

replica_field() { # PORT FIELD: one field of SHOW REPLICA STATUS
  sql "$1" --column-names -E -e 'SHOW REPLICA STATUS' 2>/dev/null | awk -v k="$2" '{ sub(/^ +/, "") } index($0, k": ") == 1 { print substr($0, length(k) + 3); exit }'
}

ensure_replication() {
  if [[ -z "$(sql "$REPLICA_PORT" -e 'SHOW REPLICA STATUS' 2>/dev/null)" ]]; then
    log "replica: CHANGE REPLICATION SOURCE TO 127.0.0.1:$SOURCE_PORT; START REPLICA"
    sql "$REPLICA_PORT" -e "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$SOURCE_PORT,
        SOURCE_USER='$REPL_USER', SOURCE_PASSWORD='$REPL_PASSWORD', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1;
        START REPLICA;" || die "replica: setting up replication failed"
  elif [[ "$(replica_field "$REPLICA_PORT" Replica_IO_Running)" != Yes || "$(replica_field "$REPLICA_PORT" Replica_SQL_Running)" != Yes ]]; then
    log "replica: START REPLICA"
    sql "$REPLICA_PORT" -e 'START REPLICA' || true
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until [[ "$(replica_field "$REPLICA_PORT" Replica_SQL_Running)" == Yes && "$(replica_field "$REPLICA_PORT" Replica_IO_Running)" == Yes ]] &&
    backup_grants_ok "$REPLICA_PORT"; do
    if (( SECONDS >= deadline )); then
      sql "$REPLICA_PORT" --column-names -E -e 'SHOW REPLICA STATUS' >&2 || true
      die "replica: replication is not running or $BACKUP_USER did not arrive within ${TIMEOUT}s (see Last_IO_Error/Last_SQL_Error above and $STATE/logs/replica.log)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------- metadata center

METADATA_PORT_USED="" METADATA_FLAVOR="" METADATA_NOTE=""
ensure_metadata() {
  if tcp_open "$METADATA_PROBE_PORT" && mysql_root_ok "$METADATA_PROBE_PORT"; then
    METADATA_PORT_USED="$METADATA_PROBE_PORT" METADATA_NOTE="the machine's own"
  else
    start_mysql metadata "$METADATA_PORT" --server-id=3 --disable-log-bin
    METADATA_PORT_USED="$METADATA_PORT" METADATA_NOTE="${MYSQL_NOTE[metadata]}"
  fi
  if sql "$METADATA_PORT_USED" -e 'SELECT VERSION()' | grep -qi mariadb; then METADATA_FLAVOR=mariadb; else METADATA_FLAVOR=mysql; fi
}

# ---------------------------------------------------------------------------------------------- S3 (moto)

S3_NOTE=""
ensure_s3() {
  local pidf="$STATE/moto/moto.pid" logf="$STATE/logs/moto.log" url="http://127.0.0.1:$S3_PORT"
  mkdir -p "$STATE/moto" "$STATE/logs"
  if pid_alive "$pidf" moto_server; then
    S3_NOTE="started here, pid $(cat "$pidf")"
  elif [[ "$(http_code "$url/")" == 200 ]]; then
    S3_NOTE="already answering, not started here"
  elif tcp_open "$S3_PORT"; then
    die "127.0.0.1:$S3_PORT is taken by something that does not answer HTTP 200; free it or set MCB_S3_PORT"
  else
    [[ $EUID -eq 0 ]] || die "moto runs with chroot into $ROOT, which needs root"
    log "starting moto_server on 127.0.0.1:$S3_PORT"
    (cd / && exec setsid nohup chroot "$ROOT" moto_server -H 127.0.0.1 -p "$S3_PORT" </dev/null >>"$logf" 2>&1) 9>&- &
    echo $! >"$pidf"
    S3_NOTE="started here"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until [[ "$(http_code "$url/")" == 200 ]]; do
    if [[ "$S3_NOTE" == started* ]] && ! pid_alive "$pidf" moto_server; then
      tail_log "$logf"; die "moto_server exited before answering on $url; see $logf"
    fi
    (( SECONDS < deadline )) || { tail_log "$logf"; die "moto_server did not answer on $url within ${TIMEOUT}s; see $logf"; }
    sleep 0.3
  done
  [[ "$S3_NOTE" == "started here" ]] && S3_NOTE="started here, pid $(cat "$pidf")"
  if [[ "$(http_code -I "$url/$S3_BUCKET")" != 200 ]]; then
    log "s3: creating bucket $S3_BUCKET"
    local code
    code="$(http_code -X PUT "$url/$S3_BUCKET")"
    [[ "$code" == 200 || "$(http_code -I "$url/$S3_BUCKET")" == 200 ]] || die "s3: creating bucket $S3_BUCKET failed (HTTP $code); see $logf"
  fi
}

# ---------------------------------------------------------------------------------------------- env.json / env.sh

server_paths() { # PORT -> "datadir<TAB>binlog index"
  sql "$1" -e 'SELECT TRIM(TRAILING "/" FROM @@datadir), IFNULL(@@log_bin_index, "")'
}

write_env() {
  command -v node >/dev/null 2>&1 || die "node is needed to write env.json"
  local src rep
  src="$(server_paths "$SOURCE_PORT")" || die "source: cannot read @@datadir"
  rep="$(server_paths "$REPLICA_PORT")" || die "replica: cannot read @@datadir"
  local mysqld_json base_json client_json binlog_json
  MCB_J_STATE="$STATE" MCB_J_REDIS="$REDIS_URL" \
  MCB_J_META_PORT="$METADATA_PORT_USED" MCB_J_META_FLAVOR="$METADATA_FLAVOR" \
  MCB_J_SRC_PORT="$SOURCE_PORT" MCB_J_SRC_DATADIR="${src%%$'\t'*}" MCB_J_SRC_INDEX="${src#*$'\t'}" \
  MCB_J_REP_PORT="$REPLICA_PORT" MCB_J_REP_DATADIR="${rep%%$'\t'*}" MCB_J_REP_INDEX="${rep#*$'\t'}" \
  MCB_J_BACKUP_USER="$BACKUP_USER" MCB_J_BACKUP_PASSWORD="$BACKUP_PASSWORD" \
  MCB_J_S3_PORT="$S3_PORT" MCB_J_S3_BUCKET="$S3_BUCKET" MCB_J_S3_AK="$S3_ACCESS_KEY" MCB_J_S3_SK="$S3_SECRET_KEY" \
  MCB_J_ROOT="$ROOT" \
  node --input-type=module -e '
    import { writeFileSync, readFileSync, renameSync } from "node:fs";
    const e = process.env;
    const args = (s) => s.split("\u0001");
    const [mysqld, base, client, binlog] = process.argv.slice(1).map(args);
    const endpoint = (port, datadir, index) => ({
      host: "127.0.0.1", port: Number(port), user: e.MCB_J_BACKUP_USER, password: e.MCB_J_BACKUP_PASSWORD,
      rootUser: "root", rootPassword: "", datadir, binlogIndex: index,
    });
    const env = {
      redisUrl: e.MCB_J_REDIS,
      metadata: { host: "127.0.0.1", port: Number(e.MCB_J_META_PORT), user: "root", password: "", flavor: e.MCB_J_META_FLAVOR },
      source: endpoint(e.MCB_J_SRC_PORT, e.MCB_J_SRC_DATADIR, e.MCB_J_SRC_INDEX),
      replica: endpoint(e.MCB_J_REP_PORT, e.MCB_J_REP_DATADIR, e.MCB_J_REP_INDEX),
      s3: { endPoint: "127.0.0.1", port: Number(e.MCB_J_S3_PORT), useSSL: false, accessKey: e.MCB_J_S3_AK,
            secretKey: e.MCB_J_S3_SK, bucket: e.MCB_J_S3_BUCKET },
      sidRoot: e.MCB_J_ROOT,
      mysqld, mysqldBaseArgs: base, mysqlClient: client, mysqlbinlog: binlog,
    };
    const q = (v) => "\x27" + String(v).replace(/\x27/g, "\x27\\\x27\x27") + "\x27";
    const vars = {
      MCB_SERVICES_DIR: e.MCB_J_STATE,
      MCB_TEST_ENV_JSON: e.MCB_J_STATE + "/env.json",
      MCB_TEST_REDIS_URL: env.redisUrl,
      MCB_TEST_METADATA_HOST: env.metadata.host, MCB_TEST_METADATA_PORT: env.metadata.port,
      MCB_TEST_METADATA_USER: env.metadata.user, MCB_TEST_METADATA_PASSWORD: env.metadata.password,
      MCB_TEST_METADATA_FLAVOR: env.metadata.flavor,
    };
    for (const [k, ep] of [["SOURCE", env.source], ["REPLICA", env.replica]]) {
      Object.assign(vars, {
        [`MCB_TEST_${k}_HOST`]: ep.host, [`MCB_TEST_${k}_PORT`]: ep.port, [`MCB_TEST_${k}_USER`]: ep.user,
        [`MCB_TEST_${k}_PASSWORD`]: ep.password, [`MCB_TEST_${k}_ROOT_USER`]: ep.rootUser,
        [`MCB_TEST_${k}_ROOT_PASSWORD`]: ep.rootPassword, [`MCB_TEST_${k}_DATADIR`]: ep.datadir,
        [`MCB_TEST_${k}_BINLOG_INDEX`]: ep.binlogIndex,
      });
    }
    Object.assign(vars, {
      MCB_TEST_S3_ENDPOINT: env.s3.endPoint, MCB_TEST_S3_PORT: env.s3.port, MCB_TEST_S3_USE_SSL: env.s3.useSSL,
      MCB_TEST_S3_ACCESS_KEY: env.s3.accessKey, MCB_TEST_S3_SECRET_KEY: env.s3.secretKey, MCB_TEST_S3_BUCKET: env.s3.bucket,
      MCB_TEST_SID_ROOT: env.sidRoot,
    });
    const files = {
      "env.json": JSON.stringify(env, null, 2) + "\n",
      "env.sh": "# written by scripts/services.sh up; use: source " + e.MCB_J_STATE + "/env.sh\n" +
        Object.entries(vars).map(([k, v]) => `export ${k}=${q(v)}`).join("\n") + "\n",
    };
    for (const [name, text] of Object.entries(files)) {
      const file = e.MCB_J_STATE + "/" + name;
      let old = null;
      try { old = readFileSync(file, "utf8"); } catch {}
      if (old === text) continue;
      writeFileSync(file + ".tmp", text);
      renameSync(file + ".tmp", file);
    }
  ' "$(IFS=$'\001'; echo "${MYSQLD[*]}")" "$(IFS=$'\001'; echo "${MYSQLD_BASE[*]}")" \
    "$(IFS=$'\001'; echo "${MYSQL[*]}")" "$(IFS=$'\001'; echo "${MYSQLBINLOG[*]}")"
}

# ---------------------------------------------------------------------------------------------- commands

cmd_up() {
  [[ $EUID -eq 0 ]] || die "services.sh up needs root (debootstrap, chroot for moto); see docs/local-services.md"
  mkdir -p "$STATE" "$STATE/logs"
  STATE="$(cd "$STATE" && pwd)"
  take_lock
  ensure_root
  ensure_redis
  start_mysql source "$SOURCE_PORT" --server-id=1 "--log-bin=$STATE/source/data/mysql-bin" \
    --gtid-mode=ON --enforce-gtid-consistency=ON --plugin-load-add=mysql_clone.so
  ensure_source_users
  start_mysql replica "$REPLICA_PORT" --server-id=2 "--log-bin=$STATE/replica/data/mysql-bin" \
    "--relay-log=$STATE/replica/data/relay-bin" --gtid-mode=ON --enforce-gtid-consistency=ON \
    --plugin-load-add=mysql_clone.so --read-only=ON
  ensure_replication
  ensure_metadata
  ensure_s3
  write_env
  local v
  v="$(sql "$SOURCE_PORT" -e 'SELECT VERSION()' 2>/dev/null || echo '?')"
  cat <<EOF
mcb local services are up (state: $STATE)
  redis     $REDIS_URL  ($REDIS_NOTE)
  source    127.0.0.1:$SOURCE_PORT  MySQL $v, server-id 1, CLONE + binlog + GTID  (${MYSQL_NOTE[source]})
  replica   127.0.0.1:$REPLICA_PORT  read-only replica of the source, server-id 2  (${MYSQL_NOTE[replica]})
  metadata  127.0.0.1:$METADATA_PORT_USED  $METADATA_FLAVOR, root without password  ($METADATA_NOTE)
  s3        http://127.0.0.1:$S3_PORT  moto, bucket '$S3_BUCKET'  ($S3_NOTE)
  backup user: $BACKUP_USER / $BACKUP_PASSWORD on source and replica
  env: $STATE/env.json   shell: source $STATE/env.sh
EOF
}

stop_pidfile() { # NAME PIDFILE PATTERN
  local name="$1" pidf="$2" pattern="$3" pid
  if ! pid_alive "$pidf" "$pattern"; then
    rm -f "$pidf"
    return
  fi
  pid="$(tr -dc 0-9 <"$pidf")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 120))
  while pid_running "$pid"; do
    if (( SECONDS >= deadline )); then
      log "$name did not stop within 120s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.3
  done
  rm -f "$pidf"
}

cmd_down() {
  [[ -d "$STATE" ]] || { log "nothing to stop ($STATE does not exist)"; return 0; }
  STATE="$(cd "$STATE" && pwd)"
  take_lock
  stop_pidfile replica "$STATE/replica/mysqld.pid" "--datadir=$STATE/replica/data"
  # A lingering "Binlog Dump GTID" thread makes the source's shutdown wait ~10 s: end it first.
  if pid_alive "$STATE/source/mysqld.pid" "--datadir=$STATE/source/data" && [[ -z "$(root_missing)" ]]; then
    local id
    for id in $(sql "$SOURCE_PORT" -e "SELECT ID FROM performance_schema.processlist WHERE COMMAND LIKE 'Binlog Dump%'" 2>/dev/null || true); do
      sql "$SOURCE_PORT" -e "KILL $id" >/dev/null 2>&1 || true
    done
  fi
  stop_pidfile source "$STATE/source/mysqld.pid" "--datadir=$STATE/source/data"
  stop_pidfile metadata "$STATE/metadata/mysqld.pid" "--datadir=$STATE/metadata/data"
  stop_pidfile moto "$STATE/moto/moto.pid" moto_server
  stop_pidfile redis "$STATE/redis/redis.pid" redis-server
  log "stopped what this script started; data directories are kept in $STATE (remove it to reset)"
}

cmd_status() {
  local bad=0 where
  [[ -d "$STATE" ]] && STATE="$(cd "$STATE" && pwd)"
  ours() { pid_alive "$1" "$2" && printf 'started here, pid %s' "$(tr -dc 0-9 <"$1")" || printf 'not started here'; }
  if redis_ping "$REDIS_PROBE_PORT"; then
    echo "redis     redis://127.0.0.1:$REDIS_PROBE_PORT  answers (the machine's own)"
  elif redis_ping "$REDIS_PORT"; then
    echo "redis     redis://127.0.0.1:$REDIS_PORT  answers ($(ours "$STATE/redis/redis.pid" redis-server))"
  else
    echo "redis     DOWN (neither 127.0.0.1:$REDIS_PROBE_PORT nor 127.0.0.1:$REDIS_PORT answers)"; bad=1
  fi
  if [[ -z "$(root_missing)" ]]; then
    local name port
    for name in source replica; do
      [[ $name == source ]] && port=$SOURCE_PORT || port=$REPLICA_PORT
      if mysql_root_ok "$port"; then
        where="$(ours "$STATE/$name/mysqld.pid" "--datadir=$STATE/$name/data")"
        if [[ $name == replica ]]; then
          where+=", Replica_IO_Running=$(replica_field "$port" Replica_IO_Running) Replica_SQL_Running=$(replica_field "$port" Replica_SQL_Running)"
        fi
        printf '%-9s 127.0.0.1:%s  answers %s (%s)\n' "$name" "$port" "$(sql "$port" -e 'SELECT VERSION()')" "$where"
      else
        printf '%-9s 127.0.0.1:%s  DOWN\n' "$name" "$port"; bad=1
      fi
    done
    if mysql_root_ok "$METADATA_PROBE_PORT"; then
      echo "metadata  127.0.0.1:$METADATA_PROBE_PORT  answers $(sql "$METADATA_PROBE_PORT" -e 'SELECT VERSION()') (the machine's own)"
    elif mysql_root_ok "$METADATA_PORT"; then
      echo "metadata  127.0.0.1:$METADATA_PORT  answers $(sql "$METADATA_PORT" -e 'SELECT VERSION()') ($(ours "$STATE/metadata/mysqld.pid" "--datadir=$STATE/metadata/data"))"
    else
      echo "metadata  DOWN (neither 127.0.0.1:$METADATA_PROBE_PORT nor 127.0.0.1:$METADATA_PORT answers as root)"; bad=1
    fi
  else
    echo "mysql     the sid root $ROOT is missing or incomplete; run: bash scripts/services.sh up"; bad=1
  fi
  if [[ "$(http_code "http://127.0.0.1:$S3_PORT/")" == 200 ]]; then
    local b=missing
    [[ "$(http_code -I "http://127.0.0.1:$S3_PORT/$S3_BUCKET")" == 200 ]] && b=present
    echo "s3        http://127.0.0.1:$S3_PORT  answers, bucket '$S3_BUCKET' $b ($(ours "$STATE/moto/moto.pid" moto_server))"
    [[ $b == present ]] || bad=1
  else
    echo "s3        http://127.0.0.1:$S3_PORT  DOWN"; bad=1
  fi
  if [[ -f "$STATE/env.json" ]]; then echo "env       $STATE/env.json"; else echo "env       $STATE/env.json missing"; bad=1; fi
  return "$bad"
}

cmd_env() {
  [[ -f "$STATE/env.sh" ]] || die "$STATE/env.sh does not exist; run: bash scripts/services.sh up"
  cat "$STATE/env.sh"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
