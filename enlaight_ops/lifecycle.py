"""Start a stack and wait until it is healthy, or say which service failed and why."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence

from . import doctor, ui
from .compose import Compose
from .errors import Interrupted, ToolkitError
from .health import (
    NEVER_CREATED,
    ServiceVerdict,
    StackVerdict,
    diagnose,
    root_failures,
    up_failure_line,
    wait_for_stack,
)
from .image_policy import ensure_images, last_line
from .progress import reporter

LOG_LINES_ON_FAILURE = 30


def start(compose: Compose, services: Sequence[str], *, build: bool, wait: bool, timeout: float) -> StackVerdict | None:
    """Pre-flight first, changing nothing (the doctor's checks, the service names); then images, build, up, wait."""
    services = compose.validate_services(services)
    expected = expected_services(compose, services)
    doctor.preflight(compose.settings, lambda: compose.config, expected)
    ensure_images(compose, expected, build=build, log=ui.info)
    if build:
        ui.info("building images")
        compose.run("build", *_buildable(compose, services))
    ui.info(f"starting {', '.join(services) if services else 'every service'}")
    with tempfile.TemporaryFile(mode="w+") as up_output:
        # `up` blocks on depends_on conditions; watching states meanwhile shows progress and catches a failed
        # dependency the moment it fails. Its own output is kept aside and shown only if it fails.
        process = compose.popen("up", "--detach", "--remove-orphans", *services, stdout=up_output, stderr=up_output)
        try:
            verdict = None
            if wait:
                verdict = _watch(compose, expected_services(compose, services), timeout,
                                 still_starting=lambda: process.poll() is None)  # fmt: skip
                if verdict.status == "failed":
                    # `up` may block forever on a dependency that will never be healthy: the verdict is in.
                    _stop(process)
            returncode = process.wait()
        finally:
            _stop(process)  # Ctrl-C, or any error: never leave `compose up` running behind us
        up_output.seek(0)
        up_text = compose.mask(up_output.read().rstrip()) if returncode != 0 else ""
    if returncode != 0 and (verdict is None or verdict.status == "ready"):
        ui.err.print(up_text, markup=False, highlight=False)
        raise ToolkitError(f"docker compose up failed (exit {returncode}): {up_failure_line(up_text) or 'see above'}")
    if verdict is not None:
        _finish(compose, verdict, up_text)
    else:
        ui.success("containers started (not waiting for healthy: --no-wait)")
    return verdict


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait(compose: Compose, services: Sequence[str], *, timeout: float) -> StackVerdict:
    verdict = _watch(compose, expected_services(compose, services), timeout)
    _finish(compose, verdict)
    return verdict


def _watch(compose: Compose, expected: list[str], timeout: float, **kwargs) -> StackVerdict:
    report = reporter()
    latest: list[StackVerdict] = []

    def on_poll(verdict: StackVerdict) -> None:
        latest[:] = [verdict]
        report.poll(verdict)

    try:
        return wait_for_stack(compose, expected, timeout=timeout, on_change=report.change, on_poll=on_poll, **kwargs)
    except KeyboardInterrupt:
        report.close()
        for service in latest[0].services if latest else ():
            ui.info(f"{service.service}: {service.status} ({service.reason})")
        raise Interrupted("stopped waiting (Ctrl-C); the containers keep running: `invoke wait` resumes") from None
    finally:
        report.close()


def _buildable(compose: Compose, services: Sequence[str]) -> list[str]:
    config_services = compose.config.get("services", {})
    return [name for name in expected_services(compose, services) if "build" in config_services.get(name, {})]


def expected_services(compose: Compose, services: Sequence[str]) -> list[str]:
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


def _finish(compose: Compose, verdict: StackVerdict, up_output: str = "") -> None:
    """Explain the failures that caused the others (first failing node of the dependency graph), in that order."""
    if verdict.status == "ready":
        ui.success("every service is ready")
        return
    roots, blocked = root_failures(verdict, compose.config)
    cause = up_failure_line(up_output)
    for failed in roots:
        if failed.reason == NEVER_CREATED and cause:
            failed = ServiceVerdict(failed.service, "failed", f"not created: {cause}")
        _explain(compose, failed)
    if up_output and not any(f.container for f in roots):
        ui.err.print(f"docker compose up said:\n{up_output}", markup=False, highlight=False)
    if blocked:
        ui.info(f"not started, waiting on {', '.join(f.service for f in roots)}: {', '.join(blocked)}")
    first = roots[0]
    raise ToolkitError(f"not healthy: {first.service} ({first.reason}); details above, `invoke logs -s "
                       f"{first.service}` for more")  # fmt: skip


def _explain(compose: Compose, failed: ServiceVerdict) -> None:
    logs = ""
    if failed.container:
        logs = compose.run("logs", "--no-color", "--tail", str(LOG_LINES_ON_FAILURE), failed.service,
                           capture=True, check=False).stdout or ""  # fmt: skip
    diagnosis = diagnose(failed.container, failed.service, logs) if failed.container else None
    ui.err.rule(f"{failed.service}: {failed.reason}", style="red")
    if diagnosis:
        # A running container's exit code is 0 whatever its last run ended with: show it only when it means something.
        exit_code = "" if diagnosis.state == "running" else f", exit code {diagnosis.exit_code}"
        ui.err.print(f"state {diagnosis.state}{exit_code}, OOM-killed {'yes' if diagnosis.oom_killed else 'no'}, "
                     f"restarted {diagnosis.restart_count} times", markup=False)  # fmt: skip
        for output in diagnosis.health_log:
            # The last line says what failed; a probe's traceback above it says nothing more to a person.
            ui.err.print(f"health check: {last_line(output)}", markup=False)
    if logs.strip():
        ui.err.print(f"last {LOG_LINES_ON_FAILURE} log lines:", markup=False)
        ui.err.print(compose.mask(logs.rstrip()), markup=False, highlight=False)
    if diagnosis and diagnosis.hint:
        ui.warn(f"hint: {diagnosis.hint}")
