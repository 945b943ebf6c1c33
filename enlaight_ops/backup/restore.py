"""`invoke restore SET`: check the set, say what it replaces, stop the writers, restore, restart, wait for healthy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import lifecycle, ui
from ..compose import Compose
from ..errors import Interrupted, ToolkitError, UsageError
from ..runner import run
from . import manifest as m
from .components import WRITERS, all_components
from .create import BackupFailed, create_backup
from .manifest import SetError
from .parallel import run_parallel, sigterm_as_interrupt
from .progress import Board
from .sets import process_alive
from .streams import Cancelled
from .target import Component, Target


def plan(set_dir: Path, manifest: Mapping[str, Any], target: Target, requested: Sequence[str]) -> list[Component]:
    """The stack's components matching the set's parts (all, or those `-s` names); refuse what cannot match."""
    parts: Mapping[str, Any] = manifest["components"]
    names = list(parts)
    if requested:
        names = []
        for wanted in requested:
            matches = [n for n, part in parts.items() if wanted in (n, part.get("service"))]
            if not matches:
                raise SetError(f"{set_dir.name} holds no {wanted} (it holds {', '.join(sorted(parts))})")
            names += [n for n in matches if n not in names]
        # Restoring a service's data restores all of it (n8n: its volume and its PostgreSQL database).
        services_named = {parts[n].get("service") for n in names}
        for service, companions in COMPANIONS.items():
            if service in services_named:
                names += [n for n in parts if parts[n].get("service") in companions and n not in names]
    ours = {c.name: c for c in all_components(target.compose.config)}
    unknown = [n for n in names if n not in ours]
    if unknown:
        raise SetError(f"{set_dir.name} holds {', '.join(unknown)}, which this stack does not have: incompatible set")
    return [ours[n] for n in names]


def ensure_running(target: Target, components: Sequence[Component]) -> None:
    for service in sorted({c.service for c in components if c.needs_server}):
        if not target.running(service):
            ui.info(f"starting {service} to restore into it")
            target.compose.run("up", "--detach", "--no-deps", "--wait", service, capture=True)


def restore_components(target: Target, set_dir: Path, manifest: Mapping[str, Any], components: Sequence[Component],
                       title: str) -> None:  # fmt: skip
    board = Board(title, [c.name for c in components])
    parts = manifest["components"]
    jobs = {c.name: _job(c, target, set_dir, parts[c.name], board) for c in components}
    run_parallel(jobs, board, target.processes)


def _job(component: Component, target: Target, set_dir: Path, part: Mapping[str, Any], board: Board):
    def run() -> None:
        component.restore(target, set_dir, part, board.progress(component.name))

    return run


# Data that belongs together: n8n's workflows and credentials live in PostgreSQL, its encryption key in its volume.
COMPANIONS = {"n8n": ("postgres",)}
SAFETY_DIR = "pre-restore"


def restore_set(
    compose: Compose,
    set_dir: Path,
    *,
    services: Sequence[str],
    tools_image: str,
    confirm: Callable[[str], bool],
    safety_dir: Path | None,
    from_other_env: bool = False,
) -> None:
    """Check everything first (no impact yet); take a safety set of what will be replaced; then replace it, and
    put every component back from the safety set by itself if anything fails or is interrupted."""
    ui.info(f"checking {set_dir.name}")
    manifest = m.check_set(set_dir)
    target = Target(compose, tools_image)
    components = plan(set_dir, manifest, target, services)
    check_compatible(set_dir, manifest, target, components, from_other_env=from_other_env)
    ensure_running(target, components)
    for component in components:
        component.check_restorable(target, set_dir, manifest["components"][component.name])
    ui.success(
        f"{set_dir.name}: checksums match; taken {manifest.get('created_at')} from project "
        f"{manifest.get('project')} ({manifest.get('env')})"
    )
    ui.warn(f"restoring into project {compose.settings.project} replaces data:")
    for component in components:
        ui.warn(f"  {component.name}: {component.describe(manifest['components'][component.name])}")
    writers = sorted({s.service for s in compose.states() if s.service in WRITERS and s.state == "running"})
    if writers:
        ui.warn(f"  writers stopped meanwhile and started again after: {', '.join(writers)}")
    journal = Journal(safety_dir, compose.settings.project) if safety_dir is not None else None
    unfinished = journal.unfinished() if journal else None
    if unfinished:
        # The killed restore stopped these; nobody else will start them again.
        writers = sorted(set(writers) | set(unfinished.get("writers", [])))
    if not confirm(f"replace this data in {compose.settings.project}?"):
        raise UsageError("not confirmed: nothing was changed (pass --yes to skip the question)")
    if unfinished:
        _remove_leftovers(compose, components)

    safety = None
    if safety_dir is not None:
        safety = _take_safety_set(compose, safety_dir, components, tools_image)
        ui.success(f"safety set {safety}: every component goes back to it if this restore fails")
    started = time.monotonic()
    if journal is not None and safety is not None:
        # Before the first destructive step: if this process is killed, the next restore says so and names the set.
        journal.begin(set_dir, safety, writers)
    restarted = sorted(set(writers) | {c.service for c in components if c.needs_server})
    try:
        with sigterm_as_interrupt():
            if writers:
                ui.info(f"stopping {', '.join(writers)}")
                compose.run("stop", *writers, capture=True)
            restore_components(target, set_dir, manifest, components, f"restore {set_dir.name}")
    except (KeyboardInterrupt, Cancelled, ToolkitError) as exc:
        what = "restore interrupted" if isinstance(exc, KeyboardInterrupt | Cancelled) else f"restore failed: {exc}"
        if safety is None:
            raise ToolkitError(_stopped_hint(f"{what} (no safety set was taken)", writers)) from None
        _roll_back(compose, safety, components, tools_image, what)
        _start_again(compose, writers, restarted, journal)
        error = Interrupted if isinstance(exc, KeyboardInterrupt | Cancelled) else ToolkitError
        raise error(f"{what}; every component was put back as it was from the safety set {safety}") from None
    ui.success(f"restored {', '.join(c.name for c in components)} in {time.monotonic() - started:.1f}s")
    _start_again(compose, writers, restarted, journal)


def _take_safety_set(compose: Compose, safety_dir: Path, components: Sequence[Component], tools_image: str) -> Path:
    """The safety set, or a refusal that says nothing was changed: no writer is stopped and no data touched yet."""
    ui.info("taking a safety set of what is about to be replaced (--no-safety-set skips it)")
    try:
        return create_backup(compose, services=[c.name for c in components], directory=safety_dir,
                             tools_image=tools_image, skip_missing_volumes=True)  # fmt: skip
    except BackupFailed as exc:
        fix = "free space there" if exc.no_space else "fix that"
        raise ToolkitError(
            f"restore refused, nothing was changed: its safety set could not be taken ({exc.reason}); {fix}, or "
            "pass --no-safety-set to restore without a way back"
        ) from None
    except Interrupted:
        raise Interrupted("restore interrupted while taking its safety set: nothing was changed") from None


class Journal:
    """A file beside the safety sets while a restore replaces data: who runs it, from which set, with which safety
    set and which writers it stopped. A restore killed outright (kill -9, power) cannot clean up or roll back; the
    next restore finds the file, says what happened and which safety set holds the data as it was, and starts the
    writers the killed one stopped. A running restore's file keeps a second one out."""

    def __init__(self, directory: Path, project: str) -> None:
        self.path = directory / f"restore-in-progress-{project}.json"

    def unfinished(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: nothing it says can be trusted, and the new restore overwrites it
        if not isinstance(record, dict):
            return None
        if record.get("host") == socket.gethostname() and _alive(record.get("pid")):
            raise UsageError(f"another restore (pid {record.get('pid')}, of {record.get('set')}) is running into "
                             "this stack: wait for it to finish")  # fmt: skip
        ui.warn(
            f"a restore of {record.get('set')} started {record.get('started_at')} did not finish (killed, or its roll "
            f"back failed): the safety set {record.get('safety_set')} holds the data as it was before it "
            f"(`invoke restore pre-restore/{record.get('safety_set')} --yes`)"
        )
        return record

    def begin(self, set_dir: Path, safety: Path, writers: Sequence[str]) -> None:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "set": set_dir.name,
            "safety_set": safety.name,
            "writers": list(writers),
        }
        m.write_json(self.path, record)

    def end(self) -> None:
        self.path.unlink(missing_ok=True)


