#!/bin/sh
# Backend container entrypoint: wait (bounded) for the database, migrate once,
# collect static files once, then hand over to the command (runserver / gunicorn).
# Any failure stops the start: no `|| true`.
set -eu

cd /app

echo "entrypoint: waiting for the database (timeout ${DB_WAIT_TIMEOUT:-60}s)"
python manage.py wait_for_db --timeout "${DB_WAIT_TIMEOUT:-60}"

echo "entrypoint: applying migrations (one replica at a time)"
python manage.py migrate_with_lock

echo "entrypoint: collecting static files"
python manage.py collectstatic --noinput --verbosity 0

echo "entrypoint: starting: $*"
exec "$@"
