"""PostgreSQL: the n8n database in custom format plus roles and other globals.

pg_dump writes custom format uncompressed (-Z0) and the pump compresses it with zstd: pg_dump 15's own zlib
is several times slower. pg_restore reads the custom format from its stdin either way (format 1 sets hold the
zlib-compressed dump as is, in ``postgres.dump``).

Globals are dumped without role passwords: the target stack's .env owns its passwords, so a restore never
locks n8n out of its own database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .manifest import SetError, merge_counts, part_file
from .streams import codec_of, run_bytes
from .target import Progress, Target, dump_to_file, load_from_file, parse_counts

SERVICE = "postgres"
STEM = "postgres.dump"
FILE = STEM + ".zst"
GLOBALS_STEM = "postgres-globals.sql"
GLOBALS_FILE = GLOBALS_STEM + ".zst"

_AUTH = 'export PGPASSWORD="$POSTGRES_PASSWORD" PGUSER="$POSTGRES_USER"; '
DUMP_SCRIPT = _AUTH + 'exec pg_dump --format=custom --compress=0 --dbname="$POSTGRES_DB"'
GLOBALS_SCRIPT = _AUTH + "exec pg_dumpall --globals-only --no-role-passwords"
PSQL_SCRIPT = _AUTH + 'exec psql -X --quiet --no-align --tuples-only --dbname="$POSTGRES_DB" "$@"'
# Connected to template1, so the application database can be dropped; names travel as psql variables.
RECREATE_SCRIPT = (
    _AUTH + 'exec psql -X --quiet -v ON_ERROR_STOP=1 -v db="$POSTGRES_DB" -v owner="$POSTGRES_USER" --dbname=template1'
)
RECREATE_SQL = b"""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname = :'db' AND pid <> pg_backend_pid();
DROP DATABASE IF EXISTS :"db";
CREATE DATABASE :"db" OWNER :"owner";
"""
GLOBALS_RESTORE_SCRIPT = _AUTH + "exec psql -X --quiet --dbname=template1"
RESTORE_SCRIPT = _AUTH + 'exec pg_restore --exit-on-error --no-owner --dbname="$POSTGRES_DB"'

COUNT_SQL = b"""SELECT '@version|' || current_setting('server_version');
SELECT format('%s.%s|%s', table_schema, table_name,
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name),
                                            false, true, '')))[1]::text)
  FROM information_schema.tables
 WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
 ORDER BY table_schema, table_name;
"""


def major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


class Postgres:
    name = SERVICE
    service = SERVICE
    needs_server = True

    def _counts(self, target: Target) -> tuple[str, dict[str, int]]:
        # One transaction: every count sees the same snapshot.
        sql = b"BEGIN ISOLATION LEVEL REPEATABLE READ;\n" + COUNT_SQL + b"COMMIT;\n"
        out = run_bytes(target.processes, target.exec_argv(SERVICE, PSQL_SCRIPT), "postgres: counting rows", stdin=sql)
        return parse_counts(out.decode("utf-8", "replace"), "|")

    def counts(self, target: Target) -> dict[str, int]:
        return self._counts(target)[1]

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]:
        version, before = self._counts(target)
        started = time.monotonic()
        globals_written = dump_to_file(
            target,
            target.exec_argv(SERVICE, GLOBALS_SCRIPT),
            set_dir / GLOBALS_FILE,
            "postgres: pg_dumpall --globals-only",
            compress=True,
            progress=lambda r, w: None,
        )
        written = dump_to_file(
            target,
            target.exec_argv(SERVICE, DUMP_SCRIPT),
            set_dir / FILE,
            "postgres: pg_dump",
            compress=True,
            progress=progress,
        )
        dump_seconds = time.monotonic() - started
        _, after = self._counts(target)
        return {
            "kind": "postgres",
            "service": SERVICE,
            "files": [FILE, GLOBALS_FILE],
            "server_version": version,
            "database": target.service_env(SERVICE, "POSTGRES_DB"),
            "checksums": {FILE: written.sha256, GLOBALS_FILE: globals_written.sha256},
            "bytes": written.bytes + globals_written.bytes,
            "raw_bytes": written.raw_bytes + globals_written.raw_bytes,
            "dump_seconds": round(dump_seconds, 3),
            "row_counts": merge_counts(before, after),
        }

    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None:
        out = run_bytes(
            target.processes,
            target.exec_argv(SERVICE, PSQL_SCRIPT),
            "postgres: version",
            stdin=b"SHOW server_version;\n",
        ).decode()
        theirs, ours = major(str(part.get("server_version", ""))), major(out.strip())
        if theirs > ours:
            raise SetError(
                f"{set_dir / part_file(part, STEM)} comes from PostgreSQL {theirs}, this stack runs {ours}: "
                "incompatible set (restore it on the same or a newer PostgreSQL)"
            )

    def describe(self, part: Mapping[str, Any]) -> str:
        return f"PostgreSQL database {part.get('database', '?')} is dropped and replaced; roles are added if missing"

    def restore(self, target: Target, set_dir: Path, part: Mapping[str, Any], progress: Progress) -> None:
        # Roles first (errors such as "role already exists" are expected and harmless), then a fresh database:
        # terminating its sessions closes every open connection before the drop.
        load_from_file(
            target,
            target.exec_argv(SERVICE, GLOBALS_RESTORE_SCRIPT),
            set_dir / part_file(part, GLOBALS_STEM),
            "postgres: restoring roles",
            compressed=True,
            progress=lambda r, w: None,
        )
        run_bytes(
            target.processes,
            target.exec_argv(SERVICE, RECREATE_SCRIPT),
            "postgres: recreating the database",
            stdin=RECREATE_SQL,
        )
        dump = set_dir / part_file(part, STEM)
        load_from_file(
            target,
            target.exec_argv(SERVICE, RESTORE_SCRIPT),
            dump,
            "postgres: pg_restore",
            compressed=codec_of(dump) is not None,
            progress=progress,
        )