def _remove_leftovers(compose: Compose, components: Sequence[Component]) -> None:
    """A killed restore's throwaway containers may still write (a Redis load into its volume, a tar into a volume):
    they must be gone before this restore writes the same data."""
    project = compose.settings.project
    filters = [["--filter", f"label=enlaight.backup.project={project}"]]
    filters += [["--filter", f"label=com.docker.compose.project={project}", "--filter",
                 "label=com.docker.compose.oneoff=True", "--filter", f"label=com.docker.compose.service={service}"]
                for service in sorted({c.service for c in components})]  # fmt: skip
    ids = sorted({i for f in filters for i in run(["docker", "ps", "-aq", *f], check=False).stdout.split()})
    if ids:
        ui.info(f"removing {len(ids)} container(s) the killed restore left running")
        run(["docker", "rm", "--force", *ids], check=False)


def _alive(pid: Any) -> bool:
    """A recorded restore still running: a live process that is not this one."""
    return pid != os.getpid() and process_alive(pid)


def check_compatible(set_dir: Path, manifest: Mapping[str, Any], target: Target, components: Sequence[Component],
                     *, from_other_env: bool) -> None:  # fmt: skip
    """Refuse, before anything changes, a set that would leave the stack worse: another environment's data in
    production, or n8n data encrypted with another key."""
    env = target.compose.settings.env
    if manifest.get("env") != env and env == "prod" and not from_other_env:
        raise UsageError(f"{set_dir.name} was taken from {manifest.get('env')}, and this is prod: pass "
                         "--from-other-env to restore it anyway")  # fmt: skip
    theirs, ours = manifest.get("n8n_key_fingerprint"), target.n8n_key_fingerprint()
    n8n_data = [c.name for c in components if c.service in ("n8n", *COMPANIONS["n8n"])]
    if n8n_data and theirs and ours and theirs != ours:
        raise SetError(
            f"{set_dir.name} was taken with another N8N_ENCRYPTION_KEY (fingerprint {theirs}, this stack's is {ours}): "
            "n8n could not read its credentials - put the key the set was taken with back in .env, or leave n8n "
            "out (-s mysql -s redis ...)"
        )


