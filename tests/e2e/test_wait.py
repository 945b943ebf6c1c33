"""`invoke start` / `invoke wait` on a fixture stack whose services fail in every recognisable way.

The fixture directory gets a copy of tasks.py, so the real tasks drive the fixture's compose files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, _docker_ready

FIXTURE = Path(__file__).parent / "fixtures" / "wait"


@pytest.fixture(scope="module")
def fixture_image(local_images_env: Path | None) -> str:
    if local_images_env is None:
        return "debian:bookworm-slim"
    return "enlaight-local/debian:bookworm"


@pytest.fixture
def wait_stack(tmp_path: Path, fixture_image: str) -> Iterator[callable]:
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    for name in ("docker-compose.yml", "docker-compose.override.yml", "env.sample"):
        shutil.copy2(FIXTURE / name, tmp_path / name)
    shutil.copy2(ROOT / "tasks.py", tmp_path / "tasks.py")
    project = f"enlaight-e2e-wait-{uuid.uuid4().hex[:8]}"
    base_env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project, "FIXTURE_IMAGE": fixture_image}
    base_env.pop("INVOKE_ENLAIGHT_ENV", None)

    def run(profile: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = {**base_env, "COMPOSE_PROFILES": profile}
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip

    run.project = project  # type: ignore[attr-defined]
    run.root = tmp_path  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        subprocess.run(["docker", "compose", "--project-name", project, "down", "--volumes", "--timeout", "1"],
                       cwd=tmp_path, capture_output=True, check=False)  # fmt: skip


def test_a_service_that_never_becomes_healthy_fails_with_its_health_log(wait_stack):
    result = wait_stack("never-healthy", "start", "--timeout", "120")
    assert result.returncode != 0
    assert "never-healthy: unhealthy" in result.stderr
    assert "probe: database not accepting connections" in result.stderr
    assert "not healthy: never-healthy" in result.stderr


def test_a_service_that_exits_one_fails_with_its_exit_code_and_logs(wait_stack):
    result = wait_stack("exits-one", "start", "--timeout", "120")
    assert result.returncode != 0
    assert "exits-one: exited with code 1" in result.stderr
    assert "fatal: cannot read config" in result.stderr


def test_an_oom_killed_service_is_reported_as_such(wait_stack):
    result = wait_stack("oom", "start", "--timeout", "120")
    assert result.returncode != 0
    assert "OOM-killed yes" in result.stderr
    assert "out of memory" in result.stderr


def test_a_one_shot_that_exits_zero_beside_a_healthy_service_succeeds(wait_stack):
    result = wait_stack("one-shot", "start", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    assert "init-job: completed (exit 0)" in result.stderr
    assert "app: healthy" in result.stderr
    states = json.loads(wait_stack("one-shot", "wait", "--json").stdout)
    assert {row["service"]: row["state"] for row in states} == {"init-job": "exited", "app": "running"}
