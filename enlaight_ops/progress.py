"""How waiting looks: a live table (or a spinner for a build) on a terminal, plain lines anywhere else (CI, pipes)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.live import Live
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
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


# -- long builds ------------------------------------------------------------------------------------------------

# `Step 5/12 : RUN ...` (classic builder), `#7 [build 3/6] RUN ...` (BuildKit), `I: Retrieving ...`
# (debootstrap: its phase, not one line per package).
_STEP = re.compile(r"^(?:Step (\d+/\d+) : (.*)|#\d+ \[[^\]]*?(\d+/\d+)\] (.*)|I: (\w+)\b.*)$")


def build_step(line: str) -> str | None:
    """The step a build output line starts, as 'step 5/12: RUN npm ci', or None."""
    match = _STEP.match(line.strip())
    if not match:
        return None
    number, text = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    if number:
        return f"step {number}: {text.strip()[:80]}"
    return match.group(5).strip()[:80]


class BuildProgress:
    """On a terminal a spinner with the current step and the time elapsed; elsewhere one line per step."""

    def __init__(self, what: str, log: Callable[[str], object]) -> None:
        self._what, self._log = what, log
        self._started = time.monotonic()
        self._step = ""
        self._live: Progress | None = None
        if ui.err.is_terminal:
            self._live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=ui.err, transient=True)  # fmt: skip
            self._task = self._live.add_task(what)
            self._live.start()

    def line(self, line: str) -> None:
        step = build_step(line)
        if step is None or step == self._step:
            return
        self._step = step
        if self._live is not None:
            self._live.update(self._task, description=f"{self._what}: {step}")
        else:
            self._log(f"{self._what}: {step} ({time.monotonic() - self._started:.0f}s)")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()


@contextlib.contextmanager
def build_progress(what: str, log: Callable[[str], object]) -> Iterator[BuildProgress]:
    progress = BuildProgress(what, log)
    try:
        yield progress
    finally:
        progress.close()
