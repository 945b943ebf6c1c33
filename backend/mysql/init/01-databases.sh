#!/bin/sh
# Creates the backend's and Superset's databases and users on the MySQL server's
# FIRST start (mounted at /docker-entrypoint-initdb.d; works on mysql:8.4 and MariaDB 10.11).
#
# Reads from the environment (nothing is hard-coded):
#   MYSQL_ROOT_PASSWORD
#   BACKEND_DB  BACKEND_DB_USER  BACKEND_DB_PASSWORD
#   SUPERSET_DB_NAME  SUPERSET_DB_USER  SUPERSET_DB_PASSWORD
#   SUPERSET_RO_DB_USER  SUPERSET_RO_DB_PASSWORD
#
# Each user gets host '%' and privileges on its own database only; SUPERSET_RO_DB_USER
# (Superset's analytics connection to the backend's data) gets SELECT on BACKEND_DB and
# nothing else. Passwords travel on stdin as escaped SQL string literals (root's through
# MYSQL_PWD), never in argv.
#
# The body runs in a subshell so that `set -eu` does not leak into the image's
# entrypoint when the file is sourced (an init *.sh without the exec bit is sourced);
# a failure still fails the entrypoint (it runs with `set -e`).
(
    set -eu

    log() { printf '%s\n' "01-databases.sh: $*" >&2; }

    missing=""
    for var in MYSQL_ROOT_PASSWORD BACKEND_DB BACKEND_DB_USER BACKEND_DB_PASSWORD \
        SUPERSET_DB_NAME SUPERSET_DB_USER SUPERSET_DB_PASSWORD \
        SUPERSET_RO_DB_USER SUPERSET_RO_DB_PASSWORD; do
        eval "value=\${$var:-}"
        if [ -z "$value" ]; then
            missing="$missing $var"
        fi
    done
    if [ -n "$missing" ]; then
        log "ERROR: required environment variable(s) not set or empty:$missing"
        exit 1
    fi

    # Database names are used as identifiers: keep them to a safe character set.
    for var in BACKEND_DB SUPERSET_DB_NAME; do
        eval "value=\$$var"
        case "$value" in
            *[!A-Za-z0-9_]*)
                log "ERROR: $var='$value' may only contain letters, digits and underscores"
                exit 1
                ;;
        esac
    done

    # The read-only user must be a user of its own: the same name would re-password and widen another.
    if [ "$SUPERSET_RO_DB_USER" = "$BACKEND_DB_USER" ] || [ "$SUPERSET_RO_DB_USER" = "$SUPERSET_DB_USER" ]; then
        log "ERROR: SUPERSET_RO_DB_USER='$SUPERSET_RO_DB_USER' must differ from BACKEND_DB_USER and SUPERSET_DB_USER"
        exit 1
    fi

    # SQL string literal body: double backslashes, double single quotes.
    sql_string() {
        printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"
    }
    # Database name inside GRANT ... ON `db`.*: '_' and '%' are wildcards there.
    grant_db() {
        printf '%s' "$1" | sed -e 's/[_%]/\\&/g'
    }

    create_db_and_user() {
        db=$1
        user=$(sql_string "$2")
        password=$(sql_string "$3")
        cat <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$password';
ALTER USER '$user'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$(grant_db "$db")\`.* TO '$user'@'%';
SQL
    }

    create_read_only_user() {
        db=$1
        user=$(sql_string "$2")
        password=$(sql_string "$3")
        cat <<SQL
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$password';
ALTER USER '$user'@'%' IDENTIFIED BY '$password';
GRANT SELECT ON \`$(grant_db "$db")\`.* TO '$user'@'%';
SQL
    }

    log "creating database '$BACKEND_DB' (user '$BACKEND_DB_USER') and '$SUPERSET_DB_NAME' (user '$SUPERSET_DB_USER')"
    log "creating read-only user '$SUPERSET_RO_DB_USER' (SELECT on '$BACKEND_DB')"
    {
        create_db_and_user "$BACKEND_DB" "$BACKEND_DB_USER" "$BACKEND_DB_PASSWORD"
        create_db_and_user "$SUPERSET_DB_NAME" "$SUPERSET_DB_USER" "$SUPERSET_DB_PASSWORD"
        create_read_only_user "$BACKEND_DB" "$SUPERSET_RO_DB_USER" "$SUPERSET_RO_DB_PASSWORD"
        echo "FLUSH PRIVILEGES;"
    } | MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --host=localhost --user=root
    log "done"
)
