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
# A crash loop is this many restarts within this many seconds. Docker restarts a failing container after 0.1 s and
# doubles the delay (0.2, 0.4 ... up to 1 min) while each run lasts under 10 s: a container that dies at once
# reaches 3 restarts in about a second, one that dies after t seconds of running in about 3t. One or two restarts
# (a dependency briefly unreachable, `restart: unless-stopped` in production recovering from a hiccup) are waited
# out instead of failing `start` and stopping `compose up` halfway.
CRASH_LOOP_RESTARTS = 3
CRASH_LOOP_WINDOW = 60.0
# Twice as often as Compose's own --wait; a poll is one `docker ps` (~25 ms). `docker inspect` runs only when a
# container shows a restart (RestartWatch) and, on a terminal, when a service changes (progress.py).
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


def judge_container(
    container: ContainerState, *, one_shot: bool, restarts: int = 0, last_exit: int | None = None
) -> ServiceVerdict:
    """`restarts`: how many times the engine restarted this container within the last CRASH_LOOP_WINDOW;
    `last_exit`: the exit code of its last run, when a poll caught it restarting (a running one reports 0)."""

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
    if restarts >= CRASH_LOOP_RESTARTS and not (state == "running" and health == "healthy"):
        # A healthy container has recovered by its own check's word; anything else keeps crashing.
        code = container.exit_code if state == "restarting" else last_exit
        exited = f", last exit code {code}" if code is not None else ""
        return verdict("failed", f"crash loop: restarted {restarts} times in {CRASH_LOOP_WINDOW:.0f}s{exited}")
    if state == "restarting":
        return verdict(
            "waiting", f"restarting ({_times(restarts)} in {CRASH_LOOP_WINDOW:.0f}s)" if restarts else "restarting"
        )
    if state == "running":
        if health in ("", "healthy"):
            return verdict("ready", "healthy" if health else "running (no healthcheck)")
        if health == "unhealthy":
            return verdict("failed", "unhealthy")
        return verdict("waiting", f"health {health}" + (f" (restarted {_times(restarts)})" if restarts else ""))
    return verdict("waiting", state or "not started")


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


# Compose creates a replacement container under a temporary name, `<12 hex of the old ID>_<project-service-N>`,
# and renames it once the old one is removed (older Compose renamed the old container so instead). An interrupted
# recreate leaves such a container behind beside the real one.
_RECREATE_LEFTOVER = re.compile(r"^[0-9a-f]{12}_")


def service_containers(containers: Sequence[ContainerState]) -> list[ContainerState]:
    """The containers that decide a service's verdict: every replica, but not a recreate's leftover when the
    service has a container under its own name (the leftover is judged only when it is all there is)."""
    own = [c for c in containers if not _RECREATE_LEFTOVER.match(c.name)]
    return own or list(containers)


def judge_stack(
    containers: Iterable[ContainerState],
    expected: Sequence[str],
    one_shots: set[str],
    *,
    creating: bool = False,
    restarts: Mapping[str, int] | None = None,
    last_exits: Mapping[str, int] | None = None,
) -> StackVerdict:
    """`creating`: `compose up` is still running, so a missing container may yet appear. `restarts` and
    `last_exits`: recent restarts and last exit codes by container key (RestartWatch)."""
    by_service: dict[str, list[ContainerState]] = {}
    for container in containers:
        by_service.setdefault(container.service, []).append(container)
    verdicts = []
    for service in expected:
        group = service_containers(by_service.get(service, []))
        if not group:
            if creating:
                verdicts.append(ServiceVerdict(service, "waiting", "no container yet"))
            else:
                verdicts.append(ServiceVerdict(service, "failed", NEVER_CREATED))
            continue
        judged = [
            _judge_in_stack(
                c, service in one_shots, creating, (restarts or {}).get(c.key, 0), (last_exits or {}).get(c.key)
            )
            for c in group
        ]
        verdicts.append(_service_verdict(judged))
    statuses = {v.status for v in verdicts}
    overall: Status = "failed" if "failed" in statuses else "waiting" if "waiting" in statuses else "ready"
    return StackVerdict(overall, tuple(verdicts))


def _judge_in_stack(
    container: ContainerState, one_shot: bool, creating: bool, restarts: int, last_exit: int | None
) -> ServiceVerdict:
    service = container.service
    leftover = container.state == "created" or (
        container.state == "exited" and (not one_shot or container.exit_code != 0)
    )
    if creating and leftover:
        # Left over from an earlier run (a daemon that was stopped, a one-shot that failed last time):
        # `compose up` is about to start it again, so its old state decides nothing yet.
        return ServiceVerdict(service, "waiting", f"{container.state}, being started", container.name)
    if not creating and container.state == "created":
        # Nothing will start it any more: `compose up` has finished (a port clash, a missing mount...).
        return ServiceVerdict(service, "failed", "created but never started", container.name)
    return judge_container(container, one_shot=one_shot, restarts=restarts, last_exit=last_exit)


def _service_verdict(judged: Sequence[ServiceVerdict]) -> ServiceVerdict:
    """One service's verdict from each of its containers': the worst one decides, and names its container."""
    if len(judged) == 1:
        return judged[0]
    for status in ("failed", "waiting"):
        matching = [v for v in judged if v.status == status]
        if matching:
            first = matching[0]
            reason = f"{first.reason} ({first.container}; {len(matching)} of {len(judged)} containers {status})"
            return ServiceVerdict(first.service, status, reason, first.container)
    first = judged[0]
    return ServiceVerdict(first.service, "ready", f"{first.reason} ({len(judged)} containers)", first.container)


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


