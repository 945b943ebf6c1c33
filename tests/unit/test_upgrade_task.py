"""`invoke upgrade` is wired into the namespace with every flag explained, and a bad --to is one usage line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tasks

FLAGS = {"to", "plan", "yes", "history", "timeout", "prod"}


def test_upgrade_is_a_task_with_every_flag_explained():
    upgrade = tasks.namespace.tasks["upgrade"]
    assert set(upgrade.help) == FLAGS
    assert all(upgrade.help[flag].strip() for flag in FLAGS)
    assert upgrade.iterable == ["to"]


@pytest.mark.parametrize("flag", ["--timeout=-1", "--timeout=soon"])
def test_a_bad_timeout_is_one_line_and_exit_2_before_anything_runs(flag, tmp_path):
    result = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(tasks.STACK_ROOT), "upgrade", flag],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--timeout" in result.stderr
