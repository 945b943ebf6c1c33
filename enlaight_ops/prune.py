"""Remove what this stack left behind, and nothing else.

The plan is pure (it takes the project's inventory, already scoped by the engine to this project's label) so
tests can check what would go without Docker; `execute` removes exactly the planned objects by id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import inventory as engine_objects
from . import ui
from .errors import ToolkitError, UsageError
from .inventory import Resource


@dataclass(frozen=True)
class Inventory:
    containers: list[Resource] = field(default_factory=list)
    networks: list[Resource] = field(default_factory=list)
    images: list[Resource] = field(default_factory=list)
    volumes: list[Resource] = field(default_factory=list)


@dataclass(frozen=True)
class PrunePlan:
    remove: list[Resource]
    kept: list[tuple[Resource, str]]  # what matched the flags but stays, and why

    @property
    def reclaimable(self) -> int:
        return sum(r.size for r in self.remove)


def plan(inventory: Inventory, *, images: bool = False, dangling: bool = False, volumes: bool = False) -> PrunePlan:
    remove: list[Resource] = []
    kept: list[tuple[Resource, str]] = []

    stopped = [c for c in inventory.containers if not c.in_use]
    remove += stopped
    # The engine lists only running containers as attached to a network.
    remove += [n for n in inventory.networks if not n.in_use]
    kept += [(n, "a running container is attached") for n in inventory.networks if n.in_use]

    if images or dangling:
        for image in inventory.images:
            wanted = images or image.detail == "untagged"
            if not wanted:
                continue
            if image.in_use:
                kept.append((image, "a container that stays uses it"))
            else:
                remove.append(image)
    if volumes:
        leaving = {c.name for c in stopped}
        for volume in inventory.volumes:
            staying_users = set(filter(None, volume.detail.split(", "))) - leaving
            if staying_users:
                kept.append((volume, f"mounted by {', '.join(sorted(staying_users))}"))
            else:
                remove.append(volume)
    return PrunePlan(remove, kept)


def inventory(project: str, *, with_sizes: bool) -> Inventory:
    return Inventory(
        containers=engine_objects.containers(project),
        networks=engine_objects.networks(project),
        images=engine_objects.images(project),
        volumes=engine_objects.volumes(project, with_sizes=with_sizes),
    )


def execute(prune_plan: PrunePlan, on_removed: Callable[[Resource], None]) -> list[tuple[Resource, str]]:
    """Remove in dependency order (containers before the networks, images and volumes they hold)."""
    order = {"container": 0, "network": 1, "image": 2, "volume": 3}
    failures = []
    for resource in sorted(prune_plan.remove, key=lambda r: order[r.kind]):
        try:
            engine_objects.remove(resource)
            on_removed(resource)
        except Exception as exc:  # noqa: BLE001 - report every object that could not go, then fail once
            failures.append((resource, str(exc)))
    return failures


def run(
    project: str, *, dry_run: bool, images: bool, dangling: bool, volumes: bool, confirm: Callable[[str], bool]
) -> None:
    """`invoke prune`: show the plan, ask before deleting data, remove, and fail once for what could not go."""
    prune_plan = plan(inventory(project, with_sizes=volumes), images=images, dangling=dangling, volumes=volumes)
    rows = [(r.kind, r.name, ui.human_size(r.size) if r.size else "", "remove") for r in prune_plan.remove]
    rows += [(r.kind, r.name, ui.human_size(r.size) if r.size else "", f"keep: {why}") for r, why in prune_plan.kept]
    ui.table(f"prune project {project}", ["kind", "name", "size", "action"], rows)
    if not prune_plan.remove:
        ui.success("nothing to remove")
        return
    if dry_run:
        reclaimable = ui.human_size(prune_plan.reclaimable)
        ui.success(f"dry run: {len(prune_plan.remove)} object(s), {reclaimable} would be reclaimed")
        return
    doomed_volumes = [r for r in prune_plan.remove if r.kind == "volume"]
    if doomed_volumes:
        ui.warn(f"{len(doomed_volumes)} volume(s) hold this project's data; consider `invoke backup` first")
        if not confirm(f"delete {', '.join(v.name for v in doomed_volumes)}?"):
            raise UsageError("volumes not confirmed: nothing was removed (pass --yes, or drop --volumes)")
    failures = execute(prune_plan, lambda r: ui.success(f"removed {r.kind} {r.name}"))
    removed = len(prune_plan.remove) - len(failures)
    reclaimed = prune_plan.reclaimable - sum(r.size for r, _ in failures)
    ui.success(f"removed {removed} object(s), reclaimed {ui.human_size(reclaimed)}")
    for resource, why in failures:
        ui.error(f"could not remove {resource.kind} {resource.name}: {why}")
    if failures:
        raise ToolkitError(f"{len(failures)} object(s) could not be removed (see above)")
