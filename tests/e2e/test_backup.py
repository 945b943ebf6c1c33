"""Backup and restore lose nothing: a real round trip on a real engine, and the faults that must not hurt.

One stack (backend, MySQL, PostgreSQL, Redis; the n8n and Superset volumes created as Compose would), tests in
file order: fill every component, back up, verify, destroy everything (`down -v`), start fresh, restore, compare;
then a flipped byte, a killed backup and a one-service restore.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from enlaight_ops.backup import SAFETY_DIR
from enlaight_ops.compose import Compose
from enlaight_ops.settings import load_settings

from .conftest import Stack, _make_stack

# For speed: backend and postgres (with MySQL and Redis under them) hold every database a set has; the volumes are
# made as Compose would. The whole stack, as a user starts it, is backed up and restored in test_journey.py.
STARTED = ["-s", "backend", "-s", "postgres"]
STATE_VOLUMES = ("n8n_data", "superset_home")
SET_NAME = re.compile(r"backup (\d{8}T\d{6}Z-[a-z]+(?:-\d+)?):")

MYSQL = 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --user=root --default-character-set=utf8mb4 --batch "$@"'
PSQL = 'exec psql -X -q -At -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
REDIS_SNAPSHOT = r"""
for db in 0 3; do
  for key in $(redis-cli -n $db --scan | sort); do
    type=$(redis-cli -n $db type "$key")
    case $type in
      string) value=$(redis-cli -n $db get "$key") ;;
      hash) value=$(redis-cli -n $db hgetall "$key" | paste -sd ' ') ;;
      list) value=$(redis-cli -n $db lrange "$key" 0 -1) ;;
      set) value=$(redis-cli -n $db smembers "$key" | sort) ;;
      zset) value=$(redis-cli -n $db zrange "$key" 0 -1 withscores) ;;
      *) value=$(redis-cli -n $db dump "$key") ;;
    esac
    echo "db$db $key $type $(printf '%s' "$value" | sha256sum | cut -c1-16)"
  done
done
"""
VOLUME_SNAPSHOT = "cd /volume && find . -type f -exec sha256sum {} + | sort && find . -printf '%p %m %U:%G\\n' | sort"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images_env) -> Iterator[Stack]:
    # No tools image set: the volume helpers must run in an image the stack already has, as for a user.
    stack = _make_stack(tmp_path_factory, local_images_env, "backup")
    try:
        yield stack
    finally:
        stack.teardown()


def compose(stack: Stack) -> Compose:
    return Compose(load_settings({"project": stack.project}, root=stack.root))


def run_in(stack: Stack, service: str, script: str, stdin: str = "", *args: str) -> str:
    argv = compose(stack).argv("exec", "-T", service, "sh", "-c", script, "sh", *args)
    result = subprocess.run(argv, input=stdin.encode(), capture_output=True, env=stack.env, timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8")


def volume_name(stack: Stack, key: str) -> str:
    return f"{stack.project}_{key}"


def in_volume(stack: Stack, key: str, script: str) -> str:
    image = compose(stack).config["services"]["postgres"]["image"]  # the test reads volumes as the toolkit does
    argv = ["docker", "run", "--rm", "-v", f"{volume_name(stack, key)}:/volume", image, "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def snapshot(stack: Stack) -> dict[str, str]:
    """Everything the stack holds, in comparable form: per-table checksums, Redis keys and values, file hashes."""
    tables = run_in(stack, "mysql", MYSQL, "", "--skip-column-names", "-e",
                    "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
                    "WHERE table_schema IN ('enlaight', 'superset') AND table_type = 'BASE TABLE'").split()  # fmt: skip
    checksums = run_in(stack, "mysql", MYSQL, "", "-e", f"CHECKSUM TABLE {', '.join(tables)} EXTENDED")
    rows = run_in(stack, "postgres", PSQL, "SELECT id, name, md5(payload::text) FROM workflows ORDER BY id;")
    state = {"mysql": checksums, "mysql_tables": " ".join(sorted(tables)), "postgres": rows}
    state["redis"] = run_in(stack, "redis", REDIS_SNAPSHOT)
    for key in STATE_VOLUMES:
        state[key] = in_volume(stack, key, VOLUME_SNAPSHOT)
    return state


def backup(stack: Stack, *args: str) -> str:
    result = stack.invoke("backup", *args)
    match = SET_NAME.search(result.stderr)
    assert match, result.stderr
    return match.group(1)


def sets_dir(stack: Stack) -> Path:
    return stack.root / "backups"


SEED_MYSQL = """
CREATE TABLE enlaight.e2e_notes (
  id INT PRIMARY KEY AUTO_INCREMENT, body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, payload LONGBLOB
);
INSERT INTO enlaight.e2e_notes (body, payload) VALUES
  ('emoji 😀🚀 and ünïcode, quotes '' " \\\\ and a tab\t', UNHEX('00FF0D0A275C1A22')),
  ('𝔘𝔫𝔦𝔠𝔬𝔡𝔢 beyond the BMP', RANDOM_BYTES(1024)),
  (NULL, '');
