"""The sets in a backup directory: find one by name, list them, apply retention, clear interrupted leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import ui
from . import manifest as m
from .manifest import SetError

PID_FILE = "PID"


@dataclass(frozen=True)
class SetInfo:
    name: str
    path: Path
    created: datetime | None
    complete: bool
    verified: bool
    size: int
    components: tuple[str, ...]


def scan_sets(directory: Path) -> list[SetInfo]:
    """Every set and partial set in a directory, newest first (no checksums: that is `verify`)."""
    if not directory.is_dir():
        return []
    sets = []
    for path in directory.iterdir():
        if not path.is_dir():
            continue
        name = path.name
        partial = name.startswith(".") and name.endswith(m.PARTIAL_SUFFIX)
        bare = name[1 : -len(m.PARTIAL_SUFFIX)] if partial else name
        created = m.parse_set_name(bare)
        if created is None:
            continue
        components: tuple[str, ...] = ()
        manifest_path = path / m.MANIFEST
        if manifest_path.is_file():
            try:
                components = tuple(sorted(json.loads(manifest_path.read_text(encoding="utf-8"))["components"]))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                components = ()
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        sets.append(
            SetInfo(
                name=name,
                path=path,
                created=created,
                size=size,
                components=components,
                complete=not partial and (path / m.CHECKSUMS).is_file(),
                verified=(path / m.VERIFIED).is_file(),
            )
        )
    return sorted(sets, key=lambda s: (s.created or datetime.min.replace(tzinfo=UTC), s.name), reverse=True)


def sets_to_remove(sets: Sequence[SetInfo], keep: int) -> list[SetInfo]:
    """The complete sets beyond the newest `keep`, except the newest verified one, which always stays."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    complete = sorted((s for s in sets if s.complete), key=lambda s: (s.created, s.name), reverse=True)
    newest_verified = next((s for s in complete if s.verified), None)
    return [s for s in complete[keep:] if s is not newest_verified]


def of_env(sets: list[SetInfo], env: str | None) -> list[SetInfo]:
    """Sets are named `<UTC time>-<env>`: dev and prod may share a directory, and never pick each other's."""
    return list(sets) if env is None else [s for s in sets if m.set_env(s.name) == env]


def resolve_set(directory: Path, reference: str, env: str | None = None) -> Path:
    """A set by name (in the backup directory) or by path; `latest` is the newest complete set of `env`."""
    if reference == "latest":
        complete = [s for s in of_env(scan_sets(directory), env) if s.complete]
        if not complete:
            raise SetError(f"no complete {env or ''} set in {directory}: run `invoke backup` first")
        return complete[0].path
    for candidate in (Path(reference), directory / reference):
        if candidate.is_dir():
            resolved = candidate.resolve()
            if not resolved.is_relative_to(directory.resolve()):
                raise SetError(f"{reference} is not inside the backup directory {directory}: move the set there, "
                               "or name its directory with --to")  # fmt: skip
            return resolved
    hidden = directory / m.partial_name(reference)
    if hidden.is_dir():
        raise SetError(f"{hidden} is a partial set (its backup did not finish): use a complete set")
    raise SetError(f"no set {reference} in {directory}: `invoke backup.list` shows the sets")


def show_sets(directory: Path) -> list[SetInfo]:
    sets = scan_sets(directory)
    if not sets:
        ui.info(f"no backup sets in {directory}")
        return sets
    rows = []
    for s in sets:
        status = "verified" if s.verified else ("complete" if s.complete else "PARTIAL (interrupted)")
        when = s.created.strftime("%Y-%m-%d %H:%M:%S UTC") if s.created else "?"
        rows.append((s.name, when, ui.human_size(s.size), ", ".join(s.components) or "-", status))
    ui.table(f"backup sets in {directory}", ["set", "time", "size", "components", "state"], rows)
    for s in sets:
        if readable_by_others(s.path):
            ui.warn(f"{s.name} is readable by other users (it holds password hashes and n8n's encryption key): "
                    f"chmod -R go-rwx {s.path}")  # fmt: skip
    return sets


def readable_by_others(path: Path) -> bool:
    """A set directory or any file in it that group or others may read, write or enter."""
    return any(p.stat().st_mode & 0o077 for p in (path, *path.iterdir()))


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Everything created inside is the owner's alone (0700 directories, 0600 files): a set holds secrets."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def apply_retention(
    directory: Path, keep: int, env: str | None = None, components: tuple[str, ...] | None = None
) -> list[SetInfo]:
    """--keep N counts the sets of this environment that hold the same components: a prod backup never removes dev
    sets, and hourly `-s redis` sets never push out the last full set."""
    sets = of_env(scan_sets(directory), env)
    if components is not None:
        sets = [s for s in sets if s.components == tuple(sorted(components))]
    doomed = sets_to_remove(sets, keep)
    for s in doomed:
        ui.info(f"--keep {keep}: removing {s.name}")
        shutil.rmtree(s.path)
    return doomed


def remove_stale_partials(directory: Path) -> None:
    """A partial set whose backup process is gone (killed, host rebooted) will never finish: remove it."""
    for s in scan_sets(directory):
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
    return process_alive(pid)


def process_alive(pid: object) -> bool:
    """Whether a process of this host has that pid (one we may not signal still counts)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
