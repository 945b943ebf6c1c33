"""The verdict logic: which states are ready, still waiting, or failed for certain."""

from __future__ import annotations

from enlaight_ops.compose import ContainerState
from enlaight_ops.health import (
    NEVER_CREATED,
    ServiceVerdict,
    StackVerdict,
    hint_for,
    judge_container,
    judge_stack,
    one_shot_services,
    root_failures,
    up_failure_line,
)


def state(service, state, health="", exit_code=0):
    return ContainerState(service, f"p-{service}-1", state, health, exit_code, "")


CONFIG = {
    "services": {
        "superset-init": {},
        "superset": {
            "depends_on": {
                "superset-init": {"condition": "service_completed_successfully"},
                "mysql": {"condition": "service_healthy"},
            }
        },
        "mysql": {},
    }
}


def test_one_shots_are_services_waited_on_to_complete():
    assert one_shot_services(CONFIG) == {"superset-init"}


def test_long_running_states():
    assert judge_container(state("db", "running", "healthy"), one_shot=False).status == "ready"
    assert judge_container(state("smtp", "running", ""), one_shot=False).status == "ready"
    assert judge_container(state("db", "running", "starting"), one_shot=False).status == "waiting"
    assert judge_container(state("db", "running", "unhealthy"), one_shot=False).status == "failed"
    assert judge_container(state("db", "restarting"), one_shot=False).reason == "restarting in a loop"
    exited = judge_container(state("api", "exited", exit_code=3), one_shot=False)
    assert (exited.status, exited.reason) == ("failed", "exited with code 3")


def test_a_one_shot_that_exits_zero_is_ready():
    assert judge_container(state("init", "exited", exit_code=0), one_shot=True).status == "ready"
    assert judge_container(state("init", "exited", exit_code=1), one_shot=True).status == "failed"
    assert judge_container(state("init", "running"), one_shot=True).status == "waiting"


def test_stack_verdict_while_compose_up_is_still_creating():
    expected = ["mysql", "superset", "superset-init"]
    containers = [state("mysql", "running", "starting"), state("superset-init", "exited", exit_code=0)]
    verdict = judge_stack(containers, expected, {"superset-init"}, creating=True)
    assert verdict.status == "waiting"
    assert {v.service: v.reason for v in verdict.services}["superset"] == "no container yet"
    # Once `up` is done, a service with no container will never get one.
    assert judge_stack(containers, expected, {"superset-init"}, creating=False).status == "failed"


def test_leftover_exited_containers_are_not_failures_while_up_restarts_them():
    containers = [state("mysql", "exited", exit_code=0)]
    assert judge_stack(containers, ["mysql"], set(), creating=True).status == "waiting"
    assert judge_stack(containers, ["mysql"], set(), creating=False).status == "failed"


def test_any_failure_fails_the_stack_at_once():
    containers = [state("mysql", "running", "starting"), state("backend", "exited", exit_code=1)]
    verdict = judge_stack(containers, ["backend", "mysql"], set())
    assert verdict.status == "failed"
    assert [v.service for v in verdict.failed] == ["backend"]


def test_hints_for_recognisable_causes():
    assert "memory" in hint_for("", oom_killed=True)
    assert "port" in hint_for("Error: bind: address already in use")
    assert "invoke env" in hint_for("SECRET_KEY is not set")
    assert hint_for("something else entirely") is None


def test_a_container_left_created_after_up_finished_has_failed():
    containers = [state("api", "created")]
    assert judge_stack(containers, ["api"], set(), creating=True).status == "waiting"
    verdict = judge_stack(containers, ["api"], set(), creating=False)
    assert (verdict.status, verdict.services[0].reason) == ("failed", "created but never started")


def test_a_one_shot_that_failed_last_time_is_not_judged_before_up_reruns_it():
    containers = [state("init", "exited", exit_code=1)]
    assert judge_stack(containers, ["init"], {"init"}, creating=True).status == "waiting"
    assert judge_stack(containers, ["init"], {"init"}, creating=False).status == "failed"


def test_the_first_failing_node_leads_and_what_waited_on_it_is_one_list():
    config = {
        "services": {
            "frontend": {"depends_on": {"backend": {}}},
            "backend": {"depends_on": {"mysql": {}, "redis": {}}},
            "mysql": {},
            "redis": {},
        }
    }
    verdict = StackVerdict(
        "failed",
        (
            ServiceVerdict("backend", "failed", NEVER_CREATED),
            ServiceVerdict("frontend", "failed", NEVER_CREATED),
            ServiceVerdict("mysql", "failed", "unhealthy", "p-mysql-1"),
            ServiceVerdict("redis", "ready", "healthy", "p-redis-1"),
        ),
    )
    roots, blocked = root_failures(verdict, config)
    assert [r.service for r in roots] == ["mysql"]
    assert blocked == ["backend", "frontend"]


def test_up_failure_line_is_the_last_error_compose_printed():
    output = (
        " Network p_internal  Created\n"
        " Container p-mysql-1  Error\n"
        "dependency failed to start: container p-mysql-1 is unhealthy\n"
    )
    assert up_failure_line(output) == "dependency failed to start: container p-mysql-1 is unhealthy"
    assert up_failure_line(" Container p-redis-1  Started\n") is None
