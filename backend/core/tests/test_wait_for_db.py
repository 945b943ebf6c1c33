import os
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from unittest import mock

from django.core.management import CommandError, call_command
from django.db import OperationalError, connections
from django.test import SimpleTestCase, TestCase

BACKEND_DIR = Path(__file__).resolve().parents[2]


class WaitForDbTests(TestCase):
    def test_succeeds_when_database_is_up(self):
        out = StringIO()
        call_command("wait_for_db", "--timeout", "5", stdout=out, stderr=StringIO())
        self.assertIn("is available", out.getvalue())

    def test_retries_then_succeeds(self):
        conn = connections["default"]
        real = conn.ensure_connection
        calls = {"n": 0}

        def flaky():
            calls["n"] += 1
            if calls["n"] < 3:
                raise OperationalError("not yet")
            return real()

        out, err = StringIO(), StringIO()
        with mock.patch.object(conn, "ensure_connection", side_effect=flaky):
            call_command(
                "wait_for_db", "--timeout", "5", "--interval", "0.05", stdout=out, stderr=err
            )
        self.assertEqual(calls["n"], 3)
        self.assertIn("after 3 attempt(s)", out.getvalue())
        self.assertIn("not yet", err.getvalue())

    def test_gives_up_after_timeout(self):
        conn = connections["default"]
        start = time.monotonic()
        with (
            mock.patch.object(conn, "ensure_connection", side_effect=OperationalError("refused")),
            self.assertRaises(CommandError) as ctx,
        ):
            call_command("wait_for_db", "--timeout", "0.3", "--interval", "0.05", stderr=StringIO())
        self.assertLess(time.monotonic() - start, 3)
        message = str(ctx.exception)
        self.assertIn("still unreachable after 0.3s", message)
        self.assertIn("refused", message)


class WaitForDbMysqlSubprocessTests(SimpleTestCase):
    """Real PyMySQL connection attempts against a closed local port, in a child process."""

    def test_exits_non_zero_with_clear_message(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            **os.environ,
            "SECRET_KEY": "test",
            "DJANGO_DB_ENGINE": "mysql",
            "MYSQL_HOST": "127.0.0.1",
            "MYSQL_PORT": str(port),
            "BACKEND_DB": "enlaight",
            "BACKEND_DB_USER": "enlaight",
            "BACKEND_DB_PASSWORD": "x",
            "DB_CONNECT_TIMEOUT": "1",
        }
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "manage.py", "wait_for_db", "--timeout", "1", "--interval", "0.2"],
            cwd=BACKEND_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("still unreachable after 1s", proc.stderr)
        self.assertIn(f"127.0.0.1:{port}/enlaight", proc.stderr)
        self.assertLess(time.monotonic() - start, 30)
