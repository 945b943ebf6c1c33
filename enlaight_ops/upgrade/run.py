"""`invoke upgrade`: plan, then pre-flight and a verified backup (no impact yet), then swap images, migrate, start
and wait; on any failure, timeout or Ctrl-C put the previous images and the pre-upgrade set back by itself.

The previous image of every service whose image is replaced is kept under `<repository>:rollback-<time>` before
anything is built, so going back never depends on a registry or a rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import doctor, lifecycle, ui
from ..backup import create_backup, restore_set, verify_set
from ..compose import Compose
from ..errors import ToolkitError, UsageError
from ..image_policy import ensure_images
from . import engine_hop, history, probe
from .plan import ImageRef, Plan, ServiceChange, make_plan, plan_lines, postgres_hop, rollback_tag

# Services that write to the databases: stopped while migrations run and while a rollback restores.
WRITERS = ("backend", "n8n", "superset")


class Phases:
    """How long each phase took (shown at the end and kept in the history)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0) + time.monotonic() - started, 2)

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.seconds.items())


def upgrade(
    compose: Compose,
    *,
    to: Mapping[str, str],
    timeout: float,
    confirm: Callable[[str], bool],
    plan_only: bool = False,
) -> Plan:
    settings = compose.settings
    phases = Phases()
    with phases("plan"):
        running = probe.running_services(compose)
        if not running:
            raise UsageError(f"nothing of project {settings.project} is running: `invoke start` it first (an upgrade "
                             "acts on the running stack)")  # fmt: skip
        plan = make_plan(probe.gather(compose, to))
    for line in plan_lines(plan):
        ui.info(line)
    if plan_only:
        ui.success(f"plan only: nothing was changed ({phases.line()})")
        return plan
    if plan.blockers:
        raise ToolkitError(f"upgrade blocked, nothing was changed: {plan.blockers[0]}")
    if not plan.changed:
        ui.success("nothing to upgrade: every service runs its target image")
        return plan
    if not confirm(f"upgrade project {settings.project} ({settings.env})?"):
        raise UsageError("not confirmed: nothing was changed (pass --yes to skip the question)")

    services = sorted(running)
    record: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "project": settings.project,
        "env": settings.env,
        "from": {s.service: {"image": s.now.reference, "id": s.now.id} for s in plan.changed},
        "migrations": list(plan.migrations or []),
        "set": None,
    }
    try:
        with phases("doctor"):
            doctor.preflight(settings, lambda: compose.config, lifecycle.expected_services(compose, services))
        with phases("backup"):
            set_dir = _backup(compose)
        record["set"] = set_dir.name
        with phases("verify"):
            verify_set(compose, set_dir, tools_image=settings.tools_image)
    except (ToolkitError, KeyboardInterrupt) as exc:
        cause = str(exc) or "interrupted"
        _record(compose, record, phases, "not started", cause)
        raise ToolkitError(f"upgrade not started, nothing was changed: {cause}") from None

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = _keep_previous(compose, plan.replaced_images, stamp)
    record["rollback_images"] = {service: tag for service, (_, tag) in kept.items()}
    # Third-party images are chosen by the env files, not by a tag this upgrade owns: going back runs the previous
    # image by id (an overlay), and says which *_IMAGE value to set back.
    pinned = {s.service: s.now for s in plan.changed if s.source == "config"}
    hop, moved = postgres_hop(plan), None
    try:
        with phases("images"):
            new_images = _get_images(compose, plan, to, services)
        record["to"] = new_images
        swapped = sorted(s for s, image in new_images.items() if image["id"] != record["from"][s]["id"])
        for s in plan.changed:
            if s.service not in swapped:
                ui.info(f"{s.service}: the new image is the one it runs ({s.now.short()}): unchanged")
        with phases("stop writers"):
            writers = [s for s in services if s in WRITERS]
            if writers:
                ui.info(f"stopping {', '.join(writers)}")
                compose.run("stop", *writers, capture=True)
        if hop is not None:
            with phases("postgres hop"):
                moved = engine_hop.cross(compose, set_dir, old_major=hop.now.split(".")[0],
                                         old_image=pinned[engine_hop.SERVICE].id, stamp=stamp)  # fmt: skip
            record["kept_volume"] = moved.kept
        with phases("migrate"):
            if probe.BACKEND in services:
                _migrate(compose)
        with phases("start"):
            if swapped:
                compose.run("up", "--detach", "--no-start", "--no-deps", "--force-recreate", *swapped, capture=True)
            lifecycle.start(compose, services, build=False, wait=True, timeout=timeout)
    except (ToolkitError, KeyboardInterrupt) as exc:
        cause = str(exc) or "interrupted"
        ui.error(f"upgrade failed: {cause}")
        try:
            with phases("rollback"):
                # The previous version is known to start: it gets the configured wait even when --timeout was short.
                back_timeout = max(timeout, settings.wait_timeout)
                _roll_back(compose, services, kept, set_dir, back_timeout, pinned=pinned, moved=moved)
        except (ToolkitError, KeyboardInterrupt) as again:
            _record(compose, record, phases, "rollback failed", f"{cause}; rollback: {again}")
            tags = ", ".join(f"{tag} (for {configured})" for configured, tag in kept.values()) or "none"
            volume = f"; PostgreSQL's previous files are in volume {moved.kept}" if moved else ""
            raise ToolkitError(
                f"upgrade failed ({cause}) and rolling back failed too ({again or 'interrupted'}): the previous "
                f"images are {tags} (`docker tag` them back){volume}; the pre-upgrade data is {set_dir} "
                f"(`invoke restore {set_dir.name} --yes`), then `invoke start`"
            ) from None
        _record(compose, record, phases, "rolled back", cause)
        raise ToolkitError(f"upgrade failed and was rolled back (previous images, data of {set_dir.name}): "
                           f"{cause}") from None  # fmt: skip
    _record(compose, record, phases, "upgraded", "")
    ui.success(f"upgraded {', '.join(swapped) or 'nothing'}; pre-upgrade set {set_dir.name}; {phases.line()}")
    return plan


