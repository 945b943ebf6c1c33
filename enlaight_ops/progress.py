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


# What the live table costs must stay within 2% of one core of what plain lines cost (bench/bench_wait.py). A
# healthcheck's output changes only when its probe runs (every few seconds), so it is read (`docker inspect`)
# when a service's state changes, then at most this often while the service is still waiting; and the table is
# redrawn when a state or an output changes, and for the time waited alone at most every CLOCK_REDRAW seconds
# (one redraw is ~7 ms of CPU), not on a 4 Hz timer.
HEALTH_OUTPUT_REFRESH = 5.0
CLOCK_REDRAW = 2.0


class LiveTableReporter:
    """Service, state, time waited and the newest healthcheck output, redrawn in place."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._settled: dict[str, float] = {}
        self._outputs: dict[str, str] = {}
        self._read: dict[str, tuple[float, str, str]] = {}  # container -> (when, status, reason) of the last read
        self._rows: tuple[tuple[str, str, str, str, str], ...] = ()
        self._drawn_at = 0.0
        self._live = Live(console=ui.err, auto_refresh=False, transient=False)
        self._live.start()

    def change(self, verdict: ServiceVerdict) -> None:
        if verdict.status == "waiting":
            self._settled.pop(verdict.service, None)
        else:
            self._settled.setdefault(verdict.service, time.monotonic() - self._started)

    def _outputs_due(self, verdict: StackVerdict, now: float) -> list[str]:
        due = []
        for service in verdict.services:
            if not service.container:
                continue
            when, status, reason = self._read.get(service.container, (0.0, "", ""))
            changed = (status, reason) != (service.status, service.reason)
            if changed or (service.status == "waiting" and now - when >= HEALTH_OUTPUT_REFRESH):
                due.append(service.container)
                self._read[service.container] = (now, service.status, service.reason)
        return due

    def poll(self, verdict: StackVerdict) -> None:
        now = time.monotonic()
        due = self._outputs_due(verdict, now)
        if due:
            outputs = last_health_outputs(due)
            self._outputs.update({name: outputs.get(name, "") for name in due})
        waited = now - self._started
        rows = tuple(
            (service.service, service.reason, service.status, f"{self._settled.get(service.service, waited):.0f}s",
             self._outputs.get(service.container, ""))
            for service in verdict.services
        )  # fmt: skip
        if rows == self._rows:
            return
        clock_only = [(r[:3], r[4]) for r in rows] == [(r[:3], r[4]) for r in self._rows]
        if clock_only and now - self._drawn_at < CLOCK_REDRAW:
            return
        self._rows, self._drawn_at = rows, now
        table = Table(title="waiting for the stack", title_justify="left")
        for column in ("service", "state", "waited", "last health output"):
            table.add_column(column)
        for service, reason, status, waited, output in rows:
            # Text, not markup: reasons and health output are arbitrary text.
            table.add_row(service, Text(reason, style=_STYLE[status]), waited, Text(output))
        self._live.update(table, refresh=True)

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
