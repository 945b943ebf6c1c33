from io import StringIO

from django.core.management import call_command
from django.db import connection
from django.test import TestCase


class MigrateWithLockTests(TestCase):
    def test_nothing_left_to_apply_after_the_test_database_is_migrated(self):
        # SQLite here: no named lock, `migrate` runs directly. The MySQL path (GET_LOCK) runs in every backend
        # container start and with two Swarm replicas starting together (tests/e2e/test_swarm.py).
        out = StringIO()
        call_command("migrate_with_lock", stdout=out, verbosity=1)
        self.assertEqual(connection.vendor, "sqlite")
        self.assertIn("No migrations to apply", out.getvalue())
