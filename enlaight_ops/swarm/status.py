"""A deployed stack's services and tasks -> a verdict per service (pure: unit tests feed captured JSON).

Input: `docker service inspect` of the stack's services and `docker service ps --format json --no-trunc` lines
of their tasks. Swarm reports a task `Running` only once its healthcheck passed (until then it is `Starting`),
so "replicas running" is "replicas healthy". A service is converged when it has its replicas running and no
update or rollback is under way; a one-shot (restart_policy none) when its task completed. An update that Swarm
rolled back (failure_action rollback) after this deploy began is a failure, reported with the failing task.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..health import ServiceVerdict, StackVerdict

STACK_LABEL = "com.docker.stack.namespace"
IN_PROGRESS = ("updating", "rollback_started")
# Swarm restarts a failing task forever (restart_policy any, 5 s apart): this many failed tasks since the deploy
# began, with the replicas still not running, is a crash loop, reported instead of waited out.
CRASH_LOOP_FAILURES = 3
FAILED_UPDATE = ("rollback_completed", "rollback_paused", "paused")


@dataclass(frozen=True)
class Task:
    id: str
    service: str  # short name, without the stack prefix
    slot: str
    node: str
    desired: str  # Running | Shutdown | ...
    state: str  # first word of CurrentState: Running, Starting, Failed, Complete, Shutdown, Rejected, ...
    since: str
    error: str
    image: str

    @property
    def failed(self) -> bool:
        return self.state in ("Failed", "Rejected")


@dataclass(frozen=True)
class ServiceState:
    name: str  # short name
    full_name: str
    desired: int | None  # None: global
    one_shot: bool
    update_state: str
    update_started: str
    update_message: str
    image: str
    tasks: tuple[Task, ...] = field(default_factory=tuple)
    spec_image: str = ""  # with the digest stack deploy resolved, as tasks report it

    @property
    def running(self) -> list[Task]:
        """Running tasks of the current image: right after a deploy the old ones still run, and do not count."""
        return [t for t in self.tasks if t.desired == "Running" and t.state == "Running"
                and (not self.spec_image or t.image == self.spec_image)]  # fmt: skip

    @property
    def latest_failure(self) -> Task | None:
        """The most recent failed task of any slot: an old failure of slot 1 (say, a start-up race long since
        restarted) must not stand in for the failure that just failed the update."""
        failed = [t for t in self.tasks if t.failed]
        return min(failed, key=lambda t: age_seconds(t.since)) if failed else None


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000}


def age_seconds(since: str) -> float:
    """Seconds in `docker service ps`'s "25 seconds ago" / "About a minute ago" / "Less than a second ago";
    unknown wording sorts last (infinitely old)."""
    words = since.lower().replace("about ", "").split()
    if words[:3] == ["less", "than", "a"]:
        return 0.5
    if len(words) >= 2 and (words[0] in ("a", "an") or words[0].isdigit()):
        count = 1 if words[0] in ("a", "an") else int(words[0])
        unit = words[1].rstrip("s")
        if unit in _UNIT_SECONDS:
            return count * _UNIT_SECONDS[unit]
    return float("inf")


def parse_tasks(text: str, stack: str) -> list[Task]:
    tasks = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        name = row.get("Name", "").strip().removeprefix("\\_").strip()
        service, _, slot = name.removeprefix(f"{stack}_").rpartition(".")
        state, _, since = row.get("CurrentState", "").partition(" ")
        tasks.append(Task(id=row.get("ID", ""), service=service, slot=slot, node=row.get("Node", ""),
                          desired=row.get("DesiredState", ""), state=state, since=since,
                          error=row.get("Error", "").strip('"'), image=row.get("Image", "")))  # fmt: skip
    return tasks


def parse_services(inspected: Sequence[Mapping[str, Any]], tasks: Iterable[Task], stack: str) -> list[ServiceState]:
    by_service: dict[str, list[Task]] = {}
    for task in tasks:
        by_service.setdefault(task.service, []).append(task)
    services = []
    for item in inspected:
        spec = item.get("Spec", {})
        full = spec.get("Name", "")
        name = full.removeprefix(f"{stack}_")
        mode = spec.get("Mode", {})
        desired = mode["Replicated"].get("Replicas", 1) if "Replicated" in mode else None
        restart = spec.get("TaskTemplate", {}).get("RestartPolicy", {}).get("Condition", "any")
        update = item.get("UpdateStatus") or {}
        image = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
        services.append(ServiceState(
            name=name, full_name=full, desired=desired, one_shot=restart == "none",
            update_state=update.get("State", ""), update_started=update.get("StartedAt", ""),
            update_message=update.get("Message", ""),
            image=image.split("@")[0], spec_image=image, tasks=tuple(by_service.get(name, ())),
        ))  # fmt: skip
    return sorted(services, key=lambda s: s.name)


@dataclass(frozen=True)
class Baseline:
    """A service as it was before this deploy: an older rollback or failure is history, not this deploy's."""

    update_started: str = ""
    failed_tasks: frozenset[str] = frozenset()


