"""The sets in a backup directory: find one by name, list them, apply retention, clear interrupted leftovers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .. import ui
from . import manifest as m
from .manifest import SetError

PID_FILE = "PID"


def of_env(sets: list[m.SetInfo], env: str | None) -> list[m.SetInfo]:
    """Sets are named `<UTC time>-<env>`: dev and prod may share a directory, and never pick each other's."""
    return list(sets) if env is None else [s for s in sets if s.name.removesuffix(m.PARTIAL_SUFFIX).endswith(f"-{env}")]


def resolve_set(directory: Path, reference: str, env: str | None = None) -> Path:
    """A set by name (in the backup directory) or by path; `latest` is the newest complete set of `env`."""
    if reference == "latest":
        complete = [s for s in of_env(m.scan_sets(directory), env) if s.complete]
        if not complete:
            raise SetError(f"no complete {env or ''} set in {directory}: run `invoke backup` first")
        return complete[0].path
    candidate = Path(reference)
    if candidate.is_dir():
        return candidate.resolve()
    named = directory / reference
    if named.is_dir():
        return named
    hidden = directory / m.partial_name(reference)
    if hidden.is_dir():
        raise SetError(f"{hidden} is a partial set (its backup did not finish): use a complete set")
    raise SetError(f"no set {reference} in {directory}: `invoke backup.list` shows the sets")


def show_sets(directory: Path) -> list[m.SetInfo]:
    sets = m.scan_sets(directory)
    if not sets:
        ui.info(f"no backup sets in {directory}")
        return sets
    rows = []
    for s in sets:
        status = "verified" if s.verified else ("complete" if s.complete else "PARTIAL (interrupted)")
        when = s.created.strftime("%Y-%m-%d %H:%M:%S UTC") if s.created else "?"
        rows.append((s.name, when, ui.human_size(s.size), ", ".join(s.components) or "-", status))
    ui.table(f"backup sets in {directory}", ["set", "time", "size", "components", "state"], rows)
    return sets


def apply_retention(directory: Path, keep: int, env: str | None = None) -> list[m.SetInfo]:
    """--keep N counts the sets of this environment only: a prod backup never removes dev sets, nor the reverse."""
    doomed = m.sets_to_remove(of_env(m.scan_sets(directory), env), keep)
    for s in doomed:
        ui.info(f"--keep {keep}: removing {s.name}")
        shutil.rmtree(s.path)
    return doomed


def remove_stale_partials(directory: Path) -> None:
    """A partial set whose backup process is gone (killed, host rebooted) will never finish: remove it."""
    for s in m.scan_sets(directory):
        if s.complete or not s.path.name.endswith(m.PARTIAL_SUFFIX):
            continue
        if not _alive(s.path / PID_FILE):
            ui.info(f"removing {s.path.name}, left by an interrupted backup")
            shutil.rmtree(s.path, ignore_errors=True)


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
