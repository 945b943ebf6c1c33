"""What a seed step did: created, updated, already there, removed; and how that reads in one line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import SeedError


@dataclass
class StepReport:
    step: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # the one-line reason a step did not run

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def merge(self, other: StepReport | dict) -> None:
        """Add another report's items (a StepReport, or the JSON dict of the backend's seed_sample)."""
        data = other.__dict__ if isinstance(other, StepReport) else other
        for name in ("created", "updated", "existing", "removed", "warnings"):
            getattr(self, name).extend(str(item) for item in data.get(name) or ())

    def summary(self) -> str:
        if self.skipped:
            return f"{self.step}: skipped: {self.skipped}"
        if not self.changed:
            return f"{self.step}: nothing to create, {_count(len(self.existing), 'item')} already there"
        parts = [
            f"{label} {len(items)}"
            for label, items in (("removed", self.removed), ("created", self.created), ("updated", self.updated))
            if items
        ]
        return f"{self.step}: {', '.join(parts)}; {len(self.existing)} already there"

    def lines(self) -> Iterable[tuple[str, str]]:
        """(kind, text) for every change; `existing` stays a count in the summary."""
        for kind, items in (("removed", self.removed), ("created", self.created), ("updated", self.updated)):
            for item in items:
                yield kind, f"{self.step}: {kind} {item}"
        for warning in self.warnings:
            yield "warning", f"{self.step}: {warning}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def parse_command_report(text: str) -> dict:
    """The JSON object the backend's `seed_sample --json` prints last (Django may print lines before it)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(data, dict):
                return data
    raise SeedError(f"seed_sample printed no JSON report: {text.strip()[-300:] or 'no output'}")