def _backup(compose: Compose) -> Path:
    """A set of everything the stack holds: each running database, each state volume that exists."""
    from ..backup.components import all_components

    running = set(probe.running_services(compose))
    components = [c for c in all_components(compose.config) if not c.needs_server or c.service in running]
    skipped = sorted({c.service for c in all_components(compose.config) if c.needs_server} - running)
    if skipped:
        ui.info(f"not running, so not in the pre-upgrade set: {', '.join(skipped)}")
    ui.info("pre-upgrade backup (every running database and state volume), then its restore drill")
    return create_backup(compose, services=[c.name for c in components], directory=compose.settings.backup_dir,
                         tools_image=compose.settings.tools_image, skip_missing_volumes=True)  # fmt: skip


def _configured_image(compose: Compose, service: str) -> str:
    return str(compose.config["services"][service].get("image") or "")


def _keep_previous(compose: Compose, replaced: Sequence[ServiceChange], stamp: str) -> dict[str, tuple[str, str]]:
    """Tag each image about to be replaced: {service: (configured name, rollback tag)}."""
    kept = {}
    for s in replaced:
        configured = _configured_image(compose, s.service)
        tag = rollback_tag(configured, stamp)
        probe.docker("tag", s.now.id, tag)
        kept[s.service] = (configured, tag)
    if kept:
        ui.info(f"previous images kept as {', '.join(tag for _, tag in kept.values())}")
    return kept


def _get_images(compose: Compose, plan: Plan, to: Mapping[str, str], services: Sequence[str]) -> dict[str, Any]:
    """Build, tag or pull each changed service's image under the name the stack runs; {service: image} after."""
    built = [s.service for s in plan.changed if s.source == "build"]
    expected = lifecycle.expected_services(compose, services)
    ensure_images(compose, expected, build=bool(built), log=ui.info)  # third-party images, and bases to build on
    if built:
        ui.info(f"building {', '.join(built)} from this checkout")
        compose.run("build", *built)
    for service, image in to.items():
        if service not in services:
            continue
        if not probe.image_info(image).id:
            ui.info(f"pulling {image}")
            probe.docker("pull", image)
        probe.docker("tag", image, _configured_image(compose, service))
    after = {}
    for s in plan.changed:
        image = probe.image_info(_configured_image(compose, s.service))
        after[s.service] = {"image": image.reference, "id": image.id}
    return after


def _migrate(compose: Compose) -> None:
    """The backend's migrations as a one-shot of the new image, before any writer starts on the new schema."""
    ui.info("applying Django migrations (one-shot of the new backend image)")
    result = compose.run("run", "--rm", "--no-deps", "-T", "--entrypoint", "python", probe.BACKEND,
                         "manage.py", "migrate", "--noinput", capture=True)  # fmt: skip
    applied = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("Applying ")]
    for line in applied:
        ui.info(f"  {line}")
    if not applied:
        ui.info("  no migrations to apply")


def _roll_back(compose: Compose, services: Sequence[str], kept: Mapping[str, tuple[str, str]], set_dir: Path,
               timeout: float, *, pinned: Mapping[str, ImageRef],
               moved: engine_hop.KeptVolume | None) -> None:  # fmt: skip
    """Writers stopped, previous images back, the pre-upgrade set restored, start, wait."""
    ui.warn(f"rolling back: previous images, then the data of {set_dir.name}")
    overlay = probe.overlay(compose, {s: {"image": image.id} for s, image in pinned.items()}) if pinned else None
    with overlay or nullcontext(compose) as back:
        writers = [s.service for s in back.states() if s.service in WRITERS and s.state in ("running", "restarting")]
        if writers:
            back.run("stop", *writers, capture=True)
        for configured, tag in kept.values():
            probe.docker("tag", tag, configured)
        if moved is not None:
            engine_hop.undo(back, moved, old_image=pinned[engine_hop.SERVICE].id)
        restore_set(back, set_dir, services=[], tools_image=compose.settings.tools_image,
                    confirm=lambda question: True, safety_dir=None)  # fmt: skip
        recreate = sorted(set(kept) | set(pinned))
        if recreate:
            back.run("up", "--detach", "--no-start", "--no-deps", "--force-recreate", *recreate, capture=True)
        lifecycle.start(back, services, build=False, wait=True, timeout=timeout)
    ui.success(f"rolled back: {', '.join(services)} run the previous images with the data of {set_dir.name}")
    for service, image in pinned.items():
        ui.warn(f"{service} ran its previous image {image.reference} for the rollback, but the env files still name "
                f"another: set its *_IMAGE value back to {image.reference} before the next `invoke start`")  # fmt: skip


def _record(compose: Compose, record: dict[str, Any], phases: Phases, outcome: str, cause: str) -> None:
    record |= {"outcome": outcome, "cause": cause, "phases": dict(phases.seconds)}
    path = history.append(compose.settings.backup_dir, record)
    ui.info(f"recorded in {path} ({outcome}); phases: {phases.line()}")
