"""The stack a backup reads from or a restore writes to, and the pieces every component kind shares."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..compose import Compose
from ..errors import Cancelled
from . import streams
from .streams import ComponentFailed, WrittenFile, pump_from_file, pump_to_file, stderr_file, tail_of

Progress = Callable[[int, int], None]  # raw bytes, bytes written
# Whose image the throwaway volume containers run when enlaight.tools_image is not set: an image the stack
# already has on this engine (so nothing is pulled, registry or not), with sh and tar in it.
TOOLS_SERVICE = "postgres"


class Processes(streams.Processes):
    """The dumps and loads run in a process group of their own. A terminal's Ctrl-C goes to its whole foreground
    group: each `docker compose exec/run` would die by itself in the middle of its write, before the toolkit knows
    it was an interrupt (a failure reported instead, a one-off container left behind). Kept out of that group, only
    the toolkit sees the Ctrl-C and stops them in order, and a roll back can run to its end."""

    def start(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return super().start(argv, process_group=0, **kwargs)


@dataclass
class Target:
    compose: Compose
    tools_image: str
    processes: Processes = field(default_factory=Processes)

    def __post_init__(self) -> None:
        self.processes.mask = self.compose.mask  # error tails of dumps and loads never show a secret

    @property
    def project(self) -> str:
        return self.compose.settings.project

    def service_config(self, service: str) -> Mapping[str, Any]:
        return self.compose.config.get("services", {}).get(service, {})

    def service_env(self, service: str, key: str) -> str:
        """A value of the service's environment as Compose interpolates it (read, never printed)."""
        return str((self.service_config(service).get("environment") or {}).get(key) or "")

    def image(self, service: str) -> str:
        return str(self.service_config(service).get("image") or "")

    @property
    def volume_tools_image(self) -> str:
        return self.tools_image or self.image(TOOLS_SERVICE)

    def volume_name(self, key: str) -> str:
        volume = self.compose.config.get("volumes", {}).get(key) or {}
        return str(volume.get("name") or f"{self.project}_{key}")

    def mount_target(self, service: str, volume_key: str) -> str:
        for mount in self.service_config(service).get("volumes") or []:
            if mount.get("type") == "volume" and mount.get("source") == volume_key:
                return str(mount["target"])
        raise ComponentFailed(f"{service} mounts no volume {volume_key}: the compose files changed")

    def exec_argv(self, service: str, script: str, *args: str) -> list[str]:
        """A fixed shell script run in a service's container; values reach it as arguments or its own env."""
        return self.compose.argv("exec", "-T", service, "sh", "-c", script, "sh", *args)

    def running(self, service: str) -> bool:
        return any(s.service == service and s.state == "running" for s in self.compose.states())

    def n8n_key_fingerprint(self) -> str | None:
        """A short digest of the N8N_ENCRYPTION_KEY this stack runs n8n with (the key itself is never stored):
        n8n data restored under another key has credentials nobody can read."""
        key = self.service_env("n8n", "N8N_ENCRYPTION_KEY")
        return hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


def parse_counts(text: str, separator: str) -> tuple[str, dict[str, int]]:
    """A database's version and row counts from its client's rows: ``@version<sep>10.11.6`` then ``table<sep>N``
    (MySQL's batch output separates with a tab, psql's unaligned output with ``|``)."""
    version, counts = "", {}
    for line in text.splitlines():
        if separator not in line:
            continue
        key, value = line.rsplit(separator, 1)
        if key == "@version":
            version = value.strip()
        elif value.strip().isdigit():
            counts[key] = int(value)
    return version, counts


class Component(Protocol):
    name: str
    service: str  # the service whose data this is (stopped or queried during restore)
    # A database is dumped and loaded through its running server; a volume is read by a throwaway container.
    needs_server: bool

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]: ...
    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None: ...
    def describe(self, part: Mapping[str, Any]) -> str: ...
    def restore(self, target: Target, set_dir: Path, part: Mapping[str, Any], progress: Progress) -> None: ...
    def counts(self, target: Target) -> dict[str, int]: ...


@contextlib.contextmanager
def _supervised(target: Target, process: subprocess.Popen, what: str, err: Any) -> Iterator[None]:
    """Around a pump: on any error kill and reap the command; afterwards fail with its last words if it failed."""
    try:
        yield
        returncode = process.wait()
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        raise
    finally:
        target.processes.done(process)
    if returncode != 0:
        if target.processes.cancelled.is_set():
            # Stopped by us (Ctrl-C, or a sibling failed): its exit status says nothing about the component.
            raise Cancelled("cancelled")
        raise ComponentFailed(f"{what} exited {returncode}: {tail_of(err, target.processes.mask)}")


def dump_to_file(
    target: Target, argv: list[str], path: Path, what: str, *, compress: bool, progress: Progress, tap=None
) -> WrittenFile:
    """Run a command whose stdout is a dump and stream it to `path`; fail with the command's last words."""
    with stderr_file() as err:
        process = target.processes.start(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        with _supervised(target, process, what, err):
            assert process.stdout is not None
            written = pump_to_file(
                process.stdout,
                path,
                compress=compress,
                on_progress=progress,
                cancelled=target.processes.cancelled,
                tap=tap,
            )
        return written


def load_from_file(
    target: Target, argv: list[str], path: Path, what: str, *, compressed: bool, progress: Progress
) -> None:
    """Feed a set file into a command's stdin (a restore); fail with the command's last words."""
    with stderr_file() as err:
        process = target.processes.start(argv, stdin=subprocess.PIPE, stdout=err, stderr=err)
        with _supervised(target, process, what, err):
            assert process.stdin is not None
            # BrokenPipeError: the command stopped reading; its exit status and stderr say why.
            with contextlib.suppress(BrokenPipeError):
                pump_from_file(
                    path,
                    process.stdin,
                    compressed=compressed,
                    on_progress=lambda raw: progress(raw, raw),
                    cancelled=target.processes.cancelled,
                )
