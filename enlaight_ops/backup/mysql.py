"""MySQL/MariaDB: both application databases (backend, Superset) in one consistent, compressed dump.

The root password never leaves the container: each script reads it from the container's own environment.

Row counts take one pass: counted in a consistent snapshot before the dump, they are exact for the dump when the
server inserted and deleted no row meanwhile, which two reads of its own counters (Innodb_rows_inserted and
_deleted, cheap) before and after say. Only when writers did change rows is a second pass counted, and each table
gets the range the dump lies in, as before.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .manifest import SetError, merge_counts, part_file
from .streams import ComponentFailed, run_bytes
from .target import Progress, Target, dump_to_file, load_from_file, parse_counts

SERVICE = "mysql"
STEM = "mysql.sql"
FILE = STEM + ".zst"
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


# Rows the server has inserted or deleted since it started: unchanged across a dump means no count changed.
# MySQL counts InnoDB rows (Innodb_rows_*; its Handler_write also counts its own temporary tables); MariaDB 10.11
# has no Innodb_rows_* but counts temporary tables apart (Handler_tmp_*), so its Handler_write/_delete are rows of
# real tables. A transaction that has changed rows but not committed yet counts them at once and could commit
# between the count's snapshot and the dump's: while one is open, the counters prove nothing.
WRITES_SQL = """SHOW GLOBAL STATUS WHERE Variable_name IN
  ('Innodb_rows_inserted', 'Innodb_rows_deleted', 'Handler_write', 'Handler_delete');
SELECT '@open_writers', COUNT(*) FROM information_schema.innodb_trx WHERE trx_rows_modified > 0;
"""
_INNODB_COUNTERS = ("Innodb_rows_inserted", "Innodb_rows_deleted")
_HANDLER_COUNTERS = ("Handler_write", "Handler_delete")
_OPEN_WRITERS = "@open_writers"


def count_sql(databases: Sequence[str]) -> str:
    """One session: the server version, its write counters, then an exact COUNT(*) of every base table, all in one
    snapshot (the counters are read before it, so a write that slips in between changes them)."""
    names = ", ".join(sql_string(d) for d in databases)
    return f"""SET SESSION group_concat_max_len = 16777216;
SELECT '@version', VERSION();
{WRITES_SQL}
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


def writes_of(counts: dict[str, int]) -> int:
    """Rows inserted plus rows deleted; -1 (taken as "changed") when the server did not say or a transaction
    with uncommitted changes was open."""
    if counts.get(_OPEN_WRITERS, 1):
        return -1
    for counters in (_INNODB_COUNTERS, _HANDLER_COUNTERS):
        if all(k in counts for k in counters):
            return sum(counts[k] for k in counters)
    return -1


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

    def _query(self, target: Target, sql: str, what: str) -> tuple[str, dict[str, int]]:
        argv = target.exec_argv(SERVICE, CLIENT_SCRIPT, "--batch", "--skip-column-names")
        out = run_bytes(target.processes, argv, what, stdin=sql.encode())
        return parse_counts(out.decode("utf-8", "replace"), "\t")

    def _counts(self, target: Target, databases: Sequence[str]) -> tuple[str, int, dict[str, int]]:
        """The version, the write counter and the row counts of the tables."""
        version, counts = self._query(target, count_sql(databases), "mysql: counting rows")
        tables = {k: v for k, v in counts.items() if "." in k}  # schema.table; the counters have no dot
        return version, writes_of(counts), tables

    def _writes(self, target: Target) -> int:
        return writes_of(self._query(target, WRITES_SQL, "mysql: reading write counters")[1])

    def counts(self, target: Target) -> dict[str, int]:
        return self._counts(target, self.databases(target))[2]

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]:
        databases = self.databases(target)
        version, writes, before = self._counts(target, databases)
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
        quiet = writes >= 0 and self._writes(target) == writes
        # Writers changed rows while the dump ran: count again, and keep the range the dump lies in.
        after = before if quiet else self._counts(target, databases)[2]
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
            "count_passes": 1 if quiet else 2,
        }

    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None:
        wanted = self.databases(target)
        if list(part.get("databases", [])) != wanted:
            raise SetError(
                f"{set_dir / part_file(part, STEM)} holds MySQL databases {', '.join(part.get('databases', []))} "
                f"but this stack uses {', '.join(wanted)} (BACKEND_DB, SUPERSET_DB_NAME in .env): incompatible set"
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
            set_dir / part_file(part, STEM),
            "mysql: restore",
            compressed=True,
            progress=progress,
        )
