"""Named volumes that hold state outside the databases (n8n's data with its encryption key, Superset's home).

Each is read and written by a throwaway container that mounts the volume (`enlaight.tools_image`, by default the
stack's own postgres image: already on this engine, with sh and tar), so the service owning it need not run.

A live volume (n8n writes its event log and binary data while it runs) is archived consistently: when GNU tar says
a file changed, shrank or vanished while it read it (exit 1), the pass is thrown away and the volume read again;
files settle between bursts, so a second pass usually sees none. If ATTEMPTS passes all saw changes, the containers
writing to the volume are paused (docker pause: frozen, connections kept, nothing restarted) for one last pass and
resumed right after it. A change is never archived half-read, and never fails the backup by itself. The manifest
records how many passes it took and which containers were paused.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import Cancelled
from ..runner import run
from .manifest import part_file
from .streams import ComponentFailed, pump_to_file, run_bytes, stderr_file, tail_of
from .target import Progress, Target, load_from_file

MOUNT = "/volume"
# Volumes whose content the database dumps already hold consistently: a file copy of a live database is not one.
DATABASE_VOLUMES = frozenset({"mysql_data", "postgres_data", "redis_data"})
_BLOCK = 512
ATTEMPTS = 3  # read-only passes before the writers are paused for the last one
TAR_CHANGED = 1  # GNU tar's exit status when a file changed, shrank or vanished while it was archived


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


def running_writers(volume: str) -> list[str]:
    """The running containers that mount `volume` (the service owning it, and anything else writing to it)."""
    argv = ["docker", "ps", "--filter", f"volume={volume}", "--filter", "status=running", "--format", "{{.Names}}"]
    return sorted(run(argv, what=f"listing the containers using {volume}").stdout.split())


@contextlib.contextmanager
def paused_containers(target: Target, names: Sequence[str]) -> Iterator[None]:
    """`names` frozen (docker pause) while the block runs, and resumed after it whatever happens (even Ctrl-C)."""
    if not names:
        yield
        return
    run(["docker", "pause", *names], what="docker pause", mask=target.processes.mask)
    try:
        yield
    finally:
        run(["docker", "unpause", *names], what="docker unpause", mask=target.processes.mask)


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
        self.stem = f"volume-{key}.tar"
        self.file = f"{self.stem}.zst"

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
        path = set_dir / self.file
        volume = target.volume_name(self.name)
        for attempt in range(1, ATTEMPTS + 2):
            # The last pass freezes whoever writes to the volume (found now: a writer may have started meanwhile).
            paused = running_writers(volume) if attempt > ATTEMPTS else []
            stats = TarStats()
            with paused_containers(target, paused):
                returncode, written, tail = self._archive(target, path, progress, stats)
            if returncode == 0:
                break
            if target.processes.cancelled.is_set():
                raise Cancelled("cancelled")  # tar was stopped by us: its exit status says nothing about the volume
            if returncode != TAR_CHANGED:
                raise ComponentFailed(f"{self.name}: tar exited {returncode}: {tail}")
            if attempt > ATTEMPTS:
                frozen = ", ".join(paused) or "no container (none was running)"
                raise ComponentFailed(f"{self.name}: files kept changing while archived, even with {frozen} paused "
                                      f"({tail}): something outside Docker writes to the volume")  # fmt: skip
        return {
            "kind": "volume",
            "service": self.service,
            "volume": self.name,
            "files": [self.file],
            "checksums": {self.file: written.sha256},
            "bytes": written.bytes,
            "raw_bytes": written.raw_bytes,
            "row_counts": stats.as_counts(),
            "passes": attempt,
            "paused": paused,
        }

    def _archive(self, target: Target, path: Path, progress: Progress, stats: TarStats):
        """One tar pass of the volume into `path`: tar's exit status, the file written, tar's last words."""
        with stderr_file() as err:
            process = target.processes.start(
                self._tar_argv(target), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
            try:
                assert process.stdout is not None
                written = pump_to_file(
                    process.stdout,
                    path,
                    compress=True,
                    on_progress=progress,
                    cancelled=target.processes.cancelled,
                    tap=stats.feed,
                )
                returncode = process.wait()
            except BaseException:
                if process.poll() is None:
                    process.kill()
                process.wait()
                raise
            finally:
                target.processes.done(process)
            return returncode, written, tail_of(err, target.processes.mask)

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
        path = set_dir / part_file(part, self.stem)
        load_from_file(target, argv, path, f"{self.name}: tar", compressed=True, progress=progress)
