"""Named volumes that hold state outside the databases (n8n's data with its encryption key, Superset's home).

Each is read and written by a throwaway container that mounts the volume (`enlaight.tools_image`, by default the
stack's own postgres image: already on this engine, with sh and tar), so the service owning it need not run.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..runner import run
from .streams import ComponentFailed, run_bytes
from .target import Progress, Target, dump_to_file, load_from_file

MOUNT = "/volume"
# Volumes whose content the database dumps already hold consistently: a file copy of a live database is not one.
DATABASE_VOLUMES = frozenset({"mysql_data", "postgres_data", "redis_data"})
_BLOCK = 512


class TarStats:
    """Counts regular files and their bytes in a tar stream as it passes, reading only the headers."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self._skip = 0
        self._header = b""

    def feed(self, data: bytes) -> None:
        position, size = 0, len(data)
        while position < size:
            if self._skip:
                step = min(self._skip, size - position)
                self._skip -= step
                position += step
                continue
            take = min(_BLOCK - len(self._header), size - position)
            self._header += data[position : position + take]
            position += take
            if len(self._header) == _BLOCK:
                header, self._header = self._header, b""
                self._on_header(header)

    def _on_header(self, header: bytes) -> None:
        if not header.strip(b"\0"):
            return  # the end-of-archive blocks
        member_size = _tar_number(header[124:136])
        if header[156:157] in (b"0", b"\0", b"7"):
            self.files += 1
            self.bytes += member_size
        self._skip = -(-member_size // _BLOCK) * _BLOCK

    def as_counts(self) -> dict[str, int]:
        return {"files": self.files, "bytes": self.bytes}


def _tar_number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes >= 8 GiB
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def docker_run_argv(target: Target, volume: str, *command: str, read_only: bool, purpose: str) -> list[str]:
    name = f"{target.project}-{purpose}-{uuid.uuid4().hex[:8]}"
    mount = f"{volume}:{MOUNT}" + (":ro" if read_only else "")
    return [
        "docker",
        "run",
        "--rm",
        "-i",
        "--name",
        name,
        "--network",
        "none",
        "--label",
        f"enlaight.backup.project={target.project}",
        "--volume",
        mount,
        target.volume_tools_image,
        *command,
    ]


def volume_exists(name: str) -> bool:
    return run(["docker", "volume", "inspect", name], check=False).ok


def create_volume(target: Target, key: str) -> None:
    """Create the volume as Compose would (its labels), so the stack adopts it without a warning."""
    argv = [
        "docker",
        "volume",
        "create",
        "--label",
        f"com.docker.compose.project={target.project}",
        "--label",
        f"com.docker.compose.volume={key}",
        target.volume_name(key),
    ]
    run_bytes(target.processes, argv, f"{key}: docker volume create")


def stateful_volumes(config: Mapping[str, Any]) -> dict[str, str]:
    """Volume key -> the first service mounting it, for every named volume the dumps do not cover."""
    owners: dict[str, str] = {}
    for service, spec in sorted(config.get("services", {}).items()):
        for mount in spec.get("volumes") or []:
            source = mount.get("source")
            if mount.get("type") == "volume" and source and source not in DATABASE_VOLUMES:
                owners.setdefault(source, service)
    return {key: owners[key] for key in sorted(owners)}


class Volume:
    needs_server = False

    def __init__(self, key: str, service: str) -> None:
        self.name = key
        self.service = service
        self.file = f"volume-{key}.tar.gz"

    def exists(self, target: Target) -> bool:
        return volume_exists(target.volume_name(self.name))

    def _tar_argv(self, target: Target) -> list[str]:
        return docker_run_argv(
            target,
            target.volume_name(self.name),
            "tar",
            "--numeric-owner",
            "-C",
            MOUNT,
            "-cf",
            "-",
            ".",
            read_only=True,
            purpose="backup",
        )

    def counts(self, target: Target) -> dict[str, int]:
        stats = TarStats()
        with subprocess.Popen(self._tar_argv(target), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as tar:
            assert tar.stdout is not None
            while chunk := tar.stdout.read(1 << 20):
                stats.feed(chunk)
        if tar.returncode != 0:
            raise ComponentFailed(f"{self.name}: reading the volume failed (exit {tar.returncode})")
        return stats.as_counts()

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]:
        stats = TarStats()
        written = dump_to_file(
            target,
            self._tar_argv(target),
            set_dir / self.file,
            f"{self.name}: tar",
            compress=True,
            progress=progress,
            tap=stats.feed,
        )
        return {
            "kind": "volume",
            "service": self.service,
            "volume": self.name,
            "files": [self.file],
            "checksums": {self.file: written.sha256},
            "bytes": written.bytes,
            "raw_bytes": written.raw_bytes,
            "row_counts": stats.as_counts(),
        }

    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None:
        pass  # a tar restores into any volume

    def describe(self, part: Mapping[str, Any]) -> str:
        counts = part.get("row_counts", {})
        return f"volume {self.name} is emptied and refilled ({counts.get('files', '?')} files)"

    def restore(self, target: Target, set_dir: Path, part: Mapping[str, Any], progress: Progress) -> None:
        volume = target.volume_name(self.name)
        if not volume_exists(volume):
            create_volume(target, self.name)
        script = f"set -e; find {MOUNT} -mindepth 1 -delete; exec tar --numeric-owner -C {MOUNT} -xpf -"
        argv = docker_run_argv(target, volume, "sh", "-c", script, read_only=False, purpose="restore")
        load_from_file(target, argv, set_dir / self.file, f"{self.name}: tar", compressed=True, progress=progress)
