"""The `swarm` invoke collection: render, check, deploy, ps, logs, rm.

tasks.py passes its own helpers in (the error-handling decorator, settings, .env creation, the yes/no question)
so these tasks behave exactly like the others. Swarm always runs production (base + prod overlay); the stack
is named after the project (enlaight.project), so its volumes are the compose project's names.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection

from .. import ui
from ..compose import Compose
from ..errors import UsageError

ENDPOINT_HELP = "auto (dnsrr + host-mode ports when the kernel has no IPVS, else vip + ingress), vip or dnsrr"
REMOVE_TIMEOUT = 120.0


def parse_replicas(values: list[str] | None) -> dict[str, int]:
    """--replicas backend=2 -> {"backend": 2}."""
    replicas = {}
    for value in values or []:
        match = re.fullmatch(r"([A-Za-z0-9][\w.-]*)=([0-9]+)", value.strip())
        if not match or int(match.group(2)) < 1:
            raise UsageError(f"--replicas takes SERVICE=N with N at least 1, not {value!r}")
        replicas[match.group(1)] = int(match.group(2))
    return replicas


def swarm_collection(
    stack_task: Callable[..., Any],
    settings_of: Callable[[Any, bool], Any],
    ensure_env_file: Callable[[Any], None],
    confirm: Callable[[str], bool],
) -> Collection:
    def compose_of(c: Any) -> Compose:
        settings = settings_of(c, True)
        ui.info(f"swarm stack {settings.project} · " + settings.describe())
        ensure_env_file(settings)
        return Compose(settings)

    def registry_of(c: Any) -> str:
        return str(c.config.get("enlaight", {}).get("registry", "") or "")

    def options(c: Any, **kwargs: Any) -> Any:
        from .deploy import SwarmOptions

        return SwarmOptions(registry=registry_of(c), **kwargs)

    @stack_task(
        iterable=["service", "replicas"],
        help={
            "output": "write the stack file here (its secrets go to FILE.secrets/, mode 0700); default: stdout",
            "endpoint_mode": ENDPOINT_HELP,
            "replicas": "SERVICE=N: replicas of a service (repeatable); stateful services always run 1",
            "service": "render only these services (repeatable); default: all",
            "no_reservations": "drop cpu/memory reservations (limits stay): for hosts smaller than the reservations",
        },
    )
    def render(c, output=None, endpoint_mode="auto", replicas=None, service=None, no_reservations=False):
        """Render the Swarm stack file from the compose files (base + prod); one line per dropped/translated key."""
        from .deploy import render_stack, validate, write_stack

        compose = compose_of(c)
        target = Path(output).resolve() if output else None
        secret_dir = target.with_name(target.name + ".secrets") if target else Path("/run/secrets-not-written")
        rendered, findings = render_stack(compose, options(c, endpoint_mode=endpoint_mode,
                                          replicas=parse_replicas(replicas), only=tuple(service or ()),
                                          no_reservations=no_reservations), secret_dir)  # fmt: skip
        for note in rendered.notes:
            ui.info(note)
        for finding in findings:
            if finding.severity != "info":
                ui.warn(finding.line())
        if target is None:
            print(json.dumps(rendered.stack, indent=2))
            if rendered.secret_files:
                ui.warn(f"secrets are not written without -o: {', '.join(rendered.secret_files)}")
            return
        write_stack(rendered, target, secret_dir)
        validate(target)
        ui.success(f"wrote {target} (valid for `docker stack deploy`); secrets in {secret_dir}")

    @stack_task(help={"endpoint_mode": ENDPOINT_HELP})
    def check(c, endpoint_mode="auto"):
        """What in the compose files would not survive `docker stack deploy`, with the fix for each."""
        from . import engine
        from .check import lint

        compose = compose_of(c)
        mode, reason = engine.choose_endpoint_mode(endpoint_mode)
        ui.info(f"endpoint mode {mode}: {reason}")
        findings = lint(compose.config, registry=registry_of(c), endpoint_mode=mode)
        ui.table("swarm check", ["service", "key", "level", "problem", "fix"],
                 [(f.service or "-", f.key, f.severity, f.problem, f.fix) for f in findings])  # fmt: skip
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise UsageError(f"{len(errors)} problem(s) would stop `docker stack deploy`")
        warnings = [f for f in findings if f.severity == "warning"]
        ui.success(f"render handles every finding; {len(warnings)} warning(s) to review")

    @stack_task(
        iterable=["service", "replicas"],
        help={
            "replicas": "SERVICE=N: replicas of a service (repeatable), e.g. --replicas backend=3",
            "service": "deploy only these services (repeatable); default: all",
            "endpoint_mode": ENDPOINT_HELP,
            "no_reservations": "drop cpu/memory reservations (limits stay): for hosts smaller than the reservations",
            "timeout": "seconds to wait for every service to converge (default: enlaight.wait_timeout)",
        },
    )
    def deploy(c, replicas=None, service=None, endpoint_mode="auto", no_reservations=False, timeout=None):
        """Render, validate and deploy the stack to the swarm, then wait until every service converged;
        a rollout that fails its health gate is rolled back by Swarm and reported with the task's logs."""
        from .deploy import deploy as deploy_stack

        compose = compose_of(c)
        seconds = _seconds(timeout, compose.settings.wait_timeout)
        deploy_stack(compose, options(c, endpoint_mode=endpoint_mode, replicas=parse_replicas(replicas),
                                      only=tuple(service or ()), no_reservations=no_reservations),
                     timeout=seconds)  # fmt: skip

    @stack_task(help={"json": "print machine-readable JSON instead of tables"})
    def ps(c, json_=False):
        """The stack's services (replicas running, update state) and their current tasks."""
        from . import engine
        from .status import judge_service

        stack = settings_of(c, True).project
        engine.require_manager()
        services = engine.services(stack)
        if json_:
            print(json.dumps([{"service": s.name, "desired": s.desired, "running": len(s.running),
                               "update": s.update_state or None, "image": s.image,
                               "tasks": [t.__dict__ for t in s.tasks if t.desired == "Running"]}
                              for s in services], indent=2))  # fmt: skip
            return
        if not services:
            ui.info(f"stack {stack} has no services on this swarm")
            return
        ui.table(f"stack {stack}", ["service", "replicas", "state", "update", "image"],
                 [(s.name, f"{len(s.running)}/{'global' if s.desired is None else s.desired}",
                   judge_service(s).reason, s.update_state or "-", s.image) for s in services])  # fmt: skip
        ui.table("tasks", ["task", "node", "state", "since", "error"],
                 [(f"{s.name}.{t.slot}", t.node or "-", t.state, t.since, t.error) for s in services for t in s.tasks
                  if t.desired == "Running"])  # fmt: skip

    @stack_task(
        help={
            "service": "the service (backend, mysql, ...)",
            "follow": "keep printing new lines",
            "tail": "number of lines to show from the end of each task's log",
            "since": "only lines since a time (2026-01-02T15:04:05) or a duration (10m)",
        },
    )
    def logs(c, service, follow=False, tail=None, since=None):
        """Print a service's logs from every task, each line prefixed with its task and node."""
        from ..runner import run
        from . import engine

        stack = settings_of(c, True).project
        engine.require_manager()
        known = sorted(s.name for s in engine.services(stack))
        if service not in known:
            raise UsageError(f"stack {stack} has no service {service!r}: deployed are {', '.join(known) or 'none'}")
        argv = ["docker", "service", "logs"] + (["--follow"] if follow else [])
        argv += (["--tail", str(tail)] if tail is not None else []) + (["--since", since] if since else [])
        run([*argv, f"{stack}_{service}"], capture=False, check=False)  # streams, like `invoke logs`

    @stack_task(
        help={
            "volumes": "also delete the stack's volumes on this node: ALL ITS DATA (asks first)",
            "yes": "do not ask before deleting volumes",
        }
    )
    def rm(c, volumes=False, yes=False):
        """Remove the stack (services, networks, its configs and secrets); volumes stay unless --volumes."""
        from . import engine

        stack = settings_of(c, True).project
        engine.require_manager()
        if volumes:
            ui.warn(f"--volumes deletes the volumes of stack {stack} on this node: all its databases and files")
            if not yes and not confirm(f"delete the volumes of {stack}?"):
                raise UsageError("not confirmed: nothing was removed (pass --yes to skip the question)")
        ui.info(f"removing stack {stack}")
        from ..runner import run

        run(["docker", "stack", "rm", stack], what="docker stack rm")
        # `stack rm` returns before the containers are gone; volumes and networks in use cannot be removed.
        deadline = time.monotonic() + REMOVE_TIMEOUT
        while (engine.stack_containers(stack) or engine.stack_networks(stack)) and time.monotonic() < deadline:
            time.sleep(0.5)
        if volumes:
            names = engine.stack_volumes(stack)
            for name in names:
                run(["docker", "volume", "rm", name], what="docker volume rm")
            ui.success(f"removed {len(names)} volume(s) on this node; other nodes keep theirs (`docker volume ls`)")
        ui.success(f"stack {stack} removed")

    swarm = Collection("swarm")
    for task in (render, check, deploy, ps, logs, rm):
        swarm.add_task(task)
    return swarm


def _seconds(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise UsageError(f"--timeout must be a number of seconds above 0, not {value!r}")
    return seconds
