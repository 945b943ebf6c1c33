"""backend/mysql/init/01-databases.sh, run against a stub `mysql` that records its input."""

import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from django.test import SimpleTestCase

SCRIPT = Path(__file__).resolve().parents[2] / "mysql" / "init" / "01-databases.sh"

STUB = """#!/bin/sh
printf '%s\\n' "$@" > "$STUB_DIR/args"
printf '%s' "${MYSQL_PWD:-}" > "$STUB_DIR/pwd"
cat > "$STUB_DIR/stdin"
"""

ENV = {
    "MYSQL_ROOT_PASSWORD": "root'pw",
    "BACKEND_DB": "enlaight_db",
    "BACKEND_DB_USER": "enlaight",
    "BACKEND_DB_PASSWORD": "it's a \\ secret",
    "SUPERSET_DB_NAME": "superset",
    "SUPERSET_DB_USER": "superset",
    "SUPERSET_DB_PASSWORD": "s3cr3t",
    "SUPERSET_RO_DB_USER": "superset_ro",
    "SUPERSET_RO_DB_PASSWORD": "r'o",
}


@unittest.skipUnless(SCRIPT.exists() and shutil.which("sh"), "init script not present")
class MysqlInitScriptTests(SimpleTestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)
        stub = self.tmp / "mysql"
        stub.write_text(STUB)
        stub.chmod(0o755)

    def run_script(self, env_overrides=None, source=False):
        env = {"PATH": f"{self.tmp}:{os.environ['PATH']}", "STUB_DIR": str(self.tmp), **ENV}
        env.update(env_overrides or {})
        env = {k: v for k, v in env.items() if v is not None}
        cmd = ["sh", "-c", f". '{SCRIPT}'"] if source else ["sh", str(SCRIPT)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)

    def test_creates_databases_and_users_with_escaped_passwords(self):
        proc = self.run_script()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        sql = (self.tmp / "stdin").read_text()
        self.assertIn(
            "CREATE DATABASE IF NOT EXISTS `enlaight_db` CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_unicode_ci;",
            sql,
        )
        self.assertIn("CREATE DATABASE IF NOT EXISTS `superset` CHARACTER SET utf8mb4", sql)
        self.assertIn(
            "CREATE USER IF NOT EXISTS 'enlaight'@'%' IDENTIFIED BY 'it''s a \\\\ secret';", sql
        )
        self.assertIn("ALTER USER 'superset'@'%' IDENTIFIED BY 's3cr3t';", sql)
        # Superset's analytics connection reads the backend's database and may do nothing else.
        self.assertIn("CREATE USER IF NOT EXISTS 'superset_ro'@'%' IDENTIFIED BY 'r''o';", sql)
        self.assertIn("GRANT SELECT ON `enlaight\\_db`.* TO 'superset_ro'@'%';", sql)
        # '_' escaped so the grant covers exactly this database.
        self.assertIn("GRANT ALL PRIVILEGES ON `enlaight\\_db`.* TO 'enlaight'@'%';", sql)
        self.assertIn("GRANT ALL PRIVILEGES ON `superset`.* TO 'superset'@'%';", sql)
        self.assertTrue(sql.rstrip().endswith("FLUSH PRIVILEGES;"))
        # Root password only through MYSQL_PWD, never on the command line.
        self.assertEqual((self.tmp / "pwd").read_text(), "root'pw")
        args = (self.tmp / "args").read_text().split()
        self.assertIn("--user=root", args)
        self.assertFalse(any("pw" in a or "secret" in a for a in args))

    def test_missing_variables_fail_clearly(self):
        proc = self.run_script({"SUPERSET_DB_PASSWORD": None, "BACKEND_DB": ""})
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("BACKEND_DB", proc.stderr)
        self.assertIn("SUPERSET_DB_PASSWORD", proc.stderr)
        self.assertFalse((self.tmp / "stdin").exists())

    def test_rejects_unsafe_database_name(self):
        proc = self.run_script({"BACKEND_DB": "evil`; DROP DATABASE mysql; --"})
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("may only contain", proc.stderr)

    def test_sourced_failure_propagates_and_options_do_not_leak(self):
        proc = subprocess.run(
            ["sh", "-c", f"set -e; . '{SCRIPT}'; echo after; echo \"unset:${{NOPE_UNSET_VAR}}\""],
            env={"PATH": f"{self.tmp}:{os.environ['PATH']}", "STUB_DIR": str(self.tmp), **ENV},
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("unset:", proc.stdout)  # set -u did not leak into the caller
        failing = self.run_script({"MYSQL_ROOT_PASSWORD": ""}, source=True)
        self.assertNotEqual(failing.returncode, 0)
