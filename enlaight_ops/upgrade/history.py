"""The upgrade history: one JSON object per line (when, from and to which images, the set, the outcome), private
to its owner (0600) beside the backup sets it names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HISTORY_FILE = "upgrade-history.jsonl"


def history_path(backup_dir: Path) -> Path:
    return backup_dir / HISTORY_FILE


def append(backup_dir: Path, record: dict[str, Any]) -> Path:
    backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = history_path(backup_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file made before (or by hand) becomes private too
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read(backup_dir: Path) -> list[dict[str, Any]]:
    """Every record, oldest first; a line that is not a JSON object (a torn write) is skipped."""
    path = history_path(backup_dir)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
