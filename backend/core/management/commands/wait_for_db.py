"""Wait until the database accepts connections, for a bounded time.

    python manage.py wait_for_db --timeout 60 [--interval 2] [--database default]

Exits 0 as soon as a connection succeeds; exits non-zero with a clear message
once the timeout has passed (never waits forever).
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import Error as DatabaseError


class Command(BaseCommand):
    help = "Wait (bounded by --timeout seconds) until the database accepts connections."

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            help="Give up after this many seconds (default: 60).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=2.0,
            help="Seconds between attempts (default: 2).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias to check (default: %(default)s).",
        )

    def handle(self, *args, timeout, interval, database, **options):
        if timeout < 0:
            raise CommandError("--timeout must be >= 0")
        interval = max(interval, 0.05)
        conn = connections[database]
        settings_dict = conn.settings_dict
        target = settings_dict.get("NAME")
        if settings_dict.get("HOST"):
            target = f"{settings_dict.get('HOST')}:{settings_dict.get('PORT') or ''}/{target}"

        start = time.monotonic()
        deadline = start + timeout
        attempt = 0
        last_error = None
        while True:
            attempt += 1
            try:
                conn.ensure_connection()
            except DatabaseError as exc:
                last_error = exc
                conn.close()
            else:
                elapsed = time.monotonic() - start
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Database '{database}' ({target}) is available "
                        f"after {attempt} attempt(s), {elapsed:.1f}s."
                    )
                )
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.stderr.write(
                f"Database '{database}' ({target}) unavailable (attempt {attempt}): "
                f"{last_error}; retrying for up to {remaining:.0f}s more..."
            )
            time.sleep(min(interval, remaining))

        raise CommandError(
            f"Database '{database}' ({target}) still unreachable after {timeout:g}s "
            f"and {attempt} attempt(s). Last error: {last_error}"
        )
