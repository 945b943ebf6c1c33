"""Crossing a PostgreSQL major version: dump and restore into a fresh volume, never the new server on old files.

The dump is the verified pre-upgrade set's. The old data volume is copied, whole, to `<volume>-pg<major>-<time>`
(Docker cannot rename a volume), labelled with the project so `invoke prune --volumes` lists it; the original is
then removed, Compose creates a fresh one, the new server initialises it and the set's PostgreSQL part is
restored into it. Undoing puts the kept copy back into a fresh volume of the original name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import ui
from ..backup import restore_set
from ..compose import Compose
from ..errors import ToolkitError
from . import probe

SERVICE = "postgres"
DATA_DIR = "/var/lib/postgresql/data"
PROJECT_LABEL = "com.docker.compose.project"
KEPT_LABEL = "org.enlaight.upgrade.kept-from"


@dataclass(frozen=True)
class KeptVolume:
    volume: str  # the volume the server runs on
    kept: str  # the copy of its old contents


def data_volume(compose: Compose) -> str:
    config = compose.config
    for mount in config["services"][SERVICE].get("volumes") or []:
        if mount.get("type") == "volume" and mount.get("target") == DATA_DIR:
            key = mount["source"]
            return str((config.get("volumes", {}).get(key) or {}).get("name") or f"{compose.settings.project}_{key}")
    raise ToolkitError(f"{SERVICE} keeps no named volume at {DATA_DIR}: the compose files changed")


def _copy(image: str, source: str, target: str) -> None:
    probe.docker("run", "--rm", "--pull", "never", "--network", "none", "-v", f"{source}:/from:ro",
                 "-v", f"{target}:/to", "--entrypoint", "sh", image, "-c", "cp -a /from/. /to/")  # fmt: skip


def _tools_image(compose: Compose, fallback: str) -> str:
    return compose.settings.tools_image or fallback


def cross(compose: Compose, set_dir: Path, *, old_major: str, old_image: str, stamp: str) -> KeptVolume:
    """Stop the server, keep its volume as a copy, start the new version on a fresh volume, restore the set."""
    volume = data_volume(compose)
    kept = KeptVolume(volume, f"{volume}-pg{old_major}-{stamp}")
    ui.info(f"PostgreSQL major change: keeping {volume} as {kept.kept}, then dump and restore into a fresh volume")
    compose.run("stop", SERVICE, capture=True)
    probe.docker("volume", "create", "--label", f"{PROJECT_LABEL}={compose.settings.project}",
                 "--label", f"{KEPT_LABEL}={volume}", kept.kept)  # fmt: skip
    _copy(_tools_image(compose, old_image), volume, kept.kept)
    compose.run("rm", "--stop", "--force", SERVICE, capture=True)
    probe.docker("volume", "rm", volume)
    compose.run("up", "--detach", "--no-deps", "--wait", SERVICE, capture=True)  # Compose makes the fresh volume
    restore_set(compose, set_dir, services=[SERVICE], tools_image=compose.settings.tools_image,
                confirm=lambda question: True, safety_dir=None)  # fmt: skip
    ui.success(f"PostgreSQL data restored into a fresh {volume}; the old one is kept as {kept.kept} "
               "(`invoke prune --volumes` removes it)")  # fmt: skip
    return kept


def undo(compose: Compose, kept: KeptVolume, *, old_image: str) -> None:
    """The old files back under the original name (the copy stays too), for the previous server to run on."""
    ui.warn(f"putting PostgreSQL's previous data back into {kept.volume} from {kept.kept}")
    compose.run("rm", "--stop", "--force", SERVICE, capture=True)
    probe.docker("volume", "rm", "--force", kept.volume)
    compose.run("up", "--no-start", "--no-deps", SERVICE, capture=True)  # a fresh volume, labelled by Compose
    _copy(_tools_image(compose, old_image), kept.kept, kept.volume)
    compose.run("rm", "--stop", "--force", SERVICE, capture=True)  # recreated with the previous image