def _roll_back(compose: Compose, safety: Path, components: Sequence[Component], tools_image: str, why: str) -> None:
    """Put every component back from the safety set: a half-loaded one too (finish or roll back, never neither)."""
    safety_manifest = m.check_set(safety)
    back = [c for c in components if c.name in safety_manifest["components"]]
    ui.warn(f"{why}: putting {', '.join(c.name for c in back)} back from the safety set {safety.name}")
    try:
        with _not_interruptible(safety):
            restore_components(Target(compose, tools_image), safety, safety_manifest, back, f"roll back {safety.name}")
    except (KeyboardInterrupt, Cancelled, ToolkitError) as exc:
        raise ToolkitError(f"{why}; rolling back failed too ({exc}): restore the safety set with "
                           f"`invoke restore {safety} --yes --no-safety-set`") from None  # fmt: skip
    missing = [c.name for c in components if c not in back]
    if missing:
        ui.warn(f"{', '.join(missing)} did not exist before this restore: left as the restore made them")


@contextlib.contextmanager
def _not_interruptible(safety: Path) -> Iterator[None]:
    """A roll back stopped halfway leaves the stack worse than either state: Ctrl-C and `kill` wait for its end
    (the dumps and loads run in their own process group, so the terminal's Ctrl-C does not reach them either)."""

    def refuse(signum: int, frame: Any) -> None:
        ui.warn(f"rolling back: it finishes first (the safety set {safety.name} is complete if it must be killed)")

    previous = {sig: signal.signal(sig, refuse) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_again(compose: Compose, writers: Sequence[str], restarted: Sequence[str], journal: Journal | None) -> None:
    """The data is in place (restored or rolled back); the journal goes once the writers were started again (a
    restore stopped before that leaves them stopped, and the journal tells the next one)."""
    if writers:
        ui.info(f"starting {', '.join(writers)}")
        compose.run("start", *writers, capture=True)
    if journal is not None:
        journal.end()
    if restarted:  # none when only a volume came back with its users already down: nothing to wait for
        lifecycle.wait(compose, restarted, timeout=compose.settings.wait_timeout)


def _stopped_hint(message: str, writers: Sequence[str]) -> str:
    if not writers:
        return message
    return f"{message}; {', '.join(writers)} stay stopped: restore again, or `invoke start` to run as is"
