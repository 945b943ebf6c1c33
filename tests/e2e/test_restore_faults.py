"""A restore that is interrupted, killed or short of disk never leaves the stack worse than before (issue 13).

One stack: backend (a writer the restore stops and starts again) with MySQL and Redis under it, PostgreSQL, and the
n8n and Superset volumes made as Compose would: every component kind a restore touches, without n8n and Superset
themselves (their images are minutes to start and hold nothing the volumes and PostgreSQL do not).

Two states: A, with a big MySQL table (so loading it takes several seconds and a fault can land in the middle),
and B, A changed in every component (rows, keys, files) with the big table dropped. Each fault test starts from B,
restores A, injects the fault while MySQL loads, and compares every table, key and file with B by checksum; the
bytes that differ are the bytes lost (the closing note's table is printed by `-s`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Stack, _make_stack
from .test_backup import (
    MYSQL,
    PSQL,
    SEED_MYSQL,
    SEED_POSTGRES,
    SEED_REDIS,
    STATE_VOLUMES,
    compose,
    create_state_volume,
    in_volume,
    run_in,
    sets_dir,
)

# Narrowed for speed (see the module docstring): backend brings MySQL and Redis; n8n and Superset stay off.
STARTED = ["-s", "backend", "-s", "postgres"]
SET_NAME = re.compile(r"backup (\d{8}T\d{6}Z-[a-z]+(?:-\d+)?):")
SAFETY_NAMED = re.compile(r"safety set \S*?(\d{8}T\d{6}Z-[a-z]+(?:-\d+)?)\b")
# 2^16 rows of 1 KiB random bytes: ~128 MB of hex in the dump, several seconds to load on 2 shared cores.
BIG_TABLE = (
    "CREATE TABLE enlaight.e2e_big (id INT PRIMARY KEY AUTO_INCREMENT, b BLOB);"
    "INSERT INTO enlaight.e2e_big (b) VALUES (RANDOM_BYTES(1024));"
    + "INSERT INTO enlaight.e2e_big (b) SELECT RANDOM_BYTES(1024) FROM enlaight.e2e_big;"
    * 16
)
CHANGE_MYSQL = """
DROP TABLE enlaight.e2e_big;
INSERT INTO enlaight.e2e_notes (body, payload) VALUES ('only in B', RANDOM_BYTES(4096));
UPDATE superset.e2e_dashboards SET title = 'changed in B' WHERE id = 2;
CREATE TABLE superset.e2e_only_b (id INT PRIMARY KEY);
INSERT INTO superset.e2e_only_b VALUES (1), (2);
"""
CHANGE_POSTGRES = "INSERT INTO workflows (name, payload) VALUES ('only in B', '{}'); DELETE FROM workflows WHERE id = 1"
CHANGE_REDIS = "redis-cli set only-in-b 1 >/dev/null && redis-cli del queue >/dev/null && redis-cli set greeting B"
CHANGE_VOLUME = "head -c 100000 /dev/urandom > /volume/only-in-b && echo B > /volume/config"
# Waits inside the MySQL container until a session is inserting into the big table: the load is in its middle.
LOADING_BIG_TABLE = "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'INSERT INTO `e2e_big`%'"
WAIT_FOR_LOAD = """
for i in $(seq 1 2400); do
  n=$(MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --user=root --batch --skip-column-names -e "$1")
  [ "${n:-0}" -gt 0 ] && exit 0
  sleep 0.05
done
echo "MySQL never loaded the big table" >&2; exit 1
"""

# -- what the stack holds: item -> (digest, bytes) ------------------------------------------------------------------
MYSQL_TABLES = (
    "SELECT CONCAT(table_schema, '.', table_name), data_length + index_length FROM information_schema.tables "
    "WHERE table_schema IN ('enlaight', 'superset') AND table_type = 'BASE TABLE' ORDER BY 1"
)
MYSQL_SCHEMA = (
    "SELECT CONCAT(routine_schema, '.', routine_name, ' ', MD5(routine_definition)) FROM information_schema.routines "
    "WHERE routine_schema IN ('enlaight', 'superset') UNION ALL "
    "SELECT CONCAT(trigger_schema, '.', trigger_name, ' ', MD5(action_statement)) FROM information_schema.triggers "
    "WHERE trigger_schema IN ('enlaight', 'superset') ORDER BY 1"
)
PG_TABLES = (
    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;"
)
REDIS_ITEMS = r"""
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
    echo "db$db:$key $type:$(printf '%s' "$value" | sha256sum | cut -c1-16) $(printf '%s' "$value" | wc -c)"
  done
