"""Bytes per component while a backup or restore runs: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import ui

_PLAIN_EVERY = 10.0  # seconds between progress lines when not on a terminal
_STYLE = {"waiting": "dim", "running": "yellow", "done": "green", "failed": "bold red", "cancelled": "dim"}


class Board:
    def __init__(self, title: str, names: Sequence[str]) -> None:
        self._title = title
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._raw = dict.fromkeys(names, 0)
        self._written = dict.fromkeys(names, 0)
        self._state = dict.fromkeys(names, "waiting")
        self._detail = dict.fromkeys(names, "")
        self._since = dict.fromkeys(names, 0.0)
        self._last_plain = time.monotonic()
        self._live = Live(console=ui.err, refresh_per_second=4, transient=False) if ui.err.is_terminal else None
        if self._live:
            self._live.start()

    def progress(self, name: str):
        def update(raw: int, written: int) -> None:
            self._raw[name], self._written[name] = raw, written

        return update

    def state(self, name: str, state: str, detail: str = "") -> None:
        with self._lock:
            self._state[name], self._detail[name] = state, detail
            if state == "running":
                self._since[name] = time.monotonic()
            elif state in ("done", "failed"):
                self._since[name] = time.monotonic() - self._since[name]
        if self._live is None:
            line = f"{name}: {state}" + (f" ({detail})" if detail else "")
            # A failed component is a warning here: the operation's own error line is the one verdict.
            {"failed": ui.warn, "done": ui.success}.get(state, ui.info)(line)

    def tick(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
        elif time.monotonic() - self._last_plain >= _PLAIN_EVERY:
            self._last_plain = time.monotonic()
            for name, state in self._state.items():
                if state == "running":
                    ui.info(
                        f"{name}: {ui.human_size(self._raw[name])} read, {ui.human_size(self._written[name])} written"
                    )

    def _table(self) -> Table:
        table = Table(title=self._title, title_justify="left")
        for column in ("component", "state", "read", "written", "time"):
            table.add_column(column)
        now = time.monotonic()
        for name, state in self._state.items():
            elapsed = now - self._since[name] if state == "running" else self._since[name]
            table.add_row(
                name,
                Text(self._detail[name] or state, style=_STYLE.get(state, "")),
                ui.human_size(self._raw[name]),
                ui.human_size(self._written[name]),
                f"{elapsed:.1f}s" if state != "waiting" else "",
            )
        return table

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
