"""`invoke restore SET`: check the set, say what it replaces, stop the writers, restore, restart, wait for healthy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import lifecycle, ui
from ..compose import Compose
from ..errors import Interrupted, ToolkitError, UsageError
from . import manifest as m
from .components import WRITERS, all_components
from .create import create_backup
from .manifest import SetError
from .parallel import run_parallel, sigterm_as_interrupt
from .progress import Board
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
    if not confirm(f"replace this data in {compose.settings.project}?"):
        raise UsageError("not confirmed: nothing was changed (pass --yes to skip the question)")

    safety = None
    if safety_dir is not None:
        ui.info("taking a safety set of what is about to be replaced (--no-safety-set skips it)")
        safety = create_backup(compose, services=[c.name for c in components], directory=safety_dir,
                               tools_image=tools_image, skip_missing_volumes=True)  # fmt: skip
        ui.success(f"safety set {safety}: every component goes back to it if this restore fails")
    started = time.monotonic()
    if writers:
        ui.info(f"stopping {', '.join(writers)}")
        compose.run("stop", *writers, capture=True)
    restarted = sorted(set(writers) | {c.service for c in components if c.needs_server})
    try:
        with sigterm_as_interrupt():
            restore_components(target, set_dir, manifest, components, f"restore {set_dir.name}")
    except (KeyboardInterrupt, Cancelled, ToolkitError) as exc:
        what = "restore interrupted" if isinstance(exc, KeyboardInterrupt | Cancelled) else f"restore failed: {exc}"
        if safety is None:
            raise ToolkitError(_stopped_hint(f"{what} (no safety set was taken)", writers)) from None
        _roll_back(compose, safety, components, tools_image, what)
        _start_again(compose, writers, restarted)
        error = Interrupted if isinstance(exc, KeyboardInterrupt | Cancelled) else ToolkitError
        raise error(f"{what}; every component was put back as it was from the safety set {safety}") from None
    ui.success(f"restored {', '.join(c.name for c in components)} in {time.monotonic() - started:.1f}s")
    _start_again(compose, writers, restarted)


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
        with sigterm_as_interrupt():
            restore_components(Target(compose, tools_image), safety, safety_manifest, back, f"roll back {safety.name}")
    except (KeyboardInterrupt, Cancelled, ToolkitError) as exc:
        raise ToolkitError(f"{why}; rolling back failed too ({exc}): restore the safety set with "
                           f"`invoke restore {safety} --yes --no-safety-set`") from None  # fmt: skip
    missing = [c.name for c in components if c not in back]
    if missing:
        ui.warn(f"{', '.join(missing)} did not exist before this restore: left as the restore made them")


def _start_again(compose: Compose, writers: Sequence[str], restarted: Sequence[str]) -> None:
    if writers:
        ui.info(f"starting {', '.join(writers)}")
        compose.run("start", *writers, capture=True)
    lifecycle.wait(compose, restarted, timeout=compose.settings.wait_timeout)


def _stopped_hint(message: str, writers: Sequence[str]) -> str:
    if not writers:
        return message
    return f"{message}; {', '.join(writers)} stay stopped: restore again, or `invoke start` to run as is"
