"""Start a stack and wait until it is healthy, or say which service failed and why."""

from __future__ import annotations

from collections.abc import Sequence

from . import ui
from .compose import Compose
from .errors import ToolkitError
from .health import ServiceVerdict, StackVerdict, diagnose, wait_for_stack

LOG_LINES_ON_FAILURE = 30


def start(compose: Compose, services: Sequence[str], *, build: bool, wait: bool, timeout: float) -> StackVerdict | None:
    args = ["up", "--detach", "--remove-orphans"]
    if build:
        args.append("--build")
    ui.info(f"starting {', '.join(services) if services else 'every service'}")
    # `up` itself blocks on depends_on conditions; watching states meanwhile shows progress and catches a
    # failed dependency the moment it fails instead of when `up` gives up.
    process = compose.popen(*args, *services)
    if not wait:
        if process.wait() != 0:
            raise ToolkitError(f"docker compose up failed (exit {process.returncode})")
        return None
    expected = _expected_services(compose, services)
    verdict = wait_for_stack(
        compose,
        expected,
        timeout=timeout,
        on_change=_report_change,
        still_starting=lambda: process.poll() is None,
    )
    returncode = process.wait()
    if verdict.status == "ready" and returncode != 0:
        raise ToolkitError(f"docker compose up failed (exit {returncode}) although every service is ready")
    _finish(compose, verdict)
    return verdict


def wait(compose: Compose, services: Sequence[str], *, timeout: float) -> StackVerdict:
    verdict = wait_for_stack(compose, _expected_services(compose, services), timeout=timeout, on_change=_report_change)
    _finish(compose, verdict)
    return verdict


def _expected_services(compose: Compose, services: Sequence[str]) -> list[str]:
    """The selected services and, transitively, everything they depend on."""
    config_services = compose.config.get("services", {})
    pending = list(services or config_services)
    selected: list[str] = []
    while pending:
        name = pending.pop()
        if name in selected:
            continue
        selected.append(name)
        pending.extend((config_services.get(name, {}).get("depends_on") or {}).keys())
    return sorted(selected)


def _report_change(verdict: ServiceVerdict) -> None:
    line = f"{verdict.service}: {verdict.reason}"
    {"ready": ui.success, "waiting": ui.info, "failed": ui.error}[verdict.status](line)


def _finish(compose: Compose, verdict: StackVerdict) -> None:
    if verdict.status == "ready":
        ui.success("every service is ready")
        return
    for failed in verdict.failed:
        _explain(compose, failed)
    names = ", ".join(f.service for f in verdict.failed)
    raise ToolkitError(f"not healthy: {names} (details above; `invoke logs -s SERVICE` for more)")


def _explain(compose: Compose, failed: ServiceVerdict) -> None:
    logs = ""
    if failed.container:
        logs = (
            compose.run(
                "logs",
                "--no-color",
                "--tail",
                str(LOG_LINES_ON_FAILURE),
                failed.service,
                capture=True,
                check=False,
            ).stdout
            or ""
        )
    diagnosis = diagnose(failed.container, failed.service, logs) if failed.container else None
    ui.err.rule(f"{failed.service}: {failed.reason}")
    if diagnosis:
        ui.err.print(
            f"state {diagnosis.state}, exit code {diagnosis.exit_code}, "
            f"OOM-killed {'yes' if diagnosis.oom_killed else 'no'}",
            markup=False,
        )
        for output in diagnosis.health_log:
            ui.err.print(f"health check: {output}", markup=False)
    if logs.strip():
        ui.err.print(f"last {LOG_LINES_ON_FAILURE} log lines:", markup=False)
        ui.err.print(logs.rstrip(), markup=False, highlight=False)
    if diagnosis and diagnosis.hint:
        ui.warn(f"hint: {diagnosis.hint}")
