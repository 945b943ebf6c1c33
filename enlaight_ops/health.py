"""Service states -> a verdict (ready / waiting / failed), and what to show when a service failed.

The deciding functions are pure: they take parsed `docker compose ps` rows and the merged config, so unit
tests feed them states captured from a real engine.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .compose import Compose, ContainerState
from .runner import run

Status = Literal["ready", "waiting", "failed"]
# Twice as often as Compose's own --wait; a poll is one `docker ps` (~25 ms), plus, on a terminal, one
# `docker inspect` of the containers for the live table's health column.
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class ServiceVerdict:
    service: str
    status: Status
    reason: str
    container: str = ""


@dataclass(frozen=True)
class StackVerdict:
    status: Status
    services: tuple[ServiceVerdict, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> list[ServiceVerdict]:
        return [s for s in self.services if s.status == "failed"]


def one_shot_services(config: Mapping[str, Any]) -> set[str]:
    """Services something waits on to *finish* (service_completed_successfully): init jobs, not daemons."""
    one_shots: set[str] = set()
    for service in config.get("services", {}).values():
        for name, dep in (service.get("depends_on") or {}).items():
            if isinstance(dep, Mapping) and dep.get("condition") == "service_completed_successfully":
                one_shots.add(name)
    return one_shots


def judge_container(container: ContainerState, *, one_shot: bool) -> ServiceVerdict:
    def verdict(status: Status, reason: str) -> ServiceVerdict:
        return ServiceVerdict(container.service, status, reason, container.name)

    state, health = container.state, container.health
    if one_shot:
        if state in ("exited", "dead"):
            if container.exit_code == 0:
                return verdict("ready", "completed (exit 0)")
            return verdict("failed", f"exited with code {container.exit_code}")
        return verdict("waiting", state or "not started")
    if state in ("exited", "dead"):
        return verdict("failed", f"{state} with code {container.exit_code}")
    if state == "restarting":
        return verdict("failed", "restarting in a loop")
    if state == "running":
        if health in ("", "healthy"):
            return verdict("ready", "healthy" if health else "running (no healthcheck)")
        if health == "unhealthy":
            return verdict("failed", "unhealthy")
        return verdict("waiting", f"health {health}")
    return verdict("waiting", state or "not started")


def judge_stack(
    containers: Iterable[ContainerState],
    expected: Sequence[str],
    one_shots: set[str],
    *,
    creating: bool = False,
) -> StackVerdict:
    """`creating`: `compose up` is still running, so a missing container may yet appear."""
    by_service: dict[str, ContainerState] = {}
    for container in containers:
        by_service.setdefault(container.service, container)
    verdicts = []
    for service in expected:
        container = by_service.get(service)
        if container is None:
            if creating:
                verdicts.append(ServiceVerdict(service, "waiting", "no container yet"))
            else:
                verdicts.append(ServiceVerdict(service, "failed", NEVER_CREATED))
        else:
            verdict = judge_container(container, one_shot=service in one_shots)
            leftover = container.state == "created" or (
                container.state == "exited" and (service not in one_shots or container.exit_code != 0)
            )
            if creating and leftover:
                # Left over from an earlier run (a daemon that was stopped, a one-shot that failed last time):
                # `compose up` is about to start it again, so its old state decides nothing yet.
                verdict = ServiceVerdict(service, "waiting", f"{container.state}, being started", container.name)
            elif not creating and container.state == "created":
                # Nothing will start it any more: `compose up` has finished (a port clash, a missing mount...).
                verdict = ServiceVerdict(service, "failed", "created but never started", container.name)
            verdicts.append(verdict)
    statuses = {v.status for v in verdicts}
    overall: Status = "failed" if "failed" in statuses else "waiting" if "waiting" in statuses else "ready"
    return StackVerdict(overall, tuple(verdicts))


NEVER_CREATED = "no container: it was never created (invoke start)"


def root_failures(verdict: StackVerdict, config: Mapping[str, Any]) -> tuple[list[ServiceVerdict], list[str]]:
    """The failed services to explain (none of their dependencies failed), and those that only waited on them.

    A database that never became healthy leaves every service above it uncreated: lead with the database.
    """
    failed = {v.service for v in verdict.failed}
    services = config.get("services", {})

    def failed_dependency(name: str, seen: frozenset[str] = frozenset()) -> bool:
        for dep in services.get(name, {}).get("depends_on") or {}:
            if dep not in seen and (dep in failed or failed_dependency(dep, seen | {name})):
                return True
        return False

    roots = [v for v in verdict.failed if not failed_dependency(v.service)]
    blocked = [v.service for v in verdict.failed if v not in roots and v.reason == NEVER_CREATED]
    roots += [v for v in verdict.failed if v not in roots and v.service not in blocked]
    return roots, blocked


_UP_ERROR = re.compile(r"error|failed|didn't complete|is unhealthy|cannot|denied", re.IGNORECASE)


def up_failure_line(output: str) -> str | None:
    """The line of `compose up`'s output that says why it stopped (its last error line), if any."""
    lines = [line.strip() for line in output.splitlines() if _UP_ERROR.search(line)]
    return lines[-1][:300] if lines else None


