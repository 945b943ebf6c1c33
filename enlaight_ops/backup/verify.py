"""`invoke backup.verify SET`: checksums, then a restore drill into a throwaway project, compared with the manifest."""

from __future__ import annotations

import dataclasses
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, ui
from ..compose import Compose
from ..errors import Interrupted, ToolkitError
from . import manifest as m
from .parallel import sigterm_as_interrupt
from .restore import plan, restore_components
from .streams import Cancelled
from .target import Target

# The drill publishes no ports, so it never collides with the stack it checks (dev publishes database ports).
_NO_PORTS = "services:\n" + "".join(f"  {s}:\n    ports: !reset []\n" for s in ("mysql", "postgres", "redis"))


class DrillCompose(Compose):
    """The same files and env files under another project name, plus an overlay that removes published ports."""

    def __init__(self, compose: Compose, project: str, overlay: Path) -> None:
        super().__init__(dataclasses.replace(compose.settings, project=project))
        self.overlay = overlay

    def argv(self, *args: str) -> list[str]:
        return [*super().argv(), "--file", str(self.overlay), *args]


def drill_project(project: str) -> str:
    return f"{project[:40]}-drill-{uuid.uuid4().hex[:8]}"


def verify_set(compose: Compose, set_dir: Path, *, tools_image: str) -> dict[str, Any]:
    started = time.monotonic()
    manifest = m.check_set(set_dir)
    files = sum(len(p.get("files", [])) for p in manifest["components"].values()) + 1
    ui.success(f"{set_dir.name}: {files} files match {m.CHECKSUMS}")
    with tempfile.TemporaryDirectory(prefix="enlaight-drill-") as tmp:
        overlay = Path(tmp) / "drill.yml"
        overlay.write_text(_NO_PORTS)
        drill = DrillCompose(compose, drill_project(compose.settings.project), overlay)
        target = Target(drill, tools_image)
        components = plan(set_dir, manifest, target, ())
        services = sorted({c.service for c in components if c.needs_server})
        ui.info(f"restore drill in throwaway project {drill.settings.project} ({', '.join(services) or 'volumes'})")
        try:
            with sigterm_as_interrupt():
                if services:
                    drill.run("up", "--detach", "--wait", "--no-deps", *services, capture=True)
                for component in components:
                    component.check_restorable(target, set_dir, manifest["components"][component.name])
                restore_components(target, set_dir, manifest, components, f"drill {set_dir.name}")
                problems, checked = _compare(target, manifest["components"], components)
        except (KeyboardInterrupt, Cancelled):
            raise Interrupted("verify interrupted: the drill project is removed") from None
        finally:
            drill.run("down", "--volumes", "--remove-orphans", "--timeout", "5", capture=True, check=False)
    if problems:
        for line in problems[1:]:
            ui.error(line)
        raise ToolkitError(f"{set_dir.name} failed its restore drill: {problems[0]} ({len(problems)} differences)")
    record = {
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "toolkit_version": __version__,
        "seconds": round(time.monotonic() - started, 3),
        "checked": checked,
    }
    m.write_json(set_dir / m.VERIFIED, record)
    ui.success(f"{set_dir.name} verified: restored in a drill, {checked} counts equal the manifest")
    return record


def _compare(target: Target, parts: Mapping[str, Any], components) -> tuple[list[str], int]:
    problems: list[str] = []
    checked = 0
    for component in components:
        expected = parts[component.name].get("row_counts", {})
        actual = component.counts(target)
        problems += [f"{component.name} {line}" for line in m.compare_counts(expected, actual)]
        checked += len(expected)
    return problems, checked