# `docker ps` status of a running container: "Up 3 seconds (healthy)", "Up Less than a second", "Up About a minute".
_UP_FOR = re.compile(
    r"^Up (?:(Less than a second)|About an? (minute|hour)|(\d+) (second|minute|hour|day|week|month|year)s?)"
)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000,
                 "year": 31536000}  # fmt: skip


def up_seconds(status: str) -> float | None:
    """How long a running container has been up, as the engine rounds it (never more than the truth, and never
    smaller later unless the container started again); None when the status is not "Up ..."."""
    match = _UP_FOR.match(status)
    if not match:
        return None
    if match.group(1):
        return 0.0
    if match.group(2):
        return float(_UNIT_SECONDS[match.group(2)])
    return float(int(match.group(3)) * _UNIT_SECONDS[match.group(4)])


class RestartWatch:
    """Restart counts of containers over time, to tell a crash loop from a transient restart.

    `docker ps` has no restart count, and reading it with `docker inspect` on every poll would cost a CLI call
    each time, so the counts are read once for every container when watching starts (restarts before that are
    not "recent"), then only for a container that shows a sign of a restart in `docker ps`: it is restarting,
    or it has been up for less time than at the previous poll. A container that appears later is new: all its
    restarts happened while we watched. Pure: the caller reads the counts (restart_counts) and the clock.
    """

    def __init__(self, window: float = CRASH_LOOP_WINDOW) -> None:
        self._window = window
        self._counts: dict[str, int] = {}
        self._up: dict[str, float] = {}
        self._restarts: dict[str, list[tuple[float, int]]] = {}
        self.last_exits: dict[str, int] = {}  # the exit code `docker ps` showed the last time each was restarting
        self._watching = False

    def to_inspect(self, containers: Iterable[ContainerState]) -> list[str]:
        """The keys of the containers whose restart count must be read now."""
        due = []
        for container in containers:
            key = container.key
            up = up_seconds(container.status) if container.state == "running" else None
            previous = self._up.get(key)
            if up is not None:
                self._up[key] = up
            if container.state == "restarting":
                self.last_exits[key] = container.exit_code
            if not self._watching:
                due.append(key)
                continue
            self._counts.setdefault(key, 0)
            if container.state == "restarting" or (up is not None and previous is not None and up < previous):
                due.append(key)
        self._watching = True
        return due

    def record(self, counts: Mapping[str, int], now: float) -> None:
        """Restart counts read at `now`: an increase is that many restarts at `now`. A decrease is the engine
        starting the count again (a `docker start`): the new count is the baseline, nothing recent."""
        for key, count in counts.items():
            before = self._counts.get(key)
            self._counts[key] = count
            if before is not None and count > before:
                self._restarts.setdefault(key, []).append((now, count - before))

    def recent(self, now: float) -> dict[str, int]:
        """Restarts within the window, by container key."""
        return {key: total for key, events in self._restarts.items()
                if (total := sum(n for at, n in events if now - at <= self._window))}  # fmt: skip


def parse_restart_counts(text: str, keys: Iterable[str]) -> dict[str, int]:
    """`docker inspect` lines in _RESTART_FORMAT -> restart count by the key asked for (an ID or a name)."""
    wanted = set(keys)
    counts = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].strip().isdigit():
            continue
        ident, name, count = parts[0], parts[1].lstrip("/"), int(parts[2])
        for key in (ident, name):
            if key in wanted:
                counts[key] = count
    return counts


_RESTART_FORMAT = "{{.Id}}\t{{.Name}}\t{{.RestartCount}}"


def restart_counts(keys: Sequence[str]) -> dict[str, int]:
    """The engine's restart count of each container, in one `docker inspect`. A container removed meanwhile makes
    the command fail but the others are still printed: read what is there."""
    if not keys:
        return {}
    result = run(["docker", "inspect", "--format", _RESTART_FORMAT, *keys], check=False, what="docker inspect")
    return parse_restart_counts(result.stdout, keys)


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
    restarts = RestartWatch()
    while True:
        creating = still_starting()
        states = compose.states()
        now = time.monotonic()
        due = restarts.to_inspect(states)
        if due:
            restarts.record(restart_counts(due), now)
        verdict = judge_stack(states, services, one_shots, creating=creating, restarts=restarts.recent(now),
                              last_exits=restarts.last_exits)  # fmt: skip
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
    restart_count: int = 0


def diagnose(container_name: str, service: str, logs: str = "") -> Diagnosis:
    """Read the facts `docker inspect` holds about a failed container, and name a likely cause."""
    result = run(["docker", "inspect", container_name], check=False)
    state: dict[str, Any] = {}
    restart_count = 0
    if result.ok:
        inspected = json.loads(result.stdout)[0]
        state, restart_count = inspected.get("State", {}), int(inspected.get("RestartCount") or 0)
    health_log = [entry.get("Output", "").strip() for entry in (state.get("Health") or {}).get("Log", [])[-3:]]
    oom = bool(state.get("OOMKilled"))
    return Diagnosis(
        service=service,
        state=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        oom_killed=oom,
        health_log=health_log,
        hint=hint_for(logs + "\n" + str(state.get("Error", "")), oom_killed=oom, exit_code=state.get("ExitCode")),
        restart_count=restart_count,
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
