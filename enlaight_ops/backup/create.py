"""`invoke backup`: every component in parallel into a hidden temporary directory, renamed only when all succeeded."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, ui
from ..compose import Compose
from ..errors import ComponentFailed, Interrupted, ToolkitError, UsageError
from ..runner import run
from . import manifest as m
from .components import all_components, select
from .parallel import run_parallel, sigterm_as_interrupt
from .progress import Board
from .sets import PID_FILE, apply_retention, private_files, remove_stale_partials
from .streams import Cancelled
from .target import Component, Target


class BackupFailed(ToolkitError):
    """A backup that stopped and kept nothing. `reason` says what failed (which component, which directory, how much
    room was left); the message adds the advice for `invoke backup`, and a restore's safety set gives its own."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(f"backup failed, nothing kept: {reason}" + (f"; {hint}" if hint else ""))
        self.reason = reason
        self.no_space = hint == NO_SPACE_HINT


NO_SPACE_HINT = "free space there, or back up to another disk with --to DIR"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def create_backup(
    compose: Compose,
    *,
    services: Sequence[str],
    directory: Path,
    tools_image: str,
    keep: int | None = None,
    skip_missing_volumes: bool = False,
) -> Path:
    """One set of `services` (all when empty) in `directory`; its path. A volume named in `services` that does not
    exist is an error, unless `skip_missing_volumes` (a safety set keeps what there is)."""
    target = Target(compose, tools_image)
    explicit = bool(services) and not skip_missing_volumes
    components = _runnable(target, select(all_components(compose.config), services), explicit=explicit)
    if keep is not None and keep < 1:
        raise UsageError("--keep must be at least 1")
    with private_files():
        return _create(compose, target, components, directory, keep)


def _create(compose: Compose, target: Target, components: list[Component], directory: Path, keep: int | None) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(directory)
        started_at = datetime.now(UTC)
        name = m.set_name(started_at, compose.settings.env, (m.bare_name(p.name) for p in directory.iterdir()))
    except OSError as exc:
        raise _failed(exc, directory, "") from None
    partial = directory / m.partial_name(name)
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            partial.mkdir()
            (partial / PID_FILE).write_text(f"{os.getpid()}\n")
            ui.info(f"backing up {', '.join(c.name for c in components)} to {directory / name}")
            board = Board(f"backup {name}", [c.name for c in components])
            jobs = {c.name: _job(c, target, partial, board) for c in components}
            parts = run_parallel(jobs, board, target.processes)
            _seal(partial, target, parts, started_at, time.monotonic() - started)
            final = directory / name
            # The PID file goes last: until the rename, it tells a concurrent backup this set is still alive.
            (partial / PID_FILE).unlink()
            partial.rename(final)
            _fsync_dir(directory)
    except KeyboardInterrupt:
        shutil.rmtree(partial, ignore_errors=True)
        raise Interrupted("backup interrupted: the partial set was removed") from None
    except Cancelled:
        shutil.rmtree(partial, ignore_errors=True)
        raise Interrupted("backup cancelled: the partial set was removed") from None
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, DiskError):
            raise exc.as_failure() from None
        if isinstance(exc, OSError):
            raise _failed(exc, directory, "") from None
        if isinstance(exc, ToolkitError):
            raise BackupFailed(str(exc)) from None
        raise
    size = sum(p.stat().st_size for p in final.iterdir())
    ui.success(f"backup {name}: {ui.human_size(size)} in {time.monotonic() - started:.1f}s ({final})")
    if keep is not None:
        apply_retention(directory, keep, compose.settings.env, tuple(c.name for c in components))
    return final


def _runnable(target: Target, components: list[Component], *, explicit: bool) -> list[Component]:
    """Databases must run (a dump needs the server); a volume that was never created is skipped unless asked for."""
    chosen = []
    for component in components:
        if not component.needs_server:
            if component.exists(target):
                chosen.append(component)
            elif explicit:
                raise UsageError(f"volume {target.volume_name(component.name)} does not exist: nothing to back up")
            else:
                ui.info(f"{component.name}: volume not created yet ({component.service} never ran), skipped")
        elif target.running(component.service):
            chosen.append(component)
        else:
            raise UsageError(
                f"{component.service} is not running: start it (`invoke start -s {component.service}`) "
                "or leave it out with -s"
            )
    if not chosen:
        raise UsageError("nothing to back up")
    return chosen


def _job(component: Component, target: Target, partial: Path, board: Board):
    def run() -> dict[str, Any]:
        started = time.monotonic()
        try:
            part = component.backup(target, partial, board.progress(component.name))
        except OSError as exc:
            # Said here, where the component is known: "no space left" alone does not say what filled the disk.
            raise DiskError(_failed(exc, partial.parent, component.name)) from None
        part["seconds"] = round(time.monotonic() - started, 3)
        return part

    return run


class DiskError(ComponentFailed):
    """A component's write to the backup directory failed (full, read-only, gone): carries the failure to report."""

    def __init__(self, failure: BackupFailed) -> None:
        super().__init__(failure.reason)
        self.failure = failure

    def as_failure(self) -> BackupFailed:
        return self.failure


def _failed(exc: OSError, directory: Path, what: str) -> BackupFailed:
    """One line for a write that failed in the backup directory: what was written, where, why, and what to do."""
    writing = f"{what}: " if what else ""
    if exc.errno in _NO_SPACE:
        free = ui.human_size(_free_bytes(directory))
        return BackupFailed(f"{writing}no space left on the disk of {directory} ({free} free)", NO_SPACE_HINT)
    where = exc.filename or directory
    return BackupFailed(f"{writing}cannot write {where}: {exc.strerror or exc}", "choose another directory with --to")


def _free_bytes(directory: Path) -> int:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return 0


def _seal(partial: Path, target: Target, parts: dict[str, dict[str, Any]], started_at: datetime, took: float):
    """manifest.json, then SHA256SUMS (last: its presence is what makes a set complete)."""
    digests: dict[str, str] = {}
    for part in parts.values():
        digests.update(part.pop("checksums"))
    compose = target.compose
    config = compose.config
    manifest = {
        "format": m.FORMAT_VERSION,
        "toolkit": {"version": __version__, **_git(compose.settings.root)},
        "project": compose.settings.project,
        "env": compose.settings.env,
        "host": socket.gethostname(),
        "created_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(took, 3),
        "images": {name: spec.get("image", "") for name, spec in sorted(config.get("services", {}).items())},
        "bytes": sum(p["bytes"] for p in parts.values()),
        "n8n_key_fingerprint": target.n8n_key_fingerprint(),
        "components": parts,
    }
    m.write_json(partial / m.MANIFEST, manifest)
    digests[m.MANIFEST] = m.file_sha256(partial / m.MANIFEST)
    sums = partial / m.CHECKSUMS
    sums.write_text(m.format_checksums(digests), encoding="utf-8")
    for path in (partial / m.MANIFEST, sums):
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(partial)


def _git(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        result = run(["git", "-C", str(root), *args], check=False)
        return result.stdout.strip() if result.ok else ""

    commit = git("rev-parse", "HEAD")
    return {"git_commit": commit or None, "git_dirty": bool(git("status", "--porcelain")) if commit else None}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
