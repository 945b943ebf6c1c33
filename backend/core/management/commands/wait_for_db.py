"""Wait until the database accepts connections, for a bounded time.

    python manage.py wait_for_db --timeout 60 [--interval 2] [--database default]

Exits 0 as soon as a connection succeeds; exits non-zero with a clear message
once the timeout has passed (never waits forever).

Errors that waiting cannot fix end the wait at once, with one line naming the
problem and the likely fix: MySQL 1045 (access denied: wrong user or password),
1044 (the user may not use the database), 1049 (unknown database). They almost
always mean the MySQL volume was initialised with other values than the ones in
.env (the init script runs only on a fresh volume). Everything else is retried
until the timeout: 2002/2003 (server not listening yet), 2006/2013 (connection
lost while it starts), 1040 (too many connections), and any unknown error.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import Error as DatabaseError

# MySQL error codes no retry can fix: (what it means, the likely fix).
PERMANENT_ERRORS: dict[int, tuple[str, str]] = {
    1045: (
        "access denied (MySQL 1045)",
        "credentials do not match the database: the volume was initialised with other passwords; "
        "put the BACKEND_DB_USER/BACKEND_DB_PASSWORD the volume was created with back in .env, "
        "or recreate the MySQL volume (its data is lost)",
    ),
    1044: (
        "access denied to the database (MySQL 1044)",
        "the user has no rights on this database: the volume was initialised with other BACKEND_DB/BACKEND_DB_USER "
        "values; put those back in .env, or grant the user access to the database",
    ),
    1049: (
        "unknown database (MySQL 1049)",
        "the database does not exist: the volume was initialised with another BACKEND_DB; "
        "put that name back in .env, or create the database",
    ),
}
# For the record (and the tests): retried like any unknown error.
TRANSIENT_ERRORS = frozenset({1040, 2002, 2003, 2006, 2013})


def mysql_error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a (Django-wrapped) PyMySQL error, or None."""
    seen = exc
    while seen is not None:
        args = getattr(seen, "args", ())
        if args and isinstance(args[0], int):
            return args[0]
        seen = seen.__cause__
    return None


def permanent_problem(exc: BaseException) -> tuple[str, str] | None:
    """(problem, likely fix) when retrying cannot help, None when waiting may."""
    code = mysql_error_code(exc)
    return PERMANENT_ERRORS.get(code) if code is not None else None


def error_text(exc: BaseException) -> str:
    """The server's message on one line (PyMySQL errors are (code, message) tuples)."""
    args = getattr(exc, "args", ())
    text = str(args[1]) if len(args) >= 2 and isinstance(args[0], int) else str(exc)
    return " ".join(text.split())


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
                problem = permanent_problem(exc)
                if problem is not None:
                    what, fix = problem
                    raise CommandError(
                        f"Database '{database}' ({target}): {what}: {error_text(exc)}. "
                        f"Not retrying: {fix}."
                    ) from None
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
