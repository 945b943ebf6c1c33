"""The verdict logic: which states are ready, still waiting, or failed for certain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enlaight_ops.compose import ContainerState, parse_docker_ps_output
from enlaight_ops.health import (
    NEVER_CREATED,
    RestartWatch,
    ServiceVerdict,
    StackVerdict,
    hint_for,
    judge_container,
    judge_stack,
    one_shot_services,
    parse_restart_counts,
    root_failures,
    up_failure_line,
    up_seconds,
)

FIXTURES = Path(__file__).parent / "fixtures"


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
    # One restart is not a crash loop: the restart policy is doing its job, so keep waiting.
    assert judge_container(state("db", "restarting"), one_shot=False, restarts=1).status == "waiting"
    looping = judge_container(state("db", "restarting", exit_code=2), one_shot=False, restarts=3)
    assert (looping.status, looping.reason) == ("failed", "crash loop: restarted 3 times in 60s, last exit code 2")
    # Caught running between two crashes: its own exit code says 0, the last one seen restarting is kept.
    running = judge_container(state("db", "running", "starting"), one_shot=False, restarts=3, last_exit=2)
    assert running.reason.endswith("last exit code 2")
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


# -- crash loops: restart counts over a window, replayed from polls captured on a real engine -----------------------
# Each line of the captures: the time of a poll, its `docker ps` lines and each container's RestartCount then
# (tests/e2e/fixtures/wait, services crash-loop and restarts-once, polled every ~0.3 s).


def replay(capture: str, service: str, *, watched_from_start: bool) -> list[tuple[float, ServiceVerdict]]:
    """The verdicts `wait_for_stack` would reach on each poll of a capture. `watched_from_start`: the first poll
    saw no container yet (`invoke start`), else the watch begins on the running container (`invoke wait`)."""
    watch = RestartWatch()
    if watched_from_start:
        watch.to_inspect([])
    verdicts = []
    for line in (FIXTURES / capture).read_text().splitlines():
        sample = json.loads(line)
        states = parse_docker_ps_output("\n".join(sample["ps"]) + "\n")
        due = watch.to_inspect(states)
        watch.record({key: sample["restart_counts"][key] for key in due}, sample["t"])
        verdict = judge_stack(states, [service], set(), restarts=watch.recent(sample["t"]), last_exits=watch.last_exits)
        verdicts.append((sample["t"], verdict.services[0]))
    return verdicts


@pytest.mark.parametrize("watched_from_start", [True, False])
def test_a_crash_loop_is_reported_within_seconds(watched_from_start):
    verdicts = replay("restarts-crash-loop.ndjson", "crash-loop", watched_from_start=watched_from_start)
    failed = [(t, v) for t, v in verdicts if v.status == "failed"]
    assert failed, [v.reason for _, v in verdicts]
    first_failure, verdict = failed[0]
    # Three restarts counted: from the container's creation (start), or from when watching began (wait).
    assert first_failure < 3.0
    assert verdict.reason.startswith("crash loop: restarted ") and verdict.reason.endswith("last exit code 3")
    assert verdict.container == "hwcap1-crash-loop-1"
    assert all(v.status == "waiting" for t, v in verdicts if t < first_failure)


@pytest.mark.parametrize("watched_from_start", [True, False])
def test_one_transient_restart_is_waited_out(watched_from_start):
    verdicts = replay("restarts-once.ndjson", "restarts-once", watched_from_start=watched_from_start)
    assert not [v for _, v in verdicts if v.status == "failed"]
    assert verdicts[-1][1].status == "ready"
    if watched_from_start:
        assert any(v.reason.startswith("restarting (once") for _, v in verdicts)


def test_restarts_older_than_the_window_are_forgotten():
    watch = RestartWatch(window=60)
    watch.to_inspect([])  # watching from before the container existed
    looping = ContainerState("api", "p-api-1", "restarting", "", 1, "Restarting (1) 1 second ago", id="c1")
    assert watch.to_inspect([looping]) == ["c1"]
    watch.record({"c1": 2}, now=0)
    watch.record({"c1": 3}, now=61)
    assert watch.recent(61) == {"c1": 1}
    assert watch.recent(200) == {}


def test_a_restart_count_that_drops_is_a_new_baseline_not_restarts():
    watch = RestartWatch()
    running = ContainerState("db", "p-db-1", "running", "starting", 0, "Up 5 seconds (health: starting)", id="c1")
    assert watch.to_inspect([running]) == ["c1"]  # the baseline: restarts before watching are not recent
    watch.record({"c1": 7}, now=0)
    assert watch.recent(0) == {}
    # `docker start` resets the engine's count; then one real restart.
    watch.record({"c1": 0}, now=1)
    watch.record({"c1": 1}, now=2)
    assert watch.recent(2) == {"c1": 1}


def test_only_containers_showing_a_restart_are_inspected_after_the_baseline():
    watch = RestartWatch()
    up = [ContainerState("db", "p-db-1", "running", "healthy", 0, f"Up {n} seconds (healthy)", id="c1") for n in (5, 6)]
    assert watch.to_inspect([up[0]]) == ["c1"]
    assert watch.to_inspect([up[1]]) == []  # up longer than before: nothing happened
    again = ContainerState(
        "db", "p-db-1", "running", "starting", 0, "Up Less than a second (health: starting)", id="c1"
    )
    assert watch.to_inspect([again]) == ["c1"]  # up for less time than at the last poll: it started again


def test_a_healthy_container_has_recovered_even_after_restarts():
    assert judge_container(state("db", "running", "healthy"), one_shot=False, restarts=4).status == "ready"
    assert judge_container(state("db", "running", "starting"), one_shot=False, restarts=4).status == "failed"
    assert judge_container(state("smtp", "running", ""), one_shot=False, restarts=3).status == "failed"


def test_up_seconds_follows_the_engines_rounding():
    statuses = ["Up Less than a second", "Up 1 second (healthy)", "Up 59 seconds", "Up About a minute",
                "Up 59 minutes (health: starting)", "Up About an hour", "Up 2 hours", "Up 3 days (Paused)"]  # fmt: skip
    values = [up_seconds(s) for s in statuses]
    assert values == sorted(values) and values[0] == 0 and values[3] == 60 and values[-1] == 3 * 86400
    assert up_seconds("Restarting (1) 2 seconds ago") is None
    assert up_seconds("Exited (0) 3 minutes ago") is None


def test_restart_counts_are_read_by_id_or_by_name():
    text = "c1full\t/p-api-1\t4\nc2full\t/p-db-1\t0\n"
    assert parse_restart_counts(text, ["c1full", "p-db-1"]) == {"c1full": 4, "p-db-1": 0}
    assert parse_restart_counts("Error: No such object: gone\n", ["gone"]) == {}


# -- every container of a service: replicas, and a recreate's leftover (captured from a real engine) -------------


def test_every_replica_is_judged_and_the_unhealthy_one_is_named():
    states = parse_docker_ps_output((FIXTURES / "docker-ps-replicas-and-leftover.tsv").read_text())
    verdict = judge_stack(states, ["app", "init-job", "replicas"], {"init-job"})
    by_service = {v.service: v for v in verdict.services}
    assert verdict.status == "failed"
    replicas = by_service["replicas"]
    assert (replicas.status, replicas.container) == ("failed", "hwcap3-replicas-2")
    assert replicas.reason == "unhealthy (hwcap3-replicas-2; 1 of 2 containers failed)"


def test_a_recreate_leftover_does_not_decide_the_verdict():
    states = parse_docker_ps_output((FIXTURES / "docker-ps-replicas-and-leftover.tsv").read_text())
    # `a7044309f46e_hwcap3-app-1` exited 137 and sorts first by name; the service's own container is healthy.
    app = judge_stack(states, ["app"], set()).services[0]
    assert (app.status, app.container) == ("ready", "hwcap3-app-1")
    leftover_only = [s for s in states if s.name.startswith("a7044309f46e_")]
    assert judge_stack(leftover_only, ["app"], set()).status == "failed"  # all there is: it is judged


def test_replicas_all_ready_say_how_many():
    containers = [ContainerState("api", f"p-api-{n}", "running", "healthy", 0, "") for n in (1, 2)]
    verdict = judge_stack(containers, ["api"], set())
    assert (verdict.status, verdict.services[0].reason) == ("ready", "healthy (2 containers)")
