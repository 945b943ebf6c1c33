"""`migrate`, one replica at a time: several backend containers starting together (Swarm replicas, `--scale`)
would otherwise race on the same tables ("Table 'core_agent' already exists") and all but one fail.

On MySQL/MariaDB the migration runs under a named lock (GET_LOCK is held by this connection, the one `migrate`
uses); the replicas that wait find nothing left to apply. Other databases (SQLite in tests) migrate directly."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

LOCK_NAME = "enlaight.backend.migrate"


class Command(BaseCommand):
    help = "Apply migrations under a database-wide lock so that concurrent replicas migrate once."

    def add_arguments(self, parser):
        parser.add_argument("--lock-timeout", type=int, default=300, help="seconds to wait for another replica")

    def handle(self, *args, **options):
        if connection.vendor != "mysql":
            self._migrate(options["verbosity"])
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, %s)", [LOCK_NAME, options["lock_timeout"]])
            (acquired,) = cursor.fetchone()
        if acquired != 1:
            raise CommandError(
                f"another replica held the migration lock for {options['lock_timeout']}s: "
                "check the other backend containers' logs"
            )
        try:
            self._migrate(options["verbosity"])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [LOCK_NAME])

    def _migrate(self, verbosity: int) -> None:
        call_command("migrate", interactive=False, verbosity=verbosity, stdout=self.stdout, stderr=self.stderr)
