import os
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from unittest import mock

import pymysql
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections
from django.test import SimpleTestCase, TestCase

from core.management.commands import wait_for_db

BACKEND_DIR = Path(__file__).resolve().parents[2]


def mysql_error(code: int, message: str) -> OperationalError:
    """What Django raises for a PyMySQL error: the driver's (code, message) args, the driver error as cause."""
    cause = pymysql.err.OperationalError(code, message)
    error = OperationalError(*cause.args)
    error.__cause__ = cause
    return error


ACCESS_DENIED = "Access denied for user 'enlaight'@'172.18.0.5' (using password: YES)"


class ClassificationTests(SimpleTestCase):
    def test_permanent_errors(self):
        for code, message, words in (
            (1045, ACCESS_DENIED, "credentials do not match the database: the volume was initialised with other"),
            (1044, "Access denied for user 'enlaight'@'%' to database 'enlaight'", "no rights on this database"),
            (1049, "Unknown database 'enlaight'", "the database does not exist"),
        ):
            with self.subTest(code=code):
                problem = wait_for_db.permanent_problem(mysql_error(code, message))
                self.assertIsNotNone(problem)
                self.assertIn(f"MySQL {code}", problem[0])
                self.assertIn(words, problem[1])

    def test_transient_errors_are_retried(self):
        for code, message in (
            (2002, "Can't connect to local MySQL server through socket"),
            (2003, "Can't connect to MySQL server on 'mysql' ([Errno 111] Connection refused)"),
            (2013, "Lost connection to MySQL server during query"),
            (1040, "Too many connections"),
            (9999, "something nobody has seen yet"),
        ):
            with self.subTest(code=code):
                self.assertIsNone(wait_for_db.permanent_problem(mysql_error(code, message)))
        self.assertTrue({1040, 2002, 2003, 2013} <= wait_for_db.TRANSIENT_ERRORS)
        self.assertFalse(wait_for_db.TRANSIENT_ERRORS & set(wait_for_db.PERMANENT_ERRORS))

    def test_errors_without_a_code_are_retried(self):
        self.assertIsNone(wait_for_db.permanent_problem(OperationalError("unable to open database file")))
        self.assertIsNone(wait_for_db.permanent_problem(OperationalError("1045 but as text")))

    def test_code_is_found_on_the_driver_error_too(self):
        wrapped = OperationalError("wrapped differently")
        wrapped.__cause__ = pymysql.err.OperationalError(1045, ACCESS_DENIED)
        self.assertEqual(wait_for_db.mysql_error_code(wrapped), 1045)


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

    def test_permanent_error_ends_the_wait_at_once(self):
        conn = connections["default"]
        err = StringIO()
        start = time.monotonic()
        with (
            mock.patch.object(conn, "ensure_connection", side_effect=mysql_error(1045, ACCESS_DENIED)) as attempt,
            self.assertRaises(CommandError) as ctx,
        ):
            call_command("wait_for_db", "--timeout", "30", "--interval", "0.05", stderr=err)
        self.assertLess(time.monotonic() - start, 3)
        self.assertEqual(attempt.call_count, 1)
        message = str(ctx.exception)
        self.assertNotIn("\n", message)
        self.assertIn("access denied (MySQL 1045)", message)
        self.assertIn(ACCESS_DENIED, message)
        self.assertIn("credentials do not match the database: the volume was initialised with other passwords", message)
        self.assertIn("Not retrying", message)
        self.assertEqual(err.getvalue(), "")

    def test_unknown_database_ends_the_wait_at_once(self):
        conn = connections["default"]
        with (
            mock.patch.object(conn, "ensure_connection", side_effect=mysql_error(1049, "Unknown database 'x'")),
            self.assertRaisesMessage(CommandError, "unknown database (MySQL 1049)"),
        ):
            call_command("wait_for_db", "--timeout", "30", "--interval", "0.05", stderr=StringIO())

    def test_transient_mysql_errors_keep_retrying(self):
        conn = connections["default"]
        real = conn.ensure_connection
        errors = [
            mysql_error(2003, "Can't connect to MySQL server on 'mysql' ([Errno 111] Connection refused)"),
            mysql_error(2013, "Lost connection to MySQL server during query"),
            mysql_error(1040, "Too many connections"),
        ]

        def flaky():
            if errors:
                raise errors.pop(0)
            return real()

        out, err = StringIO(), StringIO()
        with mock.patch.object(conn, "ensure_connection", side_effect=flaky):
            call_command("wait_for_db", "--timeout", "5", "--interval", "0.05", stdout=out, stderr=err)
        self.assertIn("after 4 attempt(s)", out.getvalue())
        self.assertIn("Too many connections", err.getvalue())


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
