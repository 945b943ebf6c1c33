"""End-to-end fixtures: a private copy of the project driven by `invoke`, on a real Docker Engine.

Each run copies the project to a temporary directory (so hot-reload edits never touch the checkout), gives it
a unique Compose project name and free loopback ports, and removes its containers and volumes in a finally.
By default the stack runs on the registry-free local images (`invoke images.local`), built once and reused by
tag; set ENLAIGHT_E2E_IMAGES=official to use the pinned official images instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PORT_VARIABLES = (
    "FRONTEND_PORT", "BACKEND_PORT", "N8N_PORT", "SUPERSET_PORT", "SMTP_WEB_PORT", "SMTP_PORT",
    "MYSQL_HOST_PORT", "POSTGRES_HOST_PORT", "REDIS_HOST_PORT",
)  # fmt: skip
CORE_SERVICES = ("frontend", "backend", "mysql", "postgres", "redis", "smtp")
CORE_LOCAL_IMAGES = ("mysql", "postgres", "redis", "smtp-sink", "nginx", "python", "node")


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.e2e)


def _docker_ready() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (scripts/provision-engine.sh)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker daemon answers (scripts/provision-engine.sh starts one)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_project(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@dataclass
class Stack:
    """A copy of the project with its own project name and ports, driven through `invoke`."""

    root: Path
    project: str
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)

    def invoke(self, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"invoke {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}"
                f"\n--- stderr\n{result.stderr}"
            )
        return result

    def url(self, port_variable: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_variable]}{path}"

    def ps(self, *flags: str) -> dict[str, dict]:
        rows = json.loads(self.invoke("ps", "--json", *flags).stdout)
        return {row["service"]: row for row in rows}

    def container(self, service: str, *flags: str) -> dict:
        name = self.ps(*flags)[service]["container"]
        return json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, check=True).stdout)[0]

    def teardown(self) -> None:
        for flags in ((), ("--prod",)):
            self.invoke("down", "--volumes", "--yes", *flags, check=False, timeout=300)


def poll(fetch, *, timeout: float = 60, interval: float = 0.5):
    """Call `fetch` until it returns a truthy value; the last exception or value explains a timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = fetch()
            if value:
                return value
            last = value
        except (requests.RequestException, AssertionError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"gave up after {timeout}s: {last!r}")


@pytest.fixture(scope="session")
def local_images_env(tmp_path_factory) -> Path | None:
    """Build (or reuse, by tag and hash) the registry-free images once per session; return their env file.

    The env file goes to a temporary directory: a test run must not switch the checkout to local images.
    """
    if os.environ.get("ENLAIGHT_E2E_IMAGES", "local") == "official":
        return None
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    env_file = tmp_path_factory.mktemp("images") / "local-images.env"
    argv = [sys.executable, "-m", "invoke", "images.local", "--trust-host-ca", "--env-file", str(env_file)]
    # The core images every test needs must build; n8n (minutes, 1.5 GB of npm) is built next, and if it cannot
    # be built here the n8n tests skip naming the missing image instead of failing every other test.
    core = [f"--service={name}" for name in CORE_LOCAL_IMAGES]
    subprocess.run([*argv, *core], cwd=ROOT, check=True)
    n8n = subprocess.run([*argv, "--service=n8n"], cwd=ROOT, check=False)
    if n8n.returncode != 0:
        print(f"local n8n image could not be built (exit {n8n.returncode}); n8n tests will skip", file=sys.stderr)
    return env_file


def _make_stack(tmp_path_factory, local_images_env: Path | None, name: str) -> Stack:
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp(name)
    _copy_project(root)
    if local_images_env is not None:
        shutil.copy2(local_images_env, root / "local-images.env")
    project = f"enlaight-e2e-{name}-{uuid.uuid4().hex[:8]}"
    ports = {variable: _free_port() for variable in PORT_VARIABLES}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "INVOKE_ENLAIGHT_PROJECT": project}
    env.pop("INVOKE_ENLAIGHT_ENV", None)
    return Stack(root=root, project=project, ports=ports, env=env)


def _stack_fixture(name: str):
    """One module-scoped stack per test module, torn down (volumes included) even when a test fails."""

    @pytest.fixture(scope="module", name=f"{name}_stack")
    def stack_fixture(tmp_path_factory, local_images_env) -> Iterator[Stack]:
        stack = _make_stack(tmp_path_factory, local_images_env, name)
        try:
            yield stack
        finally:
            stack.teardown()

    return stack_fixture


dev_stack = _stack_fixture("dev")
prod_stack = _stack_fixture("prod")


def image_available(variable: str, default: str, stack: Stack) -> bool:
    from dotenv import dotenv_values

    images = dotenv_values(stack.root / "local-images.env") if (stack.root / "local-images.env").exists() else {}
    image = images.get(variable) or os.environ.get(variable) or default
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0


@dataclass
class FixtureProject:
    """A fixture compose project under tests/e2e/fixtures/NAME, driven by a copy of the real tasks.py."""

    root: Path
    project: str
    env: dict[str, str]

    def invoke(self, *args: str, profile: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**self.env, "COMPOSE_PROFILES": profile} if profile else self.env
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip

    def compose(self, *args: str, project: str | None = None, extra_env: dict | None = None):
        argv = ["docker", "compose", "--project-name", project or self.project, *args]
        return subprocess.run(argv, cwd=self.root, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, check=False)  # fmt: skip


@pytest.fixture
def fixture_project(tmp_path: Path, local_images_env: Path | None):
    """Factory: fixture_project("wait") -> FixtureProject; every project it made is removed afterwards."""
    made: list[FixtureProject] = []
    image = "enlaight-local/debian:bookworm" if local_images_env is not None else "debian:bookworm-slim"

    def make(name: str) -> FixtureProject:
        reason = _docker_ready()
        if reason:
            pytest.skip(reason)
        root = tmp_path / f"{name}-{len(made)}"
        shutil.copytree(Path(__file__).parent / "fixtures" / name, root)
        shutil.copy2(ROOT / "tasks.py", root / "tasks.py")
        project = f"enlaight-e2e-{name}-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project, "FIXTURE_IMAGE": image}
        env.pop("INVOKE_ENLAIGHT_ENV", None)
        made.append(FixtureProject(root, project, env))
        return made[-1]

    yield make
    for fixture in made:
        fixture.compose("--profile", "*", "down", "--volumes", "--timeout", "1")