def baseline(services: Iterable[ServiceState]) -> dict[str, Baseline]:
    return {s.name: Baseline(s.update_started, frozenset(t.id for t in s.tasks if t.failed)) for s in services}


def judge_service(service: ServiceState, before: Baseline | None = None) -> ServiceVerdict:
    def verdict(status: str, reason: str) -> ServiceVerdict:
        return ServiceVerdict(service.name, status, reason)  # type: ignore[arg-type]

    before = before or Baseline()
    this_deploy = service.update_started and service.update_started != before.update_started
    if service.update_state in FAILED_UPDATE and this_deploy:
        if service.update_state.startswith("rollback"):
            words = "update failed its health gate and Swarm rolled it back: the previous version runs"
        else:
            words = "update paused"
        return verdict("failed", f"{words} ({service.update_message})")
    if service.update_state in IN_PROGRESS:
        what = "rolling back" if service.update_state.startswith("rollback") else "updating"
        return verdict("waiting", f"{what} ({len(service.running)}/{service.desired} running)")
    if service.one_shot:
        newest = service.tasks[0] if service.tasks else None
        if newest and newest.state == "Complete":
            return verdict("ready", "completed")
        if newest and newest.failed:
            return verdict("failed", f"one-shot failed: {newest.error}")
        return verdict("waiting", newest.state.lower() if newest else "no task yet")
    running = len(service.running)
    if service.desired is not None and running >= service.desired:
        return verdict("ready", f"{running}/{service.desired} running")
    if (
        service.desired is None
        and running
        and all(t.state == "Running" for t in service.tasks if t.desired == "Running")
    ):
        return verdict("ready", f"{running} running (global)")
    new_failures = [t for t in service.tasks if t.failed and t.id not in before.failed_tasks]
    if len(new_failures) >= CRASH_LOOP_FAILURES:
        return verdict("failed", f"crash loop: {len(new_failures)} tasks failed since the deploy, the last with: "
                       f"{new_failures[0].error or 'no error reported'}")  # fmt: skip
    if new_failures:
        return verdict("waiting", f"{running}/{service.desired} running; restarting after: {new_failures[0].error}")
    pending = [t for t in service.tasks if t.desired == "Running" and t.state != "Running"]
    return verdict(
        "waiting", f"{running}/{service.desired} running, {pending[0].state.lower() if pending else 'no task yet'}"
    )


def judge_stack(services: Sequence[ServiceState], before: Mapping[str, Baseline] | None = None) -> StackVerdict:
    verdicts = tuple(judge_service(s, (before or {}).get(s.name)) for s in services)
    if any(v.status == "failed" for v in verdicts):
        status = "failed"
    elif verdicts and all(v.status == "ready" for v in verdicts):
        status = "ready"
    else:
        status = "waiting"
    return StackVerdict(status, verdicts)  # type: ignore[arg-type]
