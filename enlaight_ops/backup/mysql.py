"""MySQL/MariaDB: both application databases (backend, Superset) in one consistent, compressed dump.

The root password never leaves the container: each script reads it from the container's own environment.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .manifest import SetError, merge_counts
from .streams import ComponentFailed, run_bytes
from .target import Progress, Target, dump_to_file, load_from_file, parse_counts

SERVICE = "mysql"
FILE = "mysql.sql.gz"
DATABASE_VARIABLES = ("BACKEND_DB", "SUPERSET_DB_NAME")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")

DUMP_SCRIPT = (
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysqldump --user=root --host=localhost '
    "--single-transaction --quick --routines --events --triggers --hex-blob --default-character-set=utf8mb4 "
    '--add-drop-database --databases "$@"'
)
CLIENT_SCRIPT = (
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --user=root --host=localhost --default-character-set=utf8mb4 "$@"'
)


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def count_sql(databases: Sequence[str]) -> str:
    """One session: the server version, then an exact COUNT(*) of every base table, all in one snapshot."""
    names = ", ".join(sql_string(d) for d in databases)
    return f"""SET SESSION group_concat_max_len = 16777216;
SELECT '@version', VERSION();
SELECT GROUP_CONCAT(
    CONCAT('SELECT ', QUOTE(CONCAT(table_schema, '.', table_name)), ', COUNT(*) FROM `',
           REPLACE(table_schema, '`', '``'), '`.`', REPLACE(table_name, '`', '``'), '`')
    ORDER BY table_schema, table_name SEPARATOR ' UNION ALL ')
  INTO @counts FROM information_schema.tables
  WHERE table_type = 'BASE TABLE' AND table_schema IN ({names});
SET @counts = IFNULL(@counts, 'SELECT NULL, NULL FROM DUAL WHERE FALSE');
START TRANSACTION WITH CONSISTENT SNAPSHOT;
PREPARE counts FROM @counts;
EXECUTE counts;
COMMIT;
"""  # noqa: S608 (names are escaped literals)


class MySQL:
    name = SERVICE
    service = SERVICE
    needs_server = True

    def databases(self, target: Target) -> list[str]:
        names = [target.service_env(SERVICE, variable) for variable in DATABASE_VARIABLES]
        bad = [n for n in names if not _SAFE_NAME.match(n)]
        if bad:
            raise ComponentFailed(f"mysql: database names must be letters, digits and '_' ({', '.join(bad)})")
        return list(dict.fromkeys(names))

    def _counts(self, target: Target, databases: Sequence[str]) -> tuple[str, dict[str, int]]:
        argv = target.exec_argv(SERVICE, CLIENT_SCRIPT, "--batch", "--skip-column-names")
        out = run_bytes(target.processes, argv, "mysql: counting rows", stdin=count_sql(databases).encode())
        return parse_counts(out.decode("utf-8", "replace"), "\t")

    def counts(self, target: Target) -> dict[str, int]:
        return self._counts(target, self.databases(target))[1]

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]:
        databases = self.databases(target)
        version, before = self._counts(target, databases)
        started = time.monotonic()
        written = dump_to_file(
            target,
            target.exec_argv(SERVICE, DUMP_SCRIPT, *databases),
            set_dir / FILE,
            "mysql: mysqldump",
            compress=True,
            progress=progress,
        )
        dump_seconds = time.monotonic() - started
        _, after = self._counts(target, databases)
        return {
            "kind": "mysql",
            "service": SERVICE,
            "files": [FILE],
            "databases": databases,
            "server_version": version,
            "checksums": {FILE: written.sha256},
            "bytes": written.bytes,
            "raw_bytes": written.raw_bytes,
            "dump_seconds": round(dump_seconds, 3),
            "row_counts": merge_counts(before, after),
        }

    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None:
        wanted = self.databases(target)
        if list(part.get("databases", [])) != wanted:
            raise SetError(
                f"{set_dir / FILE} holds MySQL databases {', '.join(part.get('databases', []))} but this stack uses "
                f"{', '.join(wanted)} (BACKEND_DB, SUPERSET_DB_NAME in .env): incompatible set"
            )

    def describe(self, part: Mapping[str, Any]) -> str:
        tables = len(part.get("row_counts", {}))
        return f"MySQL databases {', '.join(part.get('databases', []))} ({tables} tables) are dropped and replaced"

    def close_connections(self, target: Target, databases: Sequence[str]) -> None:
        """Kill every other session using the databases, so DROP DATABASE cannot wait on a metadata lock."""
        names = ", ".join(sql_string(d) for d in databases)
        sql = f"SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND db IN ({names});"  # noqa: S608
        argv = target.exec_argv(SERVICE, CLIENT_SCRIPT, "--batch", "--skip-column-names")
        ids = run_bytes(target.processes, argv, "mysql: listing connections", stdin=sql.encode()).split()
        if ids:
            kills = "".join(f"KILL {int(i)};\n" for i in ids)
            # A session that ended by itself meanwhile is nothing left to close.
            with contextlib.suppress(ComponentFailed):
                argv = target.exec_argv(SERVICE, CLIENT_SCRIPT, "--force")
                run_bytes(target.processes, argv, "mysql: closing connections", stdin=kills.encode())

    def restore(self, target: Target, set_dir: Path, part: Mapping[str, Any], progress: Progress) -> None:
        self.close_connections(target, part["databases"])
        # The dump drops and recreates each database (--add-drop-database); users and grants stay the stack's own.
        load_from_file(
            target,
            target.exec_argv(SERVICE, CLIENT_SCRIPT),
            set_dir / FILE,
            "mysql: restore",
            compressed=True,
            progress=progress,
        )
