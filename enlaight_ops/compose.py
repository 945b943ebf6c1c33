"""The one place that builds and runs `docker compose` commands.

Every command is an argv list (never a shell string) carrying the project name, project directory, compose
files and env files of the selected stack, so two copies of the stack never mix. Output that scripts need
(ps, config) is parsed from Compose's JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .envfile import mask_text, parse_env
from .errors import UsageError
from .runner import Result, run
from .settings import StackSettings


@dataclass(frozen=True)
class ContainerState:
    """One container of the project as `docker compose ps` reports it."""

    service: str
    name: str
    state: str  # created | running | restarting | exited | paused | dead | removing
    health: str  # "" when the service has no healthcheck; else starting | healthy | unhealthy
    exit_code: int
    status: str  # human text, e.g. "Up 3 minutes (healthy)"
    id: str = ""  # the engine's container ID: a recreated container keeps its name but gets a new ID

    @property
    def key(self) -> str:
        """What identifies this container over time (its ID; its name where the ID was not captured)."""
        return self.id or self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.name,
            "state": self.state,
            "health": self.health or None,
            "exit_code": self.exit_code,
            "status": self.status,
        }


# One container per line; labels are read one by one because the Labels column joins values with commas that
# values themselves contain (config file lists). The ID comes last, so lines captured without it still parse.
_DOCKER_PS_FORMAT = '{{.Label "com.docker.compose.service"}}\t{{.Names}}\t{{.State}}\t{{.Status}}\t{{.ID}}'
_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXIT_IN_STATUS = re.compile(r"^(?:Exited|Restarting) \((-?\d+)\)")


def parse_docker_ps_output(text: str) -> list[ContainerState]:
    """`docker ps` lines in _DOCKER_PS_FORMAT: health and exit code are read from the status text."""
    states = []
    for line in text.splitlines():
        if not line.strip():
            continue
        service, name, state, status, *rest = line.split("\t", 4)
        health = _HEALTH_IN_STATUS.search(status)
        exit_code = _EXIT_IN_STATUS.match(status)
        states.append(ContainerState(
            service=service, name=name, state=state, status=status,
            health=(health.group(1).replace("health: ", "") if health else ""),
            exit_code=int(exit_code.group(1)) if exit_code else 0, id=rest[0].strip() if rest else "",
        ))  # fmt: skip
    return sorted(states, key=lambda c: (c.service, c.name))


class Compose:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    # -- building commands (pure: unit-tested without Docker) -------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        s = self.settings
        argv = [*s.compose_command, "--project-name", s.project, "--project-directory", str(s.root)]
        for f in s.compose_files:
            argv += ["--file", str(f)]
        for e in s.env_files:
            if e.is_file():
                argv += ["--env-file", str(e)]
        return argv + list(args)

    # -- running them ----------------------------------------------------------------------------------------
    def run(self, *args: str, capture: bool = False, check: bool = True, stdin: Any = None) -> Result:
        """Run a compose subcommand. Captured output is returned; otherwise it streams to the terminal."""
        return run(self.argv(*args), capture=capture, check=check, stdin=stdin, what=f"docker compose {args[0]}",
                   mask=self.mask)  # fmt: skip

    def mask(self, text: str) -> str:
        """`text` with every secret value of the env files replaced (error output may echo a command or config)."""
        values: dict[str, str] = {}
        for env_file in self.settings.env_files:
            if env_file.is_file():
                values |= parse_env(env_file.read_text())
        return mask_text(text, values)

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), **kwargs)

    # -- parsed queries -------------------------------------------------------------------------------------
    @cached_property
    def config(self) -> dict[str, Any]:
        """The merged, interpolated configuration; Compose's own error when a file is invalid."""
        return json.loads(self.run("config", "--format", "json", capture=True).stdout)

    @cached_property
    def raw_config(self) -> dict[str, Any]:
        """The merged configuration before interpolation: which variable (`${MYSQL_IMAGE:-...}`) sets a value."""
        return json.loads(self.run("config", "--no-interpolate", "--format", "json", capture=True).stdout)

    def reload(self) -> None:
        """Forget the parsed configuration: an env file changed (the image policy wrote local-images.env)."""
        for name in ("config", "raw_config"):
            self.__dict__.pop(name, None)

    @property
    def services(self) -> list[str]:
        return sorted(self.config.get("services", {}))

    def states(self) -> list[ContainerState]:
        """The project's containers straight from the engine: ~25 ms, against ~150 ms of CPU for `compose ps`
        (which parses every compose file on each call), so polling it does not slow the stack it watches."""
        argv = ["docker", "ps", "--all", "--no-trunc", "--format", _DOCKER_PS_FORMAT,
                "--filter", f"label=com.docker.compose.project={self.settings.project}",
                "--filter", "label=com.docker.compose.oneoff=False"]  # fmt: skip
        return parse_docker_ps_output(run(argv, what="docker ps").stdout)

    def validate_services(self, requested: Iterable[str]) -> list[str]:
        requested = list(requested)
        known = self.services
        unknown = [s for s in requested if s not in known]
        if unknown:
            raise UsageError(f"unknown service {', '.join(unknown)}: valid services are {', '.join(known)}")
        return requested


# The oldest Compose the toolkit supports: 2.24 brought `!reset` (backup.verify's drill overlay uses it).
# Tested on 2.40.3.
MIN_COMPOSE = (2, 24)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def compose_version_supported(version: str) -> bool:
    return bool(version) and version_tuple(version) >= MIN_COMPOSE
