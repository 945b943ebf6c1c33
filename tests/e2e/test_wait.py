"""`invoke start` / `invoke wait` on a fixture stack whose services fail in every recognisable way.

The fixture directory gets a copy of tasks.py, so the real tasks drive the fixture's compose files.
"""

from __future__ import annotations

import json
import subprocess

import pytest


@pytest.fixture
def wait_stack(fixture_project):
    return fixture_project("wait")


def test_a_service_that_never_becomes_healthy_fails_with_its_health_log(wait_stack):
    result = wait_stack.invoke("start", "--timeout", "120", profile="never-healthy")
    assert result.returncode != 0
    assert "never-healthy: unhealthy" in result.stderr
    assert "probe: database not accepting connections" in result.stderr
    assert "not healthy: never-healthy" in result.stderr


def test_a_service_that_exits_one_fails_with_its_exit_code_and_logs(wait_stack):
    result = wait_stack.invoke("start", "--timeout", "120", profile="exits-one")
    assert result.returncode != 0
    assert "exits-one: exited with code 1" in result.stderr
    assert "fatal: cannot read config" in result.stderr


def test_an_oom_killed_service_is_reported_as_such(wait_stack):
    result = wait_stack.invoke("start", "--timeout", "120", profile="oom")
    assert result.returncode != 0
    assert "OOM-killed yes" in result.stderr
    assert "out of memory" in result.stderr


def test_a_one_shot_that_exits_zero_beside_a_healthy_service_succeeds(wait_stack):
    result = wait_stack.invoke("start", "--timeout", "120", profile="one-shot")
    assert result.returncode == 0, result.stderr
    assert "init-job: completed (exit 0)" in result.stderr
    assert "app: healthy" in result.stderr
    states = json.loads(wait_stack.invoke("wait", "--json", profile="one-shot").stdout)
    assert {row["service"]: row["state"] for row in states} == {"init-job": "exited", "app": "running"}


def _restart_count(container: str) -> int:
    inspected = subprocess.run(["docker", "inspect", "--format", "{{.RestartCount}}", container],
                               capture_output=True, text=True, check=True)  # fmt: skip
    return int(inspected.stdout)


def test_one_transient_restart_is_waited_out_not_called_a_crash_loop(wait_stack):
    # restart: unless-stopped, as in production: the first run exits 1, the policy restarts it, it becomes healthy.
    result = wait_stack.invoke("start", "--timeout", "120", profile="restarts-once")
    assert result.returncode == 0, result.stderr
    assert "restarts-once: healthy" in result.stderr
    assert _restart_count(f"{wait_stack.project}-restarts-once-1") == 1  # it did restart, and start still passed


def test_a_crash_loop_is_reported_with_its_exit_code_and_logs(wait_stack):
    result = wait_stack.invoke("start", "--timeout", "120", profile="crash-loop")
    assert result.returncode != 0
    assert "crash-loop: crash loop: restarted" in result.stderr
    assert "last exit code 3" in result.stderr
    assert "fatal: missing setting CRASH_LOOP_CONFIG" in result.stderr
    assert "not healthy: crash-loop" in result.stderr


def test_every_replica_is_judged_and_the_unhealthy_one_named(wait_stack):
    # scale: 2; one replica takes a lock and is healthy, the other never is.
    result = wait_stack.invoke("start", "--timeout", "120", profile="replicas")
    assert result.returncode != 0
    assert "1 of 2 containers failed" in result.stderr
    assert "not healthy: replicas (unhealthy" in result.stderr


def test_a_leftover_of_an_interrupted_recreate_does_not_decide_the_verdict(wait_stack):
    # Compose names a replacement `<12 hex>_<project>-<service>-1` until it renames it; an interrupted recreate
    # leaves one behind. Here a dead one that sorts before the real container by name.
    assert wait_stack.invoke("start", "--timeout", "120", profile="one-shot").returncode == 0
    leftover = f"0123456789ab_{wait_stack.project}-app-1"
    labels = {"project": wait_stack.project, "service": "app", "oneoff": "False", "container-number": "1"}
    argv = ["docker", "run", "--name", leftover, *(f"--label=com.docker.compose.{k}={v}" for k, v in labels.items()),
            wait_stack.env["FIXTURE_IMAGE"], "sh", "-c", "exit 137"]  # fmt: skip
    subprocess.run(argv, capture_output=True, check=False)
    try:
        result = wait_stack.invoke("wait", "--timeout", "60", profile="one-shot")
        assert result.returncode == 0, result.stderr
        assert "app: healthy" in result.stderr
    finally:
        subprocess.run(["docker", "rm", "--force", leftover], capture_output=True, check=False)
