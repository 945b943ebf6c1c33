"""How waiting looks: a live table on a terminal, one plain line per state change anywhere else (CI, pipes)."""

from __future__ import annotations

import time
from typing import Protocol

from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import ui
from .health import ServiceVerdict, StackVerdict, last_health_outputs

_STYLE = {"ready": "green", "waiting": "yellow", "failed": "bold red"}


class Reporter(Protocol):
    def change(self, verdict: ServiceVerdict) -> None: ...
    def poll(self, verdict: StackVerdict) -> None: ...
    def close(self) -> None: ...


class LineReporter:
    """No control codes: each state change is one line, readable in a CI log."""

    def change(self, verdict: ServiceVerdict) -> None:
        line = f"{verdict.service}: {verdict.reason}"
        {"ready": ui.success, "waiting": ui.info, "failed": ui.error}[verdict.status](line)

    def poll(self, verdict: StackVerdict) -> None:
        pass

    def close(self) -> None:
        pass


class LiveTableReporter:
    """Service, state, time waited and the newest healthcheck output, redrawn in place."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._settled: dict[str, float] = {}
        self._live = Live(console=ui.err, refresh_per_second=4, transient=False)
        self._live.start()

    def change(self, verdict: ServiceVerdict) -> None:
        if verdict.status == "waiting":
            self._settled.pop(verdict.service, None)
        else:
            self._settled.setdefault(verdict.service, time.monotonic() - self._started)

    def poll(self, verdict: StackVerdict) -> None:
        outputs = last_health_outputs([s.container for s in verdict.services])
        table = Table(title="waiting for the stack", title_justify="left")
        for column in ("service", "state", "waited", "last health output"):
            table.add_column(column)
        now = time.monotonic() - self._started
        for service in verdict.services:
            waited = self._settled.get(service.service, now)
            # Text, not markup: reasons and health output are arbitrary text.
            table.add_row(service.service, Text(service.reason, style=_STYLE[service.status]), f"{waited:.1f}s",
                          Text(outputs.get(service.container, "")))  # fmt: skip
        self._live.update(table)

    def close(self) -> None:
        self._live.stop()


def reporter() -> Reporter:
    return LiveTableReporter() if ui.err.is_terminal else LineReporter()
