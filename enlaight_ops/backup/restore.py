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


def restore_set(
    compose: Compose,
    set_dir: Path,
    *,
    services: Sequence[str],
    tools_image: str,
    confirm: Callable[[str], bool],
) -> None:
    ui.info(f"checking {set_dir.name}")
    manifest = m.check_set(set_dir)
    target = Target(compose, tools_image)
    components = plan(set_dir, manifest, target, services)
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
    writers = [s.service for s in compose.states() if s.service in WRITERS and s.state == "running"]
    if writers:
        ui.warn(f"  writers stopped meanwhile and started again after: {', '.join(sorted(set(writers)))}")
    if not confirm(f"replace this data in {compose.settings.project}?"):
        raise UsageError("not confirmed: nothing was changed (pass --yes to skip the question)")

    started = time.monotonic()
    writers = sorted(set(writers))
    if writers:
        ui.info(f"stopping {', '.join(writers)}")
        compose.run("stop", *writers, capture=True)
    try:
        with sigterm_as_interrupt():
            restore_components(target, set_dir, manifest, components, f"restore {set_dir.name}")
    except (KeyboardInterrupt, Cancelled):
        raise Interrupted(_stopped_hint("restore interrupted", writers)) from None
    except ToolkitError as exc:
        raise ToolkitError(_stopped_hint(f"restore failed: {exc}", writers)) from None
    ui.success(f"restored {', '.join(c.name for c in components)} in {time.monotonic() - started:.1f}s")
    restarted = sorted(set(writers) | {c.service for c in components if c.needs_server})
    if writers:
        ui.info(f"starting {', '.join(writers)}")
        compose.run("start", *writers, capture=True)
    lifecycle.wait(compose, restarted, timeout=compose.settings.wait_timeout)


def _stopped_hint(message: str, writers: Sequence[str]) -> str:
    if not writers:
        return message
    return f"{message}; {', '.join(writers)} stay stopped: restore again, or `invoke start` to run as is"
