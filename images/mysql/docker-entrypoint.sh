#!/bin/bash
# Entrypoint of enlaight-local/mysql (MariaDB 10.11): the parts of the official mysql image's
# docker-entrypoint.sh that Enlaight relies on. On the first start (empty datadir) it creates the
# system tables, sets the root password, creates MYSQL_DATABASE / MYSQL_USER and runs
# /docker-entrypoint-initdb.d/* against a temporary socket-only server; later starts go straight to mysqld.
set -eo pipefail
shopt -s nullglob

log() { printf '%s [Entrypoint]: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Support VAR_FILE (docker secrets), like the official image: VAR wins if both are set -> error.
file_env() {
  local var="$1" file_var="${1}_FILE" def="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then die "both $var and $file_var are set (but are exclusive)"; fi
  local val="$def"
  if [ -n "${!var:-}" ]; then val="${!var}"; elif [ -n "${!file_var:-}" ]; then val="$(<"${!file_var}")"; fi
  export "$var"="$val"
  unset "$file_var"
}

# Quote a value for a single-quoted SQL string literal.
sql_escape() { local s="${1//\\/\\\\}"; printf '%s' "${s//\'/\\\'}"; }

# `command: ["--foo"]` means `mysqld --foo`, as in the official image.
if [ "${1:0:1}" = '-' ]; then set -- mysqld "$@"; fi

# Anything but the server (bash, mysql, mysqldump ...) runs as given.
if [ "$1" != mysqld ] && [ "$1" != mariadbd ]; then exec "$@"; fi
for arg; do
  case "$arg" in -'?'|--help|--print-defaults|-V|--version) exec "$@" ;; esac
done

