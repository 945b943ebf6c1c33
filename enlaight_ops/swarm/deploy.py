"""Render, validate, deploy and wait: `invoke swarm.render`, `swarm.check` and `swarm.deploy`.

Pre-flight first (no impact yet): the swarm, the rendered file (`docker stack config`), node labels, capacity.
Then the deploy, then a wait on task states with the live status of `invoke wait`; a rollout Swarm rolled back
is reported with the failing task's error and logs.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ui
from ..compose import Compose
from ..errors import Interrupted, ToolkitError, UsageError
from ..health import StackVerdict
from ..runner import run
from . import engine
from .check import Finding, capacity, lint, required_labels
from .render import Rendered, RenderOptions, render, select_services
from .status import Baseline, baseline, judge_stack

POLL_SECONDS = 1.0
# A task Swarm cannot place (no node has the label, the resources or the port) stays "pending" forever.
PENDING_GRACE = 20.0


class SwarmDeployFailed(ToolkitError):
    """A service did not converge: rolled back, paused, or still failing when the time ran out."""


@dataclass(frozen=True)
class SwarmOptions:
    registry: str = ""
    endpoint_mode: str = "auto"  # auto | vip | dnsrr
    replicas: Mapping[str, int] | None = None
    only: tuple[str, ...] = ()
    no_reservations: bool = False


@dataclass
class Deployed:
    deploy_seconds: float
    converge_seconds: float
    verdict: StackVerdict


def render_stack(compose: Compose, options: SwarmOptions, secret_dir: Path) -> tuple[Rendered, list[Finding]]:
    """The stack file of the compose stack (base + prod), and the lint of the config it came from."""
    config = compose.config
    mode, reason = engine.choose_endpoint_mode(options.endpoint_mode)
    files = {item["file"]: Path(item["file"]).read_bytes() for item in (config.get("configs") or {}).values()
             if item.get("file") and Path(item["file"]).is_file()}  # fmt: skip
    rendered = render(config, RenderOptions(
        stack=compose.settings.project, registry=options.registry, endpoint_mode=mode, mode_reason=reason,
        replicas=dict(options.replicas or {}), file_contents=files, secret_dir=str(secret_dir), only=options.only,
    ))  # fmt: skip
    if options.no_reservations:
        for service in rendered.stack["services"].values():
            service.get("deploy", {}).get("resources", {}).pop("reservations", None)
        rendered.notes.append("reservations dropped (--no-reservations): limits stay")
    return rendered, lint(select_services(config, options.only), registry=options.registry, endpoint_mode=mode)


def write_stack(rendered: Rendered, stack_file: Path, secret_dir: Path) -> None:
    """The stack file, and each secret in its own 0600 file in a 0700 directory (never in argv or output)."""
    secret_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(secret_dir, stat.S_IRWXU)
    for name, value in rendered.secret_files.items():
        path = secret_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
    # JSON is YAML: `docker stack` reads it, and no YAML library is needed to write it. 0600: the environment of
    # the services whose images cannot read *_FILE still holds secrets from .env.
    fd = os.open(stack_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(rendered.stack, indent=2) + "\n")
    os.chmod(stack_file, 0o600)


def validate(stack_file: Path) -> None:
    """`docker stack config`: the CLI's own schema check of a stack file; no swarm needed."""
    run(["docker", "stack", "config", "--compose-file", str(stack_file)], what="docker stack config")


def ensure_labels(stack: Mapping[str, Any], log: Callable[[str], object]) -> None:
    """Every placement label on some node; a single-node swarm gets them (its one node holds every volume)."""
    needed = required_labels(stack)
    nodes = engine.nodes()
    missing = {label: names for label, names in needed.items()
               if not any(node.labels.get(label) == "true" for node in nodes)}  # fmt: skip
    if not missing:
        return
    if len(nodes) == 1:
        for label in missing:
            engine.add_node_label(nodes[0], label)
        log(f"labelled the only node {nodes[0].hostname}: {', '.join(f'{label}=true' for label in missing)}")
        return
    first = next(iter(missing))
    fix = f"`docker node update --label-add {first}=true NODE`"
    raise UsageError(f"no node carries the label(s) {', '.join(missing)} that {', '.join(missing[first])} need "
                     f"(their volumes stay on that node): {fix}")  # fmt: skip


def check_capacity(stack: Mapping[str, Any]) -> None:
    usable = [(n.nano_cpus, n.memory_bytes) for n in engine.nodes()
              if n.state == "ready" and n.availability == "active"]  # fmt: skip
    for finding in capacity(stack, usable):
        raise UsageError(f"{finding.problem} - fix: {finding.fix}")


def deploy(
    compose: Compose, options: SwarmOptions, *, timeout: float, log: Callable[[str], object] = ui.info
) -> Deployed:
    stack = compose.settings.project
    engine.require_manager()
    with tempfile.TemporaryDirectory(prefix="enlaight-swarm-") as tmp:
        secret_dir = Path(tmp) / "secrets"
        rendered, findings = render_stack(compose, options, secret_dir)
        for finding in findings:
            if finding.severity != "info":
                ui.warn(finding.line())
        log(next(note for note in rendered.notes if note.startswith("endpoint mode")))
        stack_file = Path(tmp) / "stack.yml"
        write_stack(rendered, stack_file, secret_dir)
        validate(stack_file)
        ensure_labels(rendered.stack, log)
        check_capacity(rendered.stack)
        before = baseline(engine.services(stack))
        log(f"deploying stack {stack}: {', '.join(sorted(rendered.stack['services']))}")
        started = time.monotonic()
        engine.deploy(stack_file, stack)
        deploy_seconds = time.monotonic() - started
    verdict = wait(stack, set(rendered.stack["services"]), before, timeout=timeout)
    converge_seconds = time.monotonic() - started
    _prune_old_versions(stack, rendered, log)
    ui.success(f"stack {stack} converged: deploy {deploy_seconds:.1f}s, converged {converge_seconds:.1f}s after it")
    return Deployed(deploy_seconds, converge_seconds, verdict)


