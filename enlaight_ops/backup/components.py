"""Which components a stack has, and which of them `-s SERVICE ...` selects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError
from .mysql import MySQL
from .postgres import Postgres
from .redis import Redis
from .target import Component
from .volume import Volume, stateful_volumes

# Services whose writes must stop while a restore replaces the data under them.
WRITERS = ("backend", "n8n", "superset")


def all_components(config: Mapping[str, Any]) -> list[Component]:
    services = config.get("services", {})
    found: list[Component] = [kind() for kind in (MySQL, Postgres, Redis) if kind.service in services]
    found += [Volume(key, owner) for key, owner in stateful_volumes(config).items()]
    return found


def select(components: Sequence[Component], requested: Sequence[str]) -> list[Component]:
    """`-s` takes a service (mysql, n8n, superset ...) or a component name (n8n_data); none means all."""
    if not requested:
        return list(components)
    chosen: list[Component] = []
    for name in requested:
        matches = [c for c in components if name in (c.name, c.service)]
        if not matches:
            valid = sorted({c.name for c in components} | {c.service for c in components})
            raise UsageError(f"{name} holds no data to back up or restore: choose from {', '.join(valid)}")
        chosen += [c for c in matches if c not in chosen]
    return chosen
