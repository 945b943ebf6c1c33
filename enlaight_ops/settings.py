"""Which stack a task talks to: project name, environment, compose files, env files, timeouts.

Values come from invoke's configuration (defaults in tasks.py, overridden by invoke.yaml or INVOKE_ENLAIGHT_*
environment variables) and from the `--prod` flag, which wins over both.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import UsageError

Environment = Literal["dev", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "prod")

BASE_FILE = "docker-compose.yml"
OVERLAY_FILES: dict[Environment, str] = {
    "dev": "docker-compose.override.yml",
    "prod": "docker-compose.prod.yml",
}
# Written by `invoke images.local`; loaded after .env so its image overrides win.
LOCAL_IMAGES_ENV_FILE = "local-images.env"
SAMPLE_FILE = "env.sample"

DEFAULTS: dict[str, Any] = {
    "project": "enlaight",
    "env": "dev",
    "env_file": ".env",
    "wait_timeout": 300,
    # The command that runs Compose v2. Set it to a standalone v2 binary when the docker plugin is absent.
    "compose_command": "docker compose",
    # Backups (enlaight_ops.backup): where sets go, and the image of the throwaway containers that tar volumes
    # ("" = the stack's own postgres image: already on the engine, has sh and tar, never needs a pull).
    "backup_dir": "backups",
    "tools_image": "",
    # Where images come from: auto (present, else pulled, else built locally when no registry answers),
    # registry (always pull, never build locally), local (never pull: build registry-free images).
    "images": "auto",
    # The registry Swarm nodes pull the stack's own and local images from (`invoke build --push`), e.g.
    # registry.example:5000; "" = none (a single-node swarm can run the images this engine has).
    "registry": "",
}
IMAGE_POLICIES = ("auto", "registry", "local")

# Compose's own rule for project names.
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class StackSettings:
    root: Path
    project: str
    env: Environment
    env_files: tuple[Path, ...]
    compose_command: tuple[str, ...]
    wait_timeout: float
    images: str = "auto"
    backup_dir: Path = Path("backups")
    tools_image: str = ""

    @property
    def compose_files(self) -> tuple[Path, ...]:
        return (self.root / BASE_FILE, self.root / OVERLAY_FILES[self.env])

    @property
    def primary_env_file(self) -> Path:
        return self.env_files[0]

    @property
    def local_images_env_file(self) -> Path:
        return self.root / LOCAL_IMAGES_ENV_FILE

    @property
    def images_dir(self) -> Path:
        """The registry-free image recipes (one folder per image)."""
        return self.root / "images"

    @property
    def sample_file(self) -> Path:
        """env.sample: every key the stack reads, with its default or placeholder."""
        return self.root / SAMPLE_FILE

    def path(self, value: str | Path) -> Path:
        """A path a person gave: relative ones are relative to the stack, not to the current directory."""
        return _resolve(self.root, str(value))

    def describe(self) -> str:
        files = " + ".join(f.name for f in self.compose_files)
        return f"env {self.env} · project {self.project} · {files}"


def load_settings(config: Mapping[str, Any] | None = None, *, root: Path, prod: bool = False) -> StackSettings:
    """`root`: the stack's directory (tasks.py's), the one root every path of the stack is relative to."""
    values = {**DEFAULTS, **dict(config or {})}
    root = Path(root).resolve()

    env = "prod" if prod else str(values["env"])
    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment {env!r}: use one of {', '.join(ENVIRONMENTS)} (enlaight.env)")

    project = str(values["project"])
    if not _PROJECT_NAME.match(project):
        raise UsageError(
            f"invalid project name {project!r}: use lowercase letters, digits, '-' and '_' (enlaight.project)"
        )

    images = str(values["images"])
    if images not in IMAGE_POLICIES:
        raise UsageError(f"unknown image policy {images!r}: use one of {', '.join(IMAGE_POLICIES)} (enlaight.images)")

    # local-images.env is listed even before it exists: the image policy may write it during `start`, and
    # every reader skips an env file that is not there.
    env_files = [_resolve(root, str(values["env_file"])), root / LOCAL_IMAGES_ENV_FILE]

    compose_command = tuple(shlex.split(str(values["compose_command"])))
    return StackSettings(
        root=root,
        project=project,
        env=env,  # type: ignore[arg-type]
        env_files=tuple(env_files),
        compose_command=compose_command,
        wait_timeout=float(values["wait_timeout"]),
        images=images,
        backup_dir=_resolve(root, str(values["backup_dir"])),
        tools_image=str(values["tools_image"]),
    )


def _resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate
