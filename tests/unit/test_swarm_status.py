"""Swarm convergence verdicts from captured `docker service inspect` / `docker service ps --format json` output
(a single-node swarm of this project: frontend, backend x2, mysql, redis), IPVS detection on fake /proc and /sys
trees, and the --replicas parser."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from enlaight_ops.errors import UsageError
from enlaight_ops.swarm import engine, status
from enlaight_ops.swarm.tasks import parse_replicas

FIXTURES = Path(__file__).parent / "fixtures"
STACK = "hswarm"


def load(name: str) -> list[status.ServiceState]:
    inspected = json.loads((FIXTURES / f"swarm-services-{name}.json").read_text())
    tasks = status.parse_tasks((FIXTURES / f"swarm-tasks-{name}.ndjson").read_text(), STACK)
    return status.parse_services(inspected, tasks, STACK)


def by_name(services: list[status.ServiceState]) -> dict[str, status.ServiceState]:
    return {s.name: s for s in services}


def test_tasks_are_parsed_with_service_slot_and_state() -> None:
    tasks = status.parse_tasks((FIXTURES / "swarm-tasks-rolled-back.ndjson").read_text(), STACK)
    failed = [t for t in tasks if t.failed]
    assert {t.service for t in tasks} == {"backend", "frontend", "mysql", "redis"}
    assert failed and failed[0].error == "task: non-zero exit (137): dockerexec: unhealthy container"
    assert all(t.slot.isdigit() for t in tasks)


def test_converged_stack_is_ready_with_both_backend_replicas() -> None:
    services = load("converged")
    verdict = status.judge_stack(services, status.baseline(services))
    assert verdict.status == "ready"
    backend = by_name(services)["backend"]
    assert backend.desired == 2 and len(backend.running) == 2
    assert {v.service: v.reason for v in verdict.services}["backend"] == "2/2 running"


def test_rolled_back_update_of_this_deploy_fails_with_swarms_message() -> None:
    services = load("rolled-back")
    verdict = status.judge_stack(services, {})
    assert verdict.status == "failed"
    (failed,) = verdict.failed
    assert failed.service == "backend" and "Swarm rolled it back" in failed.reason
    assert by_name(services)["backend"].latest_failure.error.endswith("unhealthy container")


def test_a_rollback_from_before_this_deploy_is_history() -> None:
    services = load("rolled-back")
    verdict = status.judge_stack(services, status.baseline(services))
    assert verdict.status == "ready"


def test_rolling_back_is_still_waiting() -> None:
    verdict = status.judge_stack(load("rolling-back"), {})
    backend = {v.service: v for v in verdict.services}["backend"]
    assert backend.status == "waiting" and backend.reason.startswith("rolling back")


def test_tasks_of_the_previous_image_do_not_count_as_running() -> None:
    backend = by_name(load("converged"))["backend"]
    updated = replace(backend, spec_image=backend.spec_image.split("@")[0] + "@sha256:" + "0" * 64)
    assert updated.running == []
    assert status.judge_service(updated).status == "waiting"


def test_repeated_failures_since_the_deploy_are_a_crash_loop() -> None:
    backend = by_name(load("converged"))["backend"]
    failing = status.Task("t", "backend", "1", "vm", "Shutdown", "Failed", "1 second ago", "task: non-zero exit (1)",
                          backend.spec_image)  # fmt: skip
    tasks = tuple(replace(failing, id=f"t{i}") for i in range(3))
    broken = replace(backend, tasks=tasks)
    verdict = status.judge_service(broken)
    assert verdict.status == "failed" and verdict.reason.startswith("crash loop: 3 tasks failed")
    # the same failures, already there before the deploy, are not this deploy's
    assert status.judge_service(broken, status.baseline([broken])["backend"]).status == "waiting"


def test_a_completed_one_shot_is_ready() -> None:
    redis = by_name(load("converged"))["redis"]
    task = replace(redis.tasks[0], state="Complete", desired="Shutdown")
    assert status.judge_service(replace(redis, one_shot=True, tasks=(task,))).status == "ready"


# ------------------------------------------------------------------ IPVS detection


def test_ipvs_loaded(tmp_path: Path) -> None:
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/ip_vs").write_text("")
    available, why = engine.detect_ipvs(tmp_path / "proc", tmp_path / "sys", tmp_path / "modules", docker_host="")
    assert available is True and "loaded" in why


def test_ipvs_absent_by_kernel_config(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/config.gz").write_bytes(gzip.compress(b"CONFIG_VXLAN=y\n# CONFIG_IP_VS is not set\n"))
    available, why = engine.detect_ipvs(tmp_path / "proc", tmp_path / "sys", tmp_path / "modules", docker_host="")
    assert available is False and "CONFIG_IP_VS is not set" in why


def test_ipvs_as_a_loadable_module(tmp_path: Path) -> None:
    import platform

    module = tmp_path / "modules" / platform.release() / "kernel/net/netfilter/ipvs"
    module.mkdir(parents=True)
    (module / "ip_vs.ko.xz").write_bytes(b"")
    available, _why = engine.detect_ipvs(tmp_path / "proc", tmp_path / "sys", tmp_path / "modules", docker_host="")
    assert available is True


def test_ipvs_of_a_remote_engine_is_unknown(tmp_path: Path) -> None:
    available, why = engine.detect_ipvs(tmp_path, tmp_path, tmp_path, docker_host="tcp://10.0.0.5:2376")
    assert available is None and "remote" in why


def test_endpoint_mode_asked_for_wins() -> None:
    assert engine.choose_endpoint_mode("dnsrr") == ("dnsrr", "asked for with --endpoint-mode")
    with pytest.raises(UsageError, match="unknown endpoint mode"):
        engine.choose_endpoint_mode("mesh")


# ------------------------------------------------------------------ --replicas


def test_parse_replicas() -> None:
    assert parse_replicas(["backend=2", "frontend=1"]) == {"backend": 2, "frontend": 1}
    assert parse_replicas(None) == {}
    for bad in ("backend", "backend=0", "=2", "backend=two"):
        with pytest.raises(UsageError, match="--replicas takes SERVICE=N"):
            parse_replicas([bad])


def test_the_latest_failure_is_the_newest_of_any_slot_not_slot_ones_old_one() -> None:
    # Seen in CI: slot 1 failed at start-up long ago (a migration race, restarted since); slot 2's update just
    # failed its health gate. The report must show slot 2's task.
    backend = by_name(load("rolled-back"))["backend"]
    template = next(t for t in backend.tasks if t.failed)
    old = replace(template, id="old-slot-1", slot="1", since="3 minutes ago", error="task: non-zero exit (1)")
    new = replace(template, id="new-slot-2", slot="2", since="25 seconds ago")
    assert replace(backend, tasks=(old, new)).latest_failure.id == "new-slot-2"


@pytest.mark.parametrize(
    ("since", "seconds"),
    [("25 seconds ago", 25), ("About a minute ago", 60), ("Less than a second ago", 0.5), ("2 hours ago", 7200),
     ("About an hour ago", 3600), ("something else", float("inf"))],
)  # fmt: skip
def test_task_ages_as_docker_service_ps_words_them(since: str, seconds: float) -> None:
    assert status.age_seconds(since) == seconds
