"""Set formats on a real engine: a format 1 (gzip) set taken before zstd still restores and verifies, and a volume
written to while it is archived is archived whole.

One stack of MySQL, PostgreSQL and Redis (the services whose dumps have a format; the volumes are read by throwaway
containers and need no service) plus the n8n volume created as Compose would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard

from enlaight_ops.backup import manifest as m
from enlaight_ops.backup.postgres import DUMP_SCRIPT
from enlaight_ops.backup.sets import private_files
from enlaight_ops.backup.streams import open_content, pump_to_file
from enlaight_ops.backup.volume import ATTEMPTS

from .conftest import ROOT, Stack, _make_stack
from .test_backup import compose, run_in

STARTED = ["-s", "mysql", "-s", "postgres", "-s", "redis"]
VOLUME = "n8n_data"
MYSQL = 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --user=root --default-character-set=utf8mb4 --batch "$@"'
PSQL = 'exec psql -X -q -At -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
SEED_MYSQL = """
CREATE TABLE enlaight.format_notes (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT CHARACTER SET utf8mb4, payload BLOB);
INSERT INTO enlaight.format_notes (body, payload) VALUES ('emoji 😀 and quotes '' "', UNHEX('00FF0D0A5C')),
  ('plain', RANDOM_BYTES(512)), (NULL, '');
INSERT INTO enlaight.format_notes (body, payload) SELECT CONCAT(body, ' copy'), payload FROM enlaight.format_notes;
CREATE TABLE superset.format_charts (id INT PRIMARY KEY, title VARCHAR(100) CHARACTER SET utf8mb4);
INSERT INTO superset.format_charts VALUES (1, 'Vendas 📈'), (2, 'Custos');
"""
SEED_POSTGRES = """
CREATE TABLE workflows (id serial PRIMARY KEY, name text, payload jsonb);
INSERT INTO workflows (name, payload) VALUES ('wf ✨ one', '{"nodes": [1, 2]}'), ('wf two', '{}');
"""
SEED_REDIS = "redis-cli set greeting 'olá 😀' >/dev/null && redis-cli rpush queue a b c >/dev/null"
SEED_VOLUME = r"""set -e
printf '{"encryptionKey": "formats-key"}' > /volume/config
mkdir -p /volume/binaryData && head -c 200000 /dev/urandom > /volume/binaryData/blob
chown -R 1000:1000 /volume && chmod 600 /volume/config
"""
# pg_dump as format 1 sets ran it: custom format with its own (zlib) compression.
OLD_PG_DUMP = DUMP_SCRIPT.replace(" --compress=0", "")
VOLUME_SNAPSHOT = "cd /volume && find . -type f -exec sha256sum {} + | sort && find . -printf '%p %m %U:%G\\n' | sort"
# Appends 4 KiB blocks all the time: tar sees the file change under it on every pass it makes while this runs.
WRITER = (
    "head -c 20000000 /dev/zero > /volume/events.log; "
    "while :; do head -c 4096 /dev/zero >> /volume/events.log; sleep 0.001; done"
)


@pytest.fixture(scope="module")
def images_env(tmp_path_factory) -> Path | None:
    """Only the database images (built once, reused by tag): this module starts no other service, and the shared
    fixture would also build n8n, which nothing here runs."""
    if os.environ.get("ENLAIGHT_E2E_IMAGES", "local") == "official":
        return None
    env_file = tmp_path_factory.mktemp("images") / "local-images.env"
    services = [f"--service={name}" for name in ("mysql", "postgres", "redis")]
    argv = [sys.executable, "-m", "invoke", "images.local", "--trust-host-ca", "--env-file", str(env_file), *services]
    subprocess.run(argv, cwd=ROOT, check=True)
    return env_file


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images_env) -> Iterator[Stack]:
    stack = _make_stack(tmp_path_factory, images_env, "formats")
    try:
        stack.invoke("env")
        stack.invoke("start", *STARTED)
        yield stack
    finally:
        stack.teardown()


def tools_image(stack: Stack) -> str:
    return compose(stack).config["services"]["postgres"]["image"]  # the image the toolkit reads volumes with


def in_volume(stack: Stack, script: str) -> str:
    argv = ["docker", "run", "--rm", "-v", f"{stack.project}_{VOLUME}:/volume", tools_image(stack), "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def snapshot(stack: Stack) -> dict[str, str]:
    tables = "enlaight.format_notes, superset.format_charts"
    return {
        "mysql": run_in(stack, "mysql", MYSQL, "", "-e", f"CHECKSUM TABLE {tables} EXTENDED"),
        "postgres": run_in(stack, "postgres", PSQL, "SELECT id, name, md5(payload::text) FROM workflows ORDER BY id;"),
        "redis": run_in(stack, "redis", "redis-cli get greeting; redis-cli lrange queue 0 -1"),
        VOLUME: in_volume(stack, VOLUME_SNAPSHOT),
    }


def backup(stack: Stack, *args: str) -> Path:
    stack.invoke("backup", *args)
    return max((p for p in (stack.root / "backups").iterdir() if m.parse_set_name(p.name)), key=lambda p: p.name)


def as_format_1(stack: Stack, new: Path) -> Path:
    """The set a toolkit before zstd wrote of the same data: gzip level 1 files (`.gz`, written by the gzip path the
    pump keeps), pg_dump's own compressed custom format in `postgres.dump`, manifest format 1."""
    when = m.parse_set_name(new.name) - timedelta(hours=1)
    old = new.parent / m.set_name(when, "dev")
    with private_files():  # as the toolkit writes every set
        _convert(stack, new, old)
    return old