done
"""
VOLUME_FILES = "cd /volume && find . -type f -exec sha256sum {} + && find . -type f -printf '%s %p\\n'"
VOLUME_TREE = "cd /volume && find . -printf '%p %m %U:%G\\n' | sort | sha256sum"

State = dict[str, tuple[str, int]]


def state_of(stack: Stack) -> State:
    """Every table (CHECKSUM TABLE EXTENDED), routine and trigger of both MySQL databases, every PostgreSQL table
    (a digest of its rows), every Redis key (type and value), every file of the state volumes (hash, modes, owners)."""
    state = mysql_state(stack)
    for table in run_in(stack, "postgres", PSQL, PG_TABLES).split():
        rows = "md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')), coalesce(sum(length(t::text)), 0)"
        sql = f"SELECT {rows} FROM {table} t;"  # noqa: S608 (names come from pg_tables)
        digest, size = run_in(stack, "postgres", PSQL, sql).strip().split("|")
        state[f"postgres {table}"] = (digest, int(size))
    for line in run_in(stack, "redis", REDIS_ITEMS).splitlines():
        key, digest, size = line.rsplit(" ", 2)
        state[f"redis {key}"] = (digest, int(size))
    for volume in STATE_VOLUMES:
        hashes, sizes = {}, {}
        for line in in_volume(stack, volume, VOLUME_FILES).splitlines():
            first, path = line.split(" ", 1)
            if len(first) == 64:
                hashes[path.lstrip(" *")] = first
            else:
                sizes[path] = int(first)
        for path, digest in hashes.items():
            state[f"{volume} {path}"] = (digest, sizes[path])
        state[f"{volume} modes+owners"] = (in_volume(stack, volume, VOLUME_TREE), 0)
    return state


def mysql_state(stack: Stack) -> State:
    state: State = {}
    sizes = {}
    for line in run_in(stack, "mysql", MYSQL, "", "--skip-column-names", "-e", MYSQL_TABLES).splitlines():
        table, size = line.split("\t")
        sizes[table] = int(size)
    if sizes:
        checked = run_in(stack, "mysql", MYSQL, "", "--skip-column-names", "-e",
                         f"CHECKSUM TABLE {', '.join(sizes)} EXTENDED")  # fmt: skip
        for line in checked.splitlines():
            table, checksum = line.split("\t")
            state[f"mysql {table}"] = (checksum, sizes[table])
    schema = run_in(stack, "mysql", MYSQL, "", "--skip-column-names", "-e", MYSQL_SCHEMA)
    state["mysql routines+triggers"] = (schema, len(schema))
    return state


def digests(state: State) -> dict[str, str]:
    """What must be equal: the contents (a table's size on disk may differ after a reload of the same rows)."""
    return {item: digest for item, (digest, _) in state.items()}


def bytes_lost(before: State, after: State) -> int:
    """The bytes of every item of `before` that `after` lacks or holds differently."""
    return sum(size for item, (digest, size) in before.items() if after.get(item, ("", 0))[0] != digest)


def differences(before: State, after: State) -> list[str]:
    return sorted(i for i in set(before) | set(after) if before.get(i, ("",))[0] != after.get(i, ("",))[0])


@dataclass
class Outcome:
    fault: str
    outcome: str
    lost: int


OUTCOMES: list[Outcome] = []


@pytest.fixture(scope="module", autouse=True)
def closing_note() -> Iterator[None]:
    yield
    if OUTCOMES:
        rows = "\n".join(f"| {o.fault} | {o.outcome} | {o.lost} |" for o in OUTCOMES)
        print(f"\n| fault injected | outcome | data lost (bytes) |\n| --- | --- | --- |\n{rows}", file=sys.stderr)


# -- the stack and its two states -----------------------------------------------------------------------------------
@dataclass
class States:
    stack: Stack
    set_a: str  # the set every fault test restores: holds the big table
    set_b: str  # the state every fault test starts from, as a set to go back to
    a: State
    b: State

    def at_b(self) -> State:
        """Bring the stack to B (a test before may have left A) and return its state."""
        now = state_of(self.stack)
        if digests(now) != digests(self.b):
            self.stack.invoke("restore", self.set_b, "--yes", "--no-safety-set")
            now = state_of(self.stack)
        assert digests(now) == digests(self.b), differences(self.b, now)
        return now


def backup(stack: Stack, *args: str) -> str:
    result = stack.invoke("backup", *args)
    match = SET_NAME.search(result.stderr)
    assert match, result.stderr
    return match.group(1)


@pytest.fixture(scope="module")
def states(tmp_path_factory, local_images_env) -> Iterator[States]:
    stack = _make_stack(tmp_path_factory, local_images_env, "faults")
    try:
        stack.invoke("env")
        stack.invoke("start", "--build", *STARTED)
        run_in(stack, "mysql", MYSQL, SEED_MYSQL + BIG_TABLE)
        run_in(stack, "postgres", PSQL, SEED_POSTGRES)
        run_in(stack, "redis", SEED_REDIS)
        for key in STATE_VOLUMES:
            create_state_volume(stack, key)
        a = state_of(stack)
        set_a = backup(stack)
        run_in(stack, "mysql", MYSQL, CHANGE_MYSQL)
        run_in(stack, "postgres", PSQL, CHANGE_POSTGRES)
        run_in(stack, "redis", CHANGE_REDIS)
        in_volume(stack, "n8n_data", CHANGE_VOLUME)
        b = state_of(stack)
        set_b = backup(stack)
        changed = {item.split()[0] for item in differences(a, b)}
        assert {"mysql", "postgres", "redis", "n8n_data"} <= changed, changed
        yield States(stack, set_a, set_b, a, b)
    finally:
        stack.teardown()


def start_restore(stack: Stack, *args: str) -> subprocess.Popen:
    """`invoke restore` in a process group of its own, as a shell runs a foreground job."""
    return subprocess.Popen([sys.executable, "-m", "invoke", "restore", *args], cwd=stack.root, env=stack.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


def wait_until_loading(stack: Stack, process: subprocess.Popen) -> None:
    """Returns while MySQL is inserting into the big table (seen in its processlist, polled inside the container)."""
    argv = compose(stack).argv("exec", "-T", "mysql", "sh", "-c", WAIT_FOR_LOAD, "sh", LOADING_BIG_TABLE)
    waiter = subprocess.Popen(argv, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while waiter.poll() is None:
        if process.poll() is not None:
            waiter.kill()
            raise AssertionError(f"the restore ended before MySQL loaded: {process.communicate()[1]}")
        time.sleep(0.02)
    assert waiter.returncode == 0, waiter.communicate()[1]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- 1. Ctrl-C --------------------------------------------------------------------------------------------------
def test_ctrl_c_in_the_middle_of_the_mysql_load_puts_everything_back(states: States):
    stack = states.stack
    before = states.at_b()
    process = start_restore(stack, states.set_a, "--yes")
    wait_until_loading(stack, process)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends the foreground job on Ctrl-C
    _, stderr = process.communicate(timeout=600)
    print(stderr)  # shown with -rP: what a person sees

    after = state_of(stack)
    OUTCOMES.append(Outcome("Ctrl-C (SIGINT to the process group) in the middle of the MySQL load",
                            f"exit {process.returncode}, rolled back from the safety set",
                            bytes_lost(before, after)))  # fmt: skip
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and "interrupted" in errors[0] and "safety set" in errors[0], stderr
    assert digests(after) == digests(before), differences(before, after)
    assert stack.ps()["backend"]["health"] == "healthy", "the writers run again after the roll back"


# -- 2. kill -9 -------------------------------------------------------------------------------------------------
def test_kill_9_in_the_middle_of_the_mysql_load_leaves_a_complete_safety_set(states: States):
    stack = states.stack
    before = states.at_b()
    process = start_restore(stack, states.set_a, "--yes")
    wait_until_loading(stack, process)
    process.kill()  # SIGKILL to the restore itself: no handler, no clean-up runs
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    # The safety set was named before the first destructive step (stopping the writers), and is complete on disk.
    named = SAFETY_NAMED.search(stderr)
    assert named, stderr
    assert stderr.index(named.group(0)) < stderr.index("stopping"), stderr
    safety = f"pre-restore/{named.group(1)}"
    assert (sets_dir(stack) / safety / "SHA256SUMS").is_file()
    # Half-loaded (and Redis or the backend may be left stopped): MySQL alone shows the damage.
    damaged = mysql_state(stack)
    mysql_before = {item: value for item, value in before.items() if item.startswith("mysql")}
    assert digests(damaged) != digests(mysql_before), "the kill landed after the load: nothing to prove"
    stack.invoke("backup.verify", safety)

    # The next restore says a restore was killed, names its safety set, and starts what that one had stopped.
    restored = stack.invoke("restore", safety, "--yes")
    print(stderr, restored.stderr)  # shown with -rP: what a person sees
    assert named.group(1) in restored.stderr and "killed" in restored.stderr, restored.stderr
    after = state_of(stack)
    damage = (f"MySQL half-loaded ({len(differences(mysql_before, damaged))} tables, "
              f"{bytes_lost(mysql_before, damaged)} bytes differ until the safety set is restored)")  # fmt: skip
    OUTCOMES.append(Outcome("kill -9 of the restore in the middle of the MySQL load",
                            f"{damage}; safety set complete, verified, restored: the state before",
                            bytes_lost(before, after)))  # fmt: skip
    assert digests(after) == digests(before), differences(before, after)
    assert stack.ps()["backend"]["health"] == "healthy", "the writers the killed restore stopped run again"

    again = stack.invoke("restore", states.set_a, "--yes")
    assert "every service is ready" in again.stderr
    now = state_of(stack)
    assert digests(now) == digests(states.a), differences(states.a, now)


# -- 3. disk full -----------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Factory: small_disk(bytes) -> a directory on a tmpfs of that size, unmounted afterwards (the tests run as
    root; a tmpfs is a real file system that answers ENOSPC, without filling the host's disk)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def make(size: int) -> Path:
        where = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def fill(directory: Path, leave: int) -> None:
    """Fill a file system until `leave` bytes are free."""
    free = shutil.disk_usage(directory).free
    with (directory / "filler").open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))


def test_a_backup_that_fills_the_disk_fails_in_one_line_and_leaves_nothing(states: States, small_disk):
    stack = states.stack
    before = state_of(stack)
    for leave, what in ((None, "fills up in the middle"), (0, "is full already")):
        disk = small_disk(1 << 20)
        if leave is not None:
            fill(disk, leave)
        kept = set(os.listdir(disk))
        result = stack.invoke("backup", "--to", str(disk), check=False)
        print(result.stderr)  # shown with -rP: what a person sees
        OUTCOMES.append(Outcome(f"backup into a directory that {what} (1 MiB tmpfs)",
                                f"exit {result.returncode}, one line, nothing left",
                                bytes_lost(before, state_of(stack))))  # fmt: skip
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        errors = error_lines(result.stderr)
        assert len(errors) == 1, result.stderr
        assert "no space left" in errors[0] and str(disk) in errors[0] and "--to" in errors[0], errors
        assert set(os.listdir(disk)) == kept, "no set and no partial set is left"
        assert "no backup sets" in stack.invoke("backup.list", "--to", str(disk)).stderr
    assert stack.ps()["backend"]["health"] == "healthy"
    assert digests(state_of(stack)) == digests(before)


def test_a_restore_with_no_room_for_its_safety_set_changes_nothing(states: States, small_disk):
    stack = states.stack
    before = states.at_b()
    # The set fits, with a little room to spare, but the safety set of what it would replace does not.
    source = sets_dir(stack) / states.set_a
    size = sum(p.stat().st_size for p in source.iterdir())
    disk = small_disk(size + (256 << 10))
    shutil.copytree(source, disk / states.set_a)
    result = stack.invoke("restore", states.set_a, "--to", str(disk), "--yes", check=False)
    print(result.stderr)  # shown with -rP: what a person sees
    after = state_of(stack)
    OUTCOMES.append(Outcome("restore with no room for its safety set", f"exit {result.returncode}, refused before "
                            "changing anything", bytes_lost(before, after)))  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "safety set" in errors[0] and "no space left" in errors[0] and "nothing was changed" in errors[0], errors
    assert "stopping" not in result.stderr, "the writers were never stopped"
    assert digests(after) == digests(before), differences(before, after)
    leftovers = [p.name for p in (disk / "pre-restore").iterdir()] if (disk / "pre-restore").exists() else []
    assert leftovers == [], "no partial safety set is left"
    assert stack.ps()["backend"]["health"] == "healthy"
