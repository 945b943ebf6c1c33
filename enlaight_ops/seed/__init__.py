"""`invoke seed`: ordered, idempotent seed steps (backend, Superset, then n8n) on a running stack.

Pre-flight first (no impact yet): which steps run and which are skipped because their services are not running;
`--strict` turns a skip into a failure before anything changes. Then each step runs and reports what it created,
updated, removed and found already there. Nothing here runs on service start: only when a person or CI asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..compose import Compose
from ..errors import UsageError
from .backend import BackendStep
from .base import SeedContext, Step, stack_env
from .n8n import N8nStep
from .report import SeedError, StepReport
from .superset import SupersetStep

STEPS: tuple[Step, ...] = (BackendStep(), SupersetStep(), N8nStep())


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    skip_reason: str | None


def select_steps(only: Sequence[str] | None, steps: Sequence[Step] | None = None) -> list[Step]:
    """The steps `--only` names, always in the seed order; all of them when none is named."""
    steps = STEPS if steps is None else steps
    names = [step.name for step in steps]
    wanted = list(dict.fromkeys(only or names))
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise UsageError(f"unknown seed step {', '.join(unknown)}: the steps are {', '.join(names)}")
    return [step for step in steps if step.name in wanted]


def plan(steps: Sequence[Step], ctx: SeedContext) -> list[PlannedStep]:
    planned = []
    for step in steps:
        problems = [p for p in (ctx.problem(service) for service in step.services) if p]
        planned.append(PlannedStep(step, problems[0] if problems else None))
    return planned


def reset_warning(steps: Sequence[Step]) -> str:
    return (
        f"--reset deletes the sample data of {', '.join(step.name for step in steps)} (sample rows, the sample "
        "knowledge base and the sample Superset dashboard only; nothing a person created) and seeds it again"
    )


def run_seed(
    compose: Compose,
    steps: Sequence[Step],
    *,
    reset: bool = False,
    strict: bool = False,
    info: Callable[[str], object] = print,
    report_line: Callable[[str, str], object] | None = None,
) -> list[StepReport]:
    ctx = SeedContext(
        compose=compose, env=stack_env(compose.settings), states=compose.states(), strict=strict, log=info
    )
    planned = plan(steps, ctx)
    skipped = [p for p in planned if p.skip_reason]
    if strict and skipped:
        reasons = "; ".join(f"{p.step.name}: {p.skip_reason}" for p in skipped)
        raise SeedError(f"--strict: not seeding, a step cannot run: {reasons}")
    report_line = report_line or (lambda _kind, text: info(text))
    reports = []
    for item in planned:
        if item.skip_reason:
            report = StepReport(item.step.name, skipped=item.skip_reason)
            report_line("skipped", report.summary())
            reports.append(report)
            continue
        info(f"{item.step.name}: seeding{' (reset)' if reset else ''} ...")
        started = time.monotonic()
        try:
            report = item.step.run(ctx, reset=reset)
        except SeedError as exc:
            raise SeedError(f"seed step {item.step.name} failed: {exc}") from None
        for kind, text in report.lines():
            report_line(kind, text)
        report_line("summary", f"{report.summary()} ({time.monotonic() - started:.1f}s)")
        reports.append(report)
    return reports


__all__ = ["STEPS", "SeedError", "StepReport", "reset_warning", "run_seed", "select_steps"]