def _convert(stack: Stack, new: Path, old: Path) -> None:
    old.mkdir()
    manifest = json.loads((new / m.MANIFEST).read_text())
    for part in manifest["components"].values():
        files = []
        for name in part["files"]:
            if name == "postgres.dump.zst":
                with (old / "postgres.dump").open("wb") as out:
                    argv = compose(stack).argv("exec", "-T", "postgres", "sh", "-c", OLD_PG_DUMP)
                    subprocess.run(argv, stdout=out, env=stack.env, check=True)
                files.append("postgres.dump")
            else:
                gz = name.removesuffix(".zst") + ".gz"
                with open_content(new / name) as content:
                    pump_to_file(content, old / gz, compress=True)
                files.append(gz)
        part["files"] = files
    manifest["format"] = 1
    m.write_json(old / m.MANIFEST, manifest)
    digests = {name: m.file_sha256(old / name) for name in os.listdir(old)}
    (old / m.CHECKSUMS).write_text(m.format_checksums(digests))


def test_a_format_1_gzip_set_still_restores_and_verifies(stack: Stack):
    run_in(stack, "mysql", MYSQL, SEED_MYSQL)
    run_in(stack, "postgres", PSQL, SEED_POSTGRES)
    run_in(stack, "redis", SEED_REDIS)
    subprocess.run(["docker", "volume", "create", "--label", f"com.docker.compose.project={stack.project}",
                    "--label", f"com.docker.compose.volume={VOLUME}", f"{stack.project}_{VOLUME}"],
                   capture_output=True, check=True)  # fmt: skip
    in_volume(stack, SEED_VOLUME)
    before = snapshot(stack)

    new = backup(stack, *STARTED, "-s", VOLUME)
    names = sorted(p.name for p in new.iterdir())
    assert names == ["SHA256SUMS", "manifest.json", "mysql.sql.zst", "postgres-globals.sql.zst", "postgres.dump.zst",
                     "redis.rdb.zst", "volume-n8n_data.tar.zst"]  # fmt: skip
    manifest = json.loads((new / m.MANIFEST).read_text())
    assert manifest["format"] == 2
    assert manifest["components"]["mysql"]["count_passes"] == 1  # nothing wrote while it ran: one count pass
    assert manifest["components"][VOLUME]["passes"] == 1 and manifest["components"][VOLUME]["paused"] == []
    old = as_format_1(stack, new)
    assert subprocess.run(["sha256sum", "--quiet", "-c", m.CHECKSUMS], cwd=old, check=False).returncode == 0

    # Change everything, then put the old set back.
    run_in(stack, "mysql", MYSQL, "DELETE FROM enlaight.format_notes WHERE id > 2; DROP TABLE superset.format_charts;")
    run_in(stack, "postgres", PSQL, "DELETE FROM workflows; INSERT INTO workflows (name) VALUES ('intruder');")
    run_in(stack, "redis", "redis-cli flushall >/dev/null")
    in_volume(stack, "rm -r /volume/binaryData && echo changed > /volume/config")
    assert snapshot(stack) != before

    stack.env["COLUMNS"] = "200"  # the table's full width, names unabridged
    listed = stack.invoke("backup.list")
    rows = [line for line in listed.stdout.splitlines() if old.name in line or new.name in line]
    assert len(rows) == 2 and all("complete" in row for row in rows), listed.stdout
    assert "readable by other users" not in listed.stderr
    stack.invoke("restore", old.name, "--yes", "--no-safety-set")
    assert snapshot(stack) == before

    stack.invoke("backup.verify", old.name)  # checksums, then a restore drill compared with the old manifest
    assert (old / m.VERIFIED).is_file()


def test_a_volume_written_to_while_archived_is_archived_whole(stack: Stack):
    writer = f"{stack.project}-writer"
    subprocess.run(["docker", "run", "-d", "--name", writer, "-v", f"{stack.project}_{VOLUME}:/volume",
                    tools_image(stack), "sh", "-c", WRITER], capture_output=True, check=True)  # fmt: skip
    try:
        set_dir = backup(stack, "-s", VOLUME)
        part = json.loads((set_dir / m.MANIFEST).read_text())["components"][VOLUME]
        # Every read-only pass saw the log grow; the last one froze the writer and saw no change.
        assert part["passes"] == ATTEMPTS + 1 and part["paused"] == [writer]
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", writer], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
        assert state == "running"  # resumed after the pass

        content = zstandard.ZstdDecompressor().stream_reader(io.BytesIO((set_dir / part["files"][0]).read_bytes()))
        with tarfile.open(fileobj=content, mode="r|") as tar:
            sizes = {member.name: member.size for member in tar if member.isfile()}
        # Whole appends only: a frozen writer never leaves half a block in the archive.
        assert sizes["./events.log"] >= 20000000 and sizes["./events.log"] % 4096 == 20000000 % 4096
        assert part["row_counts"]["files"] == len(sizes)
    finally:
        subprocess.run(["docker", "rm", "-f", writer], capture_output=True, check=False)
