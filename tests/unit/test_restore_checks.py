"""What restore refuses before it changes anything: another environment's set in prod, n8n data under another
encryption key, a set outside the backup directory; and `-s n8n` takes everything n8n needs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from enlaight_ops.backup.manifest import SetError
from enlaight_ops.backup.restore import check_compatible
from enlaight_ops.backup.sets import resolve_set
from enlaight_ops.errors import UsageError


def target(env: str, fingerprint: str | None) -> SimpleNamespace:
    settings = SimpleNamespace(env=env)
    return SimpleNamespace(compose=SimpleNamespace(settings=settings), n8n_key_fingerprint=lambda: fingerprint)


def component(name: str, service: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, service=service)


N8N = [component("postgres", "postgres"), component("n8n_data", "n8n")]
MYSQL = [component("mysql", "mysql")]


def test_a_dev_set_is_refused_in_prod_unless_asked():
    manifest = {"env": "dev", "n8n_key_fingerprint": "aaaa"}
    with pytest.raises(UsageError, match="--from-other-env"):
        check_compatible(Path("s"), manifest, target("prod", "aaaa"), MYSQL, from_other_env=False)
    check_compatible(Path("s"), manifest, target("prod", "aaaa"), MYSQL, from_other_env=True)
    check_compatible(Path("s"), {"env": "prod"}, target("dev", "aaaa"), MYSQL, from_other_env=False)


def test_n8n_data_under_another_key_is_refused_with_the_fix():
    manifest = {"env": "dev", "n8n_key_fingerprint": "aaaa"}
    with pytest.raises(SetError, match="N8N_ENCRYPTION_KEY") as caught:
        check_compatible(Path("s"), manifest, target("dev", "bbbb"), N8N, from_other_env=False)
    assert "back in .env" in str(caught.value)
    check_compatible(Path("s"), manifest, target("dev", "bbbb"), MYSQL, from_other_env=False)  # n8n not touched
    check_compatible(Path("s"), {"env": "dev"}, target("dev", "bbbb"), N8N, from_other_env=False)  # an older set


def test_a_set_outside_the_backup_directory_is_refused(tmp_path: Path):
    backups = tmp_path / "backups"
    (backups / "20260101T000000Z-dev").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert resolve_set(backups, "20260101T000000Z-dev") == (backups / "20260101T000000Z-dev").resolve()
    for reference in ("../elsewhere", str(tmp_path / "elsewhere"), "../../" * 8 + "etc"):
        with pytest.raises(SetError, match="not inside the backup directory"):
            resolve_set(backups, reference)


def test_restoring_n8n_restores_its_database_too():
    from enlaight_ops.backup.restore import plan

    config = {
        "services": {
            "mysql": {},
            "postgres": {},
            "n8n": {"volumes": [{"type": "volume", "source": "n8n_data", "target": "/home/node/.n8n"}]},
        },
        "volumes": {"n8n_data": {}},
    }
    manifest = {
        "components": {
            "mysql": {"service": "mysql"},
            "postgres": {"service": "postgres"},
            "n8n_data": {"service": "n8n"},
        }
    }
    stack = SimpleNamespace(compose=SimpleNamespace(config=config))
    assert sorted(c.name for c in plan(Path("s"), manifest, stack, ["n8n"])) == ["n8n_data", "postgres"]
    assert [c.name for c in plan(Path("s"), manifest, stack, ["mysql"])] == ["mysql"]


def test_a_full_disk_names_the_component_the_directory_and_the_fix(tmp_path: Path):
    import errno

    from enlaight_ops.backup.create import _failed

    failure = _failed(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "mysql")
    assert failure.no_space and "mysql: no space left" in failure.reason and str(tmp_path) in failure.reason
    assert str(failure).startswith("backup failed, nothing kept: ") and "--to DIR" in str(failure)
    other = _failed(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x")), tmp_path, "")
    assert not other.no_space and "cannot write" in str(other) and "Permission denied" in str(other)


def test_a_killed_restore_is_named_by_the_next_and_a_running_one_keeps_others_out(tmp_path: Path):
    import os
    import subprocess
    import sys

    from enlaight_ops.backup.restore import Journal

    journal = Journal(tmp_path, "enlaight")
    assert journal.unfinished() is None
    journal.begin(Path("20260101T000000Z-dev"), tmp_path / "20260102T000000Z-dev", ["backend"])
    record = journal.path.read_text()
    # A live process that is not us stands for another restore still running.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        journal.path.write_text(record.replace(f'"pid": {os.getpid()}', f'"pid": {sleeper.pid}'))
        with pytest.raises(UsageError, match="another restore"):
            journal.unfinished()
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its process gone (kill -9): the next restore is told, and learns which writers to start again.
    unfinished = journal.unfinished()
    assert unfinished is not None and unfinished["safety_set"] == "20260102T000000Z-dev"
    assert unfinished["writers"] == ["backend"]
    journal.end()
    assert not journal.path.exists() and journal.unfinished() is None


def test_dumps_and_loads_run_outside_the_terminals_process_group():
    """A terminal's Ctrl-C reaches its whole foreground group: the toolkit's children must not die of it by
    themselves in the middle of a write (the toolkit stops them in order, or lets a roll back finish)."""
    import os
    import subprocess
    import sys

    from enlaight_ops.backup.target import Processes

    processes = Processes()
    child = processes.start([sys.executable, "-c", "import time; time.sleep(30)"], stdin=subprocess.DEVNULL)
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    finally:
        processes.cancel()
        processes.done(child)


def test_a_dump_stopped_by_a_cancel_is_cancelled_not_failed(tmp_path: Path):
    """Ctrl-C or a sibling's failure stops every dump and load: their exit statuses then say nothing about their
    component, and must not be reported as its failure."""
    import sys
    import threading

    from enlaight_ops.backup.target import Target, dump_to_file
    from enlaight_ops.errors import Cancelled

    target = Target(SimpleNamespace(mask=lambda text: text), "")
    threading.Timer(0.5, target.processes.cancel).start()
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(Cancelled):
        dump_to_file(target, argv, tmp_path / "x.sql", "test: sleep", compress=False, progress=lambda r, w: None)


def test_a_roll_back_runs_to_its_end_through_ctrl_c_and_kill(capsys):
    import os
    import signal

    from enlaight_ops.backup.restore import _not_interruptible

    with _not_interruptible(Path("20260102T000000Z-dev")):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert "rolling back: it finishes first" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):  # outside a roll back, Ctrl-C interrupts again
        os.kill(os.getpid(), signal.SIGINT)
