"""Go-style durations as Compose prints them ("2s", "2m0s", "1m30s", "500ms") and as a stack file takes them."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | int | float | None) -> float | None:
    """Seconds, or None for an absent value. A bare number is taken as nanoseconds, as Compose's JSON does."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        return float(text) / 1e9
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Whole seconds, the way people write them in a stack file: 20s, 2m10s."""
    whole = int(round(seconds))
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
