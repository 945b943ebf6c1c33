"""The user's journey, unmodified: README's run command in a fresh copy, then seed, backup, restore, and the page.

Nothing is narrowed and no toolkit setting is changed: the run command is read from README.md (so the README
cannot drift from what is tested) and run with bash in a fresh copy of the project (no .env, no
local-images.env, no virtual environment). Only a project name and free host ports are set, through the
environment, so this copy runs beside anything else on the engine. Tests run in file order and share the stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import PORT_VARIABLES, Stack, _copy_project, _docker_ready, _free_port, poll

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium on a closed network: no sandbox as root, none of its background connections.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900", "--virtual-time-budget=15000",
)  # fmt: skip


def readme_command(name: str) -> str:
    return subprocess.run([ROOT / "scripts" / "readme-command", name], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


class Journey(Stack):
    """A Stack whose `invoke` is the one the run command installed into the copy's own .venv."""

    def invoke(self, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run([str(self.root / ".venv" / "bin" / "invoke"), *args], cwd=self.root, env=self.env,
                                capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
        print(f"invoke {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.1f}s")
        if check and result.returncode != 0:
            raise AssertionError(f"invoke {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}"
                                 f"\n--- stderr\n{result.stderr}")  # fmt: skip
        return result


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> Iterator[Journey]:
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("journey")
    _copy_project(root)
    for made_here in (".env", "local-images.env", ".venv", "backups"):
        assert not (root / made_here).exists(), f"a fresh copy has no {made_here}"
    project = f"enlaight-e2e-journey-{uuid.uuid4().hex[:8]}"
    ports = {variable: _free_port() for variable in PORT_VARIABLES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_ENLAIGHT_", "VIRTUAL_ENV"))}
    env |= {k: str(v) for k, v in ports.items()} | {"INVOKE_ENLAIGHT_PROJECT": project}
    stack = Journey(root=root, project=project, ports=ports, env=env)
    try:
        yield stack
    finally:
        if (root / ".venv" / "bin" / "invoke").exists():
            stack.invoke("down", "--volumes", "--yes", check=False, timeout=300)


def test_readme_run_command_brings_every_service_to_healthy(journey: Journey):
    command = readme_command("run")
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", command], cwd=journey.root, env=journey.env, capture_output=True,
                            text=True, timeout=3600, check=False)  # fmt: skip
    print(f"README run command: exit {result.returncode} in {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, (
        f"{command}\n--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-8000:]}"
    )
    assert "every service is ready" in result.stderr
    states = journey.ps()
    expected = {"frontend", "backend", "mysql", "postgres", "redis", "n8n", "superset-init", "superset", "smtp"}
    assert set(states) == expected
    for service, row in states.items():
        if service == "superset-init":
            assert (row["state"], row["exit_code"]) == ("exited", 0), row
        else:
            assert row["state"] == "running" and row["health"] in (None, "healthy"), row


def test_seed_twice_the_second_creates_nothing(journey: Journey):
    first = journey.invoke("seed")
    assert "created" in first.stderr
    second = journey.invoke("seed")
    assert "nothing to create: everything was already there" in second.stderr, second.stderr


def api(journey: Journey, path: str) -> dict:
    response = requests.get(journey.url("BACKEND_PORT", path), timeout=10)
    response.raise_for_status()
    return response.json()


def backend_state(journey: Journey) -> dict:
    projects = api(journey, "/api/projects/?limit=500")
    return {
        "projects": sorted((p["name"], p.get("superset_dashboard_id")) for p in projects["results"]),
        "chat_sessions": api(journey, "/api/chat-sessions/?limit=1")["count"],
        "agents": api(journey, "/api/agents/?limit=1")["count"],
    }


def test_backup_verify_destroy_restore_gives_the_data_back(journey: Journey):
    before = backend_state(journey)
    assert before["projects"] and before["chat_sessions"] > 0
    journey.invoke("backup")
    journey.invoke("backup.verify", "latest")
    journey.invoke("down", "--volumes", "--yes")
    journey.invoke("start")
    assert backend_state(journey)["projects"] == [], "down --volumes left data behind"
    journey.invoke("restore", "latest", "--yes")
    assert backend_state(journey) == before


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("Debian's chromium is needed for the browser check: apt-get install chromium")
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"], check=True,
                   capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_the_front_end_shows_ready_and_the_seeded_projects_in_a_browser(journey: Journey, tmp_path: Path):
    ensure_chromium()
    url = journey.url("FRONTEND_PORT", "/")
    names = [name for name, _dashboard in backend_state(journey)["projects"]]

    def rendered() -> str | None:
        dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom").stdout
        return dom if "Ready" in dom and all(name in dom for name in names) else None

    dom = poll(rendered, timeout=120, interval=2)
    assert "Backend readiness" in dom
    screenshot = tmp_path / "frontend.png"
    chromium(f"--screenshot={screenshot}", url, profile=tmp_path / "profile-shot")
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    print(f"screenshot of the front end: {screenshot}")
