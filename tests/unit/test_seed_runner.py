"""`invoke seed`'s ordering, skipping, --strict and reporting, with fake steps and captured container states."""

from __future__ import annotations

from pathlib import Path

import pytest

from enlaight_ops import seed
from enlaight_ops.compose import Compose, ContainerState
from enlaight_ops.errors import UsageError
from enlaight_ops.seed.base import SeedContext, service_problem, stack_env
from enlaight_ops.seed.report import SeedError, StepReport, parse_command_report
from enlaight_ops.settings import load_settings


def state(service: str, status: str = "running", health: str = "healthy") -> ContainerState:
    return ContainerState(service=service, name=f"p-{service}-1", state=status, health=health, exit_code=0, status="")


class FakeStep:
    def __init__(self, name: str, services: tuple[str, ...], report: StepReport | Exception | None = None):
        self.name, self.services, self.calls = name, services, []
        self.report = report if report is not None else StepReport(name, created=["thing"])

    def run(self, ctx: SeedContext, *, reset: bool) -> StepReport:
        self.calls.append(reset)
        if isinstance(self.report, Exception):
            raise self.report
        return self.report


class FakeCompose(Compose):
    def __init__(self, tmp_path: Path, states: list[ContainerState]):
        super().__init__(load_settings({}, root=tmp_path))
        self._states = states

    def states(self) -> list[ContainerState]:
        return self._states


def run(tmp_path, steps, states, *, only=None, **kwargs):
    lines: list[tuple[str, str]] = []
    reports = seed.run_seed(
        FakeCompose(tmp_path, states),
        seed.select_steps(only, steps),
        info=lambda _text: None,
        report_line=lambda k, t: lines.append((k, t)),
        **kwargs,
    )
    return reports, lines


def test_real_steps_run_backend_then_superset_then_n8n() -> None:
    assert [s.name for s in seed.select_steps(["n8n", "superset", "backend"])] == ["backend", "superset", "n8n"]
    assert [s.name for s in seed.select_steps(None)] == ["backend", "superset", "n8n"]
    with pytest.raises(UsageError, match="unknown seed step nope: the steps are backend, superset, n8n"):
        seed.select_steps(["nope"])


def test_a_step_whose_service_is_down_is_skipped_with_one_line(tmp_path) -> None:
    backend, n8n = FakeStep("backend", ("backend",)), FakeStep("n8n", ("n8n", "postgres"))
    reports, lines = run(tmp_path, [backend, n8n], [state("backend"), state("postgres")])
    assert backend.calls == [False] and n8n.calls == []
    assert reports[1].skipped == "service n8n is not running (start it: invoke start -s n8n)"
    assert ("skipped", "n8n: skipped: service n8n is not running (start it: invoke start -s n8n)") in lines


def test_strict_fails_before_any_step_runs(tmp_path) -> None:
    backend, n8n = FakeStep("backend", ("backend",)), FakeStep("n8n", ("n8n",))
    with pytest.raises(SeedError, match="--strict: not seeding.*n8n: service n8n is not running"):
        run(tmp_path, [backend, n8n], [state("backend")], strict=True)
    assert backend.calls == []


def test_only_and_reset_reach_the_steps(tmp_path) -> None:
    backend, n8n = FakeStep("backend", ("backend",)), FakeStep("n8n", ("n8n",))
    run(tmp_path, [backend, n8n], [state("backend"), state("n8n")], only=["n8n"], reset=True)
    assert backend.calls == [] and n8n.calls == [True]


def test_a_failing_step_names_itself(tmp_path) -> None:
    broken = FakeStep("n8n", ("n8n",), SeedError("kb/list answered HTTP 404"))
    with pytest.raises(SeedError, match="seed step n8n failed: kb/list answered HTTP 404"):
        run(tmp_path, [broken], [state("n8n")])


def test_service_problems() -> None:
    assert service_problem([state("n8n")], "n8n") is None
    assert service_problem([state("n8n", health="")], "n8n") is None  # no healthcheck: running is enough
    assert "still starting" in service_problem([state("n8n", health="starting")], "n8n")
    assert "unhealthy" in service_problem([state("n8n", health="unhealthy")], "n8n")
    assert "is exited, not running" in service_problem([state("n8n", status="exited", health="")], "n8n")


def test_report_summaries() -> None:
    second_run = StepReport("backend", existing=["a", "b"])
    assert second_run.summary() == "backend: nothing to create, 2 items already there"
    assert not second_run.changed
    first = StepReport("n8n", created=["x"], updated=["y"], existing=["z"], warnings=["careful"])
    assert first.summary() == "n8n: created 1, updated 1; 1 already there"
    assert list(first.lines()) == [
        ("created", "n8n: created x"),
        ("updated", "n8n: updated y"),
        ("warning", "n8n: careful"),
    ]
    first.merge({"created": ["w"], "existing": ["v"]})
    assert first.created == ["x", "w"] and first.existing == ["z", "v"]


def test_parse_command_report_takes_the_last_json_line() -> None:
    text = 'Operations to perform: nothing\n{"created": ["client Acme"], "existing": []}\n'
    assert parse_command_report(text) == {"created": ["client Acme"], "existing": []}
    with pytest.raises(SeedError, match="no JSON report: Traceback"):
        parse_command_report("Traceback (most recent call last): boom")


def test_stack_env_follows_compose_precedence(tmp_path) -> None:
    (tmp_path / ".env").write_text("N8N_KB_KEY=from-file\nPOSTGRES_USER=n8n\n")
    (tmp_path / "local-images.env").write_text("N8N_IMAGE=enlaight-local/n8n:1\n")
    settings = load_settings({}, root=tmp_path)
    env = stack_env(settings, environ={"N8N_KB_KEY": "from-shell"})
    assert env["N8N_KB_KEY"] == "from-shell"
    assert env["POSTGRES_USER"] == "n8n" and env["N8N_IMAGE"] == "enlaight-local/n8n:1"


def test_reset_warning_names_the_steps() -> None:
    text = seed.reset_warning(seed.select_steps(None))
    assert "backend, superset, n8n" in text and "only" in text