def wait_for_stack(
    compose: Compose,
    services: Sequence[str],
    *,
    timeout: float,
    on_change: Callable[[ServiceVerdict], None] = lambda v: None,
    on_poll: Callable[[StackVerdict], None] = lambda v: None,
    still_starting: Callable[[], bool] = lambda: False,
) -> StackVerdict:
    """Poll until every service is ready or one has failed (decided at once), or until the timeout.

    `still_starting` tells whether `compose up` is still creating containers, so a service without a
    container yet is not mistaken for a finished stack.
    """
    one_shots = one_shot_services(compose.config)
    deadline = time.monotonic() + timeout
    last: dict[str, tuple[Status, str]] = {}
    while True:
        creating = still_starting()
        verdict = judge_stack(compose.states(), services, one_shots, creating=creating)
        for service in verdict.services:
            if last.get(service.service) != (service.status, service.reason):
                last[service.service] = (service.status, service.reason)
                on_change(service)
        on_poll(verdict)
        if verdict.status == "failed" or (verdict.status == "ready" and not creating):
            return verdict
        if time.monotonic() >= deadline:
            timed_out = tuple(
                ServiceVerdict(s.service, "failed", f"not ready after {timeout:.0f}s ({s.reason})", s.container)
                if s.status == "waiting"
                else s
                for s in verdict.services
            )
            return StackVerdict("failed", timed_out)
        time.sleep(POLL_SECONDS)


def last_health_outputs(container_names: Sequence[str]) -> dict[str, str]:
    """The newest healthcheck output of each container, in one `docker inspect` call."""
    names = [n for n in container_names if n]
    if not names:
        return {}
    result = run(["docker", "inspect", *names], check=False)
    if not result.ok:
        return {}
    outputs = {}
    for container in json.loads(result.stdout):
        log = ((container.get("State") or {}).get("Health") or {}).get("Log") or []
        if log:
            outputs[container["Name"].lstrip("/")] = log[-1].get("Output", "").strip().replace("\n", " ")[:60]
    return outputs


@dataclass(frozen=True)
class Diagnosis:
    service: str
    state: str
    exit_code: int | None
    oom_killed: bool
    health_log: list[str]
    hint: str | None


def diagnose(container_name: str, service: str, logs: str = "") -> Diagnosis:
    """Read the facts `docker inspect` holds about a failed container, and name a likely cause."""
    result = run(["docker", "inspect", container_name], check=False)
    state: dict[str, Any] = {}
    if result.ok:
        state = json.loads(result.stdout)[0].get("State", {})
    health_log = [entry.get("Output", "").strip() for entry in (state.get("Health") or {}).get("Log", [])[-3:]]
    oom = bool(state.get("OOMKilled"))
    return Diagnosis(
        service=service,
        state=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        oom_killed=oom,
        health_log=health_log,
        hint=hint_for(logs + "\n" + str(state.get("Error", "")), oom_killed=oom, exit_code=state.get("ExitCode")),
    )


_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("address already in use", "port is already allocated"),
        "a host port is taken: stop what holds it or change the *_PORT value in .env",
    ),
    (
        ("is not set", "must be set", "required variable"),
        "a required setting is missing: run `invoke env` and fill the values it reports",
    ),
    (
        ("access denied for user", "password authentication failed"),
        "credentials do not match the database: the volume was initialised with other passwords",
    ),
    (("no space left on device",), "the disk is full: free space (see `docker system df`)"),
)


def hint_for(text: str, *, oom_killed: bool = False, exit_code: int | None = None) -> str | None:
    if oom_killed:
        return "out of memory: raise the service's memory limit or free memory on the host"
    lowered = text.lower()
    for needles, hint in _HINTS:
        if any(needle in lowered for needle in needles):
            return hint
    if exit_code == 137:
        return "killed (exit 137): out of memory or stopped from outside"
    return None