INSERT INTO enlaight.e2e_notes (body, payload) SELECT CONCAT(body, ' copy'), payload FROM enlaight.e2e_notes;
CREATE TABLE superset.e2e_dashboards (id INT PRIMARY KEY, title VARCHAR(200) CHARACTER SET utf8mb4);
INSERT INTO superset.e2e_dashboards VALUES (1, 'Vendas 📈'), (2, 'Custos');
CREATE TRIGGER enlaight.e2e_notes_bi BEFORE INSERT ON enlaight.e2e_notes FOR EACH ROW SET NEW.body = NEW.body;
CREATE FUNCTION enlaight.e2e_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
"""
SEED_POSTGRES = """
CREATE TABLE workflows (id serial PRIMARY KEY, name text, payload jsonb, secret bytea);
INSERT INTO workflows (name, payload, secret) VALUES
  ('wf ✨ one', '{"nodes": [1, 2, 3]}', '\\x00ff10'), ('wf two', '{"credentials": "encrypted"}', NULL);
"""
SEED_REDIS = r"""set -e
redis-cli set greeting 'olá 😀' >/dev/null
redis-cli hset session:1 user 42 token abc >/dev/null
redis-cli rpush queue a b c >/dev/null
redis-cli sadd tags x y z >/dev/null
redis-cli zadd scores 1 one 2.5 two >/dev/null
redis-cli -n 3 set other-db yes >/dev/null
"""
SEED_VOLUME = r"""set -e
mkdir -p /volume/.n8n/nested
printf '{"encryptionKey": "e2e-key"}' > /volume/config
head -c 300000 /dev/urandom > /volume/.n8n/nested/binary.bin
: > /volume/empty
chown -R 1000:1000 /volume && chmod 600 /volume/config
"""


def create_state_volume(stack: Stack, key: str) -> None:
    """As Compose creates it when n8n or Superset first starts (their images are not on every test host)."""
    subprocess.run(["docker", "volume", "create", "--label", f"com.docker.compose.project={stack.project}",
                    "--label", f"com.docker.compose.volume={key}", volume_name(stack, key)],
                   capture_output=True, check=True)  # fmt: skip
    in_volume(stack, key, SEED_VOLUME)


def test_round_trip_loses_nothing(stack: Stack):
    stack.invoke("env")
    stack.invoke("start", "--build", *STARTED)
    run_in(stack, "mysql", MYSQL, SEED_MYSQL)
    run_in(stack, "postgres", PSQL, SEED_POSTGRES)
    run_in(stack, "redis", SEED_REDIS)
    for key in STATE_VOLUMES:
        create_state_volume(stack, key)
    before = snapshot(stack)
    assert "e2e_notes" in before["mysql"] and "wf ✨ one" in before["postgres"] and "greeting" in before["redis"]

    name = backup(stack)
    set_dir = sets_dir(stack) / name
    files = sorted(p.name for p in set_dir.iterdir())
    assert files == ["SHA256SUMS", "manifest.json", "mysql.sql.zst", "postgres-globals.sql.zst", "postgres.dump.zst",
                     "redis.rdb.zst", "volume-n8n_data.tar.zst", "volume-superset_home.tar.zst"]  # fmt: skip
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=set_dir, capture_output=True).returncode == 0
    # A set holds password hashes and n8n's encryption key: the owner's alone.
    assert stat.S_IMODE(set_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in set_dir.iterdir()} == {0o600}
    listed = stack.invoke("backup.list")
    assert name[:12] in listed.stdout and "complete" in listed.stdout and "readable by other" not in listed.stderr
    (set_dir / "manifest.json").chmod(0o644)
    assert "readable by other users" in stack.invoke("backup.list").stderr
    (set_dir / "manifest.json").chmod(0o600)

    verified = stack.invoke("backup.verify", name)
    assert "verified" in verified.stderr
    assert "verified" in stack.invoke("backup.list").stdout

    stack.invoke("down", "--volumes", "--yes")
    for key in STATE_VOLUMES:
        assert subprocess.run(["docker", "volume", "inspect", volume_name(stack, key)], capture_output=True).returncode
    stack.invoke("start", *STARTED)
    assert "e2e_notes" not in snapshot_tables(stack)

    restored = stack.invoke("restore", name, "--yes")
    assert "every service is ready" in restored.stderr
    assert snapshot(stack) == before
    assert stack.ps()["backend"]["health"] == "healthy"


def snapshot_tables(stack: Stack) -> str:
    return run_in(stack, "mysql", MYSQL, "", "--skip-column-names", "-e", "SHOW TABLES FROM enlaight")


def latest_set(stack: Stack) -> Path:
    return max((p for p in sets_dir(stack).iterdir() if p.name[0].isdigit()), key=lambda p: p.name)


def test_one_flipped_byte_is_refused_naming_the_file(stack: Stack):
    good = latest_set(stack)
    broken = sets_dir(stack) / "20000101T000000Z-dev"
    shutil.copytree(good, broken)
    dump = broken / "mysql.sql.zst"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    before = snapshot(stack)

    result = stack.invoke("restore", broken.name, "--yes", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "mysql.sql.zst" in errors[0], result.stderr
    assert snapshot(stack) == before
    shutil.rmtree(broken)


def test_a_backup_killed_mid_dump_leaves_no_complete_set(stack: Stack):
    # ~64 MB of incompressible rows: the dump takes long enough to be caught in the middle.
    run_in(stack, "mysql", MYSQL, "CREATE TABLE enlaight.e2e_big (id INT PRIMARY KEY AUTO_INCREMENT, b BLOB);"
           "INSERT INTO enlaight.e2e_big (b) VALUES (RANDOM_BYTES(1024));"
           + "INSERT INTO enlaight.e2e_big (b) SELECT RANDOM_BYTES(1024) FROM enlaight.e2e_big;" * 16)  # fmt: skip
    complete_before = {p.name for p in sets_dir(stack).iterdir()}
    try:
        for how in (signal.SIGKILL, signal.SIGINT):
            process = subprocess.Popen([sys.executable, "-m", "invoke", "backup", "-s", "mysql"], cwd=stack.root,
                                       env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            partial = wait_for_partial_dump(stack, process, ignore=complete_before)
            process.send_signal(how)
            _, stderr = process.communicate(timeout=120)
            assert process.returncode != 0, stderr
            new = {p.name for p in sets_dir(stack).iterdir()} - complete_before
            assert not [n for n in new if not n.startswith(".")], f"a set appeared after {how.name}: {new}"
            if how is signal.SIGKILL:
                # No cleanup can run: the leftover is hidden, has no SHA256SUMS, is listed as partial, is refused.
                assert new == {partial.name} and not (partial / "SHA256SUMS").exists()
                assert "PARTIAL" in stack.invoke("backup.list").stdout
                complete_before.add(partial.name)  # the next backup removes it (its process is gone)
                refused = stack.invoke("restore", str(partial), "--yes", check=False)
                assert refused.returncode != 0 and "partial" in refused.stderr
            else:
                assert not partial.exists(), "Ctrl-C must remove the partial set"
                assert "interrupted" in stderr.decode()
    finally:
        run_in(stack, "mysql", MYSQL, "DROP TABLE IF EXISTS enlaight.e2e_big;")
    # The next backup clears what the killed one left behind.
    name = backup(stack, "-s", "redis")
    assert not [p for p in sets_dir(stack).iterdir() if p.name.startswith(".")]
    shutil.rmtree(sets_dir(stack) / name)


def wait_for_partial_dump(stack: Stack, process: subprocess.Popen, ignore: set[str], timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        for partial in sets_dir(stack).glob(".*.partial"):
            if partial.name in ignore:
                continue
            dump = partial / "mysql.sql.zst"
            if dump.exists() and dump.stat().st_size > 1_000_000:
                return partial
        time.sleep(0.01)
    raise AssertionError("the backup never started writing its dump")


def test_restoring_one_service_leaves_the_others_untouched(stack: Stack):
    name = latest_set(stack).name
    run_in(stack, "mysql", MYSQL, "INSERT INTO superset.e2e_dashboards VALUES (3, 'after the backup');")
    run_in(stack, "redis", "redis-cli set after-backup 1 >/dev/null && redis-cli del queue >/dev/null")
    in_volume(stack, "n8n_data", "echo changed > /volume/after-backup")
    mysql_before = snapshot(stack)["mysql"]

    stack.invoke("restore", name, "-s", "redis", "--yes")
    state = snapshot(stack)
    assert "after-backup" not in state["redis"] and "queue" in state["redis"]
    assert state["mysql"] == mysql_before
    assert "after-backup" in state["n8n_data"]


def test_a_set_from_the_unknown_is_one_clear_line(stack: Stack):
    result = stack.invoke("restore", "20000101T000000Z-nope", "--yes", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "backup.list" in errors[0]
    before = snapshot(stack)
    outside = stack.invoke("restore", "../" * 12 + "etc", "--yes", check=False)  # /etc, from the project
    errors = [line for line in outside.stderr.splitlines() if "error" in line]
    assert outside.returncode != 0 and len(errors) == 1 and "not inside the backup directory" in errors[0]
    assert snapshot(stack) == before


def test_keep_removes_old_sets_but_never_the_newest_verified(stack: Stack):
    verified = [p.name for p in sets_dir(stack).iterdir() if (p / "verified.json").exists()]
    assert verified
    names = [backup(stack, "-s", "redis") for _ in range(2)]
    backup(stack, "-s", "redis", "--keep", "1")
    left = sorted(p.name for p in sets_dir(stack).iterdir() if p.name != SAFETY_DIR)
    assert set(verified) <= set(left) and names[0] not in left and len(left) == 2, left
    assert any((sets_dir(stack) / SAFETY_DIR).iterdir()), "retention never counts or removes safety sets"


def test_a_restore_that_fails_puts_every_component_back_by_itself(stack: Stack):
    """A set whose MySQL dump fails at its very end (after the databases were replaced): the restore rolls every
    component back from its safety set, and every table, key and file equals the state before the restore."""
    full_sets = [
        p for p in sets_dir(stack).iterdir() if (p / "mysql.sql.zst").is_file() and (p / "SHA256SUMS").is_file()
    ]
    source = max(full_sets, key=lambda p: p.name)
    broken = sets_dir(stack) / "20991231T235959Z-dev"
    shutil.copytree(source, broken)
    try:
        dump = broken / "mysql.sql.zst"
        plain = zstandard.ZstdDecompressor().decompressobj().decompress(dump.read_bytes())
        dump.write_bytes(zstandard.ZstdCompressor().compress(plain + b"\nTHIS IS NOT SQL;\n"))
        sums = (broken / "SHA256SUMS").read_text()
        digest = hashlib.sha256(dump.read_bytes()).hexdigest()
        sums = re.sub(r"^[0-9a-f]{64}(  mysql\.sql\.zst)$", digest + r"\1", sums, flags=re.M)
        (broken / "SHA256SUMS").write_text(sums)
        run_in(stack, "mysql", MYSQL, "INSERT INTO superset.e2e_dashboards VALUES (4, 'only after the backup');")
        run_in(stack, "redis", "redis-cli set only-after-backup 1 >/dev/null")
        before = snapshot(stack)

        result = stack.invoke("restore", broken.name, "--yes", check=False)
        assert result.returncode != 0, result.stderr
        assert "safety set" in result.stderr and "put back as it was" in result.stderr, result.stderr
        assert snapshot(stack) == before
    finally:
        shutil.rmtree(broken, ignore_errors=True)
