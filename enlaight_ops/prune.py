"""Remove what this stack left behind, and nothing else.

The plan is pure (it takes the project's inventory, already scoped by the engine to this project's label) so
tests can check what would go without Docker; `execute` removes exactly the planned objects by id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import engine
from .engine import Resource


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
        containers=engine.containers(project),
        networks=engine.networks(project),
        images=engine.images(project),
        volumes=engine.volumes(project, with_sizes=with_sizes),
    )


def execute(prune_plan: PrunePlan, on_removed: Callable[[Resource], None]) -> list[tuple[Resource, str]]:
    """Remove in dependency order (containers before the networks, images and volumes they hold)."""
    order = {"container": 0, "network": 1, "image": 2, "volume": 3}
    failures = []
    for resource in sorted(prune_plan.remove, key=lambda r: order[r.kind]):
        try:
            engine.remove(resource)
            on_removed(resource)
        except Exception as exc:  # noqa: BLE001 - report every object that could not go, then fail once
            failures.append((resource, str(exc)))
    return failures
