"""Output for people: coloured lines on a terminal, plain lines elsewhere; errors on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _line(symbol: str, style: str, message: str) -> None:
    # Text, not markup: messages carry user input and command output that may contain brackets.
    err.print(Text.assemble((symbol, style), " ", message))


def info(message: str) -> None:
    _line("›", "cyan", message)


def success(message: str) -> None:
    _line("✓", "green", message)


def warn(message: str) -> None:
    _line("!", "yellow", message)


def error(message: str) -> None:
    _line("error:", "bold red", message)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    out.print(grid)


def human_size(size: float) -> str:
    """Bytes for people, in SI units: 512 B, 1.5 kB, 20.3 MB."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