# Ask the server itself for the effective datadir/socket so `--datadir=...` args are honoured.
mysql_get_config() {
  local conf="$1"; shift
  "$@" --verbose --help 2>/dev/null | awk -v conf="$conf" '$1 == conf && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}
DATADIR="$(mysql_get_config datadir "$@")"; DATADIR="${DATADIR%/}"
SOCKET="$(mysql_get_config socket "$@")"
: "${DATADIR:=/var/lib/mysql}" "${SOCKET:=/run/mysqld/mysqld.sock}"

# As root: fix ownership of (possibly bind-mounted) dirs, then re-run this script as mysql, like gosu does
# in the official image, so init scripts and the server never run as root.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
  find "$DATADIR" "$(dirname "$SOCKET")" \! -user mysql -exec chown mysql: '{}' +
  exec setpriv --reuid=mysql --regid=mysql --init-groups env HOME=/var/lib/mysql "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -d "$DATADIR/mysql" ]; then
  file_env MYSQL_ROOT_PASSWORD
  file_env MYSQL_DATABASE
  file_env MYSQL_USER
  file_env MYSQL_PASSWORD
  file_env MYSQL_ROOT_HOST '%'
  if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] && [ -z "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    die "Database is uninitialized and password option is not specified.
    You need to specify one of the following as an environment variable:
    - MYSQL_ROOT_PASSWORD
    - MYSQL_ALLOW_EMPTY_PASSWORD
    - MYSQL_RANDOM_ROOT_PASSWORD"
  fi
  if [ "$MYSQL_USER" = root ]; then die "MYSQL_USER=\"root\", MYSQL_USER and MYSQL_PASSWORD are for configuring a regular user and cannot be used for the root user"; fi
  if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    MYSQL_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    log "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
  fi

  log "Initializing database files in $DATADIR"
  # normal auth: root@localhost gets a plain password account (no unix_socket), like MySQL's root.
  mariadb-install-db --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal \
    --skip-name-resolve "${@:2}" >/dev/null
  log "Database files initialized"

  log "Starting temporary server"
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
    --loose-innodb_buffer_pool_load_at_startup=0 &
  MYSQLD_PID=$!
  for _ in $(seq 60); do
    if mysql --protocol=socket -uroot -hlocalhost --socket="$SOCKET" --database=mysql -e 'SELECT 1' >/dev/null 2>&1; then break; fi
    kill -0 "$MYSQLD_PID" 2>/dev/null || die "temporary server exited during startup"
    sleep 1
  done
  mysql --protocol=socket -uroot -hlocalhost --socket="$SOCKET" -e 'SELECT 1' >/dev/null 2>&1 || die "Unable to start server."
  log "Temporary server started."

  # Before the root password is set: load time zones (Django's CONVERT_TZ needs them) unless skipped.
  if [ -z "${MYSQL_INITDB_SKIP_TZINFO:-}" ] && [ -d /usr/share/zoneinfo ]; then
    mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null \
      | sed 's/Local time zone must be set--see zic manual page/FCTY/' \
      | mysql --protocol=socket -uroot -hlocalhost --socket="$SOCKET" --database=mysql
  fi

  root_pw="$(sql_escape "$MYSQL_ROOT_PASSWORD")"
  {
    printf "SET @@SESSION.SQL_LOG_BIN=0;\n"
    # Remove anonymous and host-specific accounts mariadb-install-db may have created.
    printf "DROP USER IF EXISTS ''@'localhost', ''@'%s', 'root'@'127.0.0.1', 'root'@'::1', 'root'@'%s';\n" \
      "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)" "$(cat /proc/sys/kernel/hostname)"
    printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\n" "$root_pw"
    if [ -n "$MYSQL_ROOT_HOST" ] && [ "$MYSQL_ROOT_HOST" != localhost ]; then
      printf "CREATE USER IF NOT EXISTS 'root'@'%s' IDENTIFIED BY '%s';\n" "$(sql_escape "$MYSQL_ROOT_HOST")" "$root_pw"
      printf "GRANT ALL ON *.* TO 'root'@'%s' WITH GRANT OPTION;\n" "$(sql_escape "$MYSQL_ROOT_HOST")"
    fi
    printf "DROP DATABASE IF EXISTS test;\n"
    if [ -n "$MYSQL_DATABASE" ]; then
      printf 'CREATE DATABASE IF NOT EXISTS `%s`;\n' "${MYSQL_DATABASE//\`/\`\`}"
    fi
    if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
      printf "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\n" "$(sql_escape "$MYSQL_USER")" "$(sql_escape "$MYSQL_PASSWORD")"
      if [ -n "$MYSQL_DATABASE" ]; then
        printf "GRANT ALL ON \`%s\`.* TO '%s'@'%%';\n" "${MYSQL_DATABASE//\`/\`\`}" "$(sql_escape "$MYSQL_USER")"
      fi
    fi
    printf "FLUSH PRIVILEGES;\n"
  } | mysql --protocol=socket -uroot -hlocalhost --socket="$SOCKET" --database=mysql

  # From here on root needs its password. Export it as MYSQL_PWD so init scripts can use a plain
  # `mysql -uroot` over the socket (and the official `docker_process_sql` helper works when sourced).
  export MYSQL_PWD="$MYSQL_ROOT_PASSWORD"
  docker_process_sql() {
    local db=()
    if [ -n "$MYSQL_DATABASE" ]; then db=(--database="$MYSQL_DATABASE"); fi
    mysql --protocol=socket -uroot -hlocalhost --socket="$SOCKET" --comments "${db[@]}" "$@"
  }

  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql)    log "running $f"; docker_process_sql < "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | docker_process_sql ;;
      *.sql.xz) log "running $f"; xzcat "$f" | docker_process_sql ;;
      *)        log "ignoring $f" ;;
    esac
  done

  log "Stopping temporary server"
  mysqladmin --protocol=socket -uroot -hlocalhost --socket="$SOCKET" shutdown
  wait "$MYSQLD_PID" || true
  unset MYSQL_PWD
  log "MySQL init process done. Ready for start up."
fi

exec "$@"
