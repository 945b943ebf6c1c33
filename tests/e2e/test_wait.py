"""`invoke start` / `invoke wait` on a fixture stack whose services fail in every recognisable way.

The fixture directory gets a copy of tasks.py, so the real tasks drive the fixture's compose files.
"""

from __future__ import annotations

import json

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