def wait(stack: str, expected: set[str], before: Mapping[str, Baseline], *, timeout: float) -> StackVerdict:
    from ..progress import reporter

    report = reporter()
    deadline = time.monotonic() + timeout
    pending_since: dict[str, float] = {}
    shown: dict[str, tuple[str, str]] = {}
    verdict = StackVerdict("waiting")
    try:
        while True:
            time.sleep(POLL_SECONDS)  # first: Swarm starts an update a moment after stack deploy returns
            states = [s for s in engine.services(stack) if s.name in expected]
            verdict = judge_stack(states, before)
            if len(states) < len(expected):
                verdict = StackVerdict("waiting", verdict.services)
            for service in verdict.services:
                if shown.get(service.service) != (service.status, service.reason):
                    shown[service.service] = (service.status, service.reason)
                    report.change(service)
            report.poll(verdict)
            stuck = _stuck_pending(states, pending_since)
            if verdict.status == "failed" or stuck:
                report.close()
                _explain(states, [v.service for v in verdict.failed] or stuck)
                failed = verdict.failed[0] if verdict.failed else None
                reason = f"{failed.service}: {failed.reason}" if failed else f"{stuck[0]}: tasks cannot be placed"
                raise SwarmDeployFailed(f"stack {stack} did not converge: {reason}")
            if verdict.status == "ready":
                return verdict
            if time.monotonic() > deadline:
                report.close()
                waiting = [v for v in verdict.services if v.status != "ready"]
                _explain(states, [v.service for v in waiting])
                names = ", ".join(f"{v.service} ({v.reason})" for v in waiting) or "services not created"
                raise SwarmDeployFailed(f"stack {stack} did not converge within {timeout:.0f}s: {names}")
    except KeyboardInterrupt:
        raise Interrupted("stopped waiting (Ctrl-C); Swarm keeps deploying: `invoke swarm.ps` shows it") from None
    finally:
        report.close()


def _stuck_pending(states: Sequence[engine.ServiceState], since: dict[str, float]) -> list[str]:
    """Services with a task pending for lack of a node for longer than PENDING_GRACE."""
    now = time.monotonic()
    stuck = []
    for service in states:
        pending = [t for t in service.tasks if t.desired == "Running" and t.state == "Pending" and t.error]
        if not pending:
            since.pop(service.name, None)
            continue
        if now - since.setdefault(service.name, now) > PENDING_GRACE:
            stuck.append(service.name)
    return stuck


def _explain(states: Sequence[engine.ServiceState], names: Sequence[str]) -> None:
    """The failing task of each service: its state, error, node, and last log lines."""
    for service in states:
        if service.name not in names:
            continue
        task = service.latest_failure or next((t for t in service.tasks if t.state == "Pending"), None)
        if task is None:
            ui.error(f"{service.name}: {service.update_message or 'not converged'}")
            continue
        ui.error(f"{service.name}: task {task.id[:12]} {task.state.lower()} on {task.node or 'no node'}: "
                 f"{task.error or 'no error reported'}")  # fmt: skip
        logs = engine.task_logs(task.id) if task.state != "Pending" else ""
        if logs:
            ui.info(f"last log lines of task {task.id[:12]} (`docker service logs {task.id[:12]}`):")
            for line in logs.splitlines()[-30:]:
                ui.err.print(f"    {line}", markup=False, highlight=False)


def _prune_old_versions(stack: str, rendered: Rendered, log: Callable[[str], object]) -> None:
    """Earlier versions of the stack's configs and secrets (each change made a new name); in-use ones stay."""
    for kind, key in (("config", "configs"), ("secret", "secrets")):
        current = {item["name"] for item in rendered.stack.get(key, {}).values()}
        old = [name for name in engine.stack_objects(kind, stack) if name not in current]
        removed = engine.remove_unused(kind, old)
        if removed:
            log(f"removed {len(removed)} unused {kind} version(s): {', '.join(removed)}")


def push_images(compose: Compose, registry: str, services: Sequence[str], log: Callable[[str], object]) -> list[str]:
    """Tag and push what nodes cannot pull elsewhere (built and registry-free local images) to `registry`."""
    if not registry:
        raise UsageError("no registry to push to: set enlaight.registry (invoke.yaml, or INVOKE_ENLAIGHT_REGISTRY), "
                         "e.g. registry.example:5000")  # fmt: skip
    from .render import local_only_images, registry_image, select_services

    config = select_services(compose.config, tuple(services))
    pushed = []
    for image in sorted(local_only_images(config.get("services", {}))):
        target = registry_image(registry, image)
        started = time.monotonic()
        engine.push(image, target)
        log(f"pushed {target} ({time.monotonic() - started:.1f}s)")
        pushed.append(target)
    return pushed
