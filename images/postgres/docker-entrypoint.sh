#!/bin/bash
# Entrypoint of enlaight-local/postgres (Debian PostgreSQL 15): the parts of the official postgres
# image's docker-entrypoint.sh that Enlaight relies on. On the first start (no PG_VERSION in PGDATA)
# it runs initdb for POSTGRES_USER/POSTGRES_PASSWORD, allows password logins from other hosts,
# creates POSTGRES_DB and runs /docker-entrypoint-initdb.d/* against a temporary socket-only server.
set -eo pipefail
shopt -s nullglob

log() { printf '%s [entrypoint]: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Support VAR_FILE (docker secrets), like the official image.
file_env() {
  local var="$1" file_var="${1}_FILE" def="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then die "both $var and $file_var are set (but are exclusive)"; fi
  local val="$def"
  if [ -n "${!var:-}" ]; then val="${!var}"; elif [ -n "${!file_var:-}" ]; then val="$(<"${!file_var}")"; fi
  export "$var"="$val"
  unset "$file_var"
}

# `command: ["-c", "x=y"]` means `postgres -c x=y`, as in the official image.
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
for arg; do
  case "$arg" in -'?'|--help|--describe-config|-V|--version) exec "$@" ;; esac
done

# As root: prepare (possibly bind-mounted) dirs, then re-run as postgres (initdb refuses root).
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres: '{}' +
  chmod 00700 "$PGDATA" || :
  chown postgres: /var/run/postgresql && chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    die "Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\".
       (or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)"
  fi

  # Inside the container (socket, 127.0.0.1) initdb's default "trust" applies, like the official image.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

  # Temporary server on the unix socket only, so clients never see a half-initialised database.
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start

  psql_base=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
  fi
  # Scripts (executable .sh or sourced) and .sql files see the same helpers as in the official image.
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  docker_process_sql() { "${psql_base[@]}" --dbname "$POSTGRES_DB" "$@"; }
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql)    log "running $f"; docker_process_sql -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | docker_process_sql ;;
      *.sql.xz) log "running $f"; xzcat "$f" | docker_process_sql ;;
      *)        log "ignoring $f" ;;
    esac
  done
  unset PGPASSWORD

  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
  log "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
