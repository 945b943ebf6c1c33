"""The live table's cost: what it reads from the engine, and when (bench/bench_wait.py measures the CPU)."""

from __future__ import annotations

from enlaight_ops import progress
from enlaight_ops.health import ServiceVerdict, StackVerdict


def stack(*services: ServiceVerdict) -> StackVerdict:
    return StackVerdict("waiting", services)


def test_health_output_is_read_on_a_change_then_seldom_while_waiting(monkeypatch):
    reads: list[list[str]] = []
    monkeypatch.setattr(progress, "last_health_outputs", lambda names: reads.append(list(names)) or {})
    reporter = progress.LiveTableReporter()
    try:
        db = ServiceVerdict("db", "ready", "healthy", "p-db-1")
        api = ServiceVerdict("api", "waiting", "health starting", "p-api-1")
        assert reporter._outputs_due(stack(db, api), now=0.0) == ["p-db-1", "p-api-1"]  # first sight: both
        assert reporter._outputs_due(stack(db, api), now=1.0) == []  # nothing changed
        # Still waiting: read again only after HEALTH_OUTPUT_REFRESH; a ready service never again.
        assert reporter._outputs_due(stack(db, api), now=progress.HEALTH_OUTPUT_REFRESH) == ["p-api-1"]
        unhealthy = ServiceVerdict("api", "failed", "unhealthy", "p-api-1")
        assert reporter._outputs_due(stack(db, unhealthy), now=progress.HEALTH_OUTPUT_REFRESH + 0.25) == ["p-api-1"]
    finally:
        reporter.close()


def test_a_settled_stack_is_read_once_not_on_every_poll(monkeypatch):
    reads: list[list[str]] = []
    monkeypatch.setattr(progress, "last_health_outputs", lambda names: reads.append(list(names)) or {})
    reporter = progress.LiveTableReporter()
    try:
        verdict = StackVerdict("ready", (ServiceVerdict("db", "ready", "healthy", "p-db-1"),))
        for _ in range(20):
            reporter.poll(verdict)
        assert reads == [["p-db-1"]]
    finally:
        reporter.close()


def test_the_clock_alone_redraws_the_table_at_most_every_clock_redraw(monkeypatch):
    monkeypatch.setattr(progress, "last_health_outputs", lambda names: {})
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    reporter = progress.LiveTableReporter()
    draws: list[object] = []
    monkeypatch.setattr(reporter._live, "update", lambda table, refresh=False: draws.append(table))
    try:
        waiting = stack(ServiceVerdict("api", "waiting", "health starting", "p-api-1"))
        for _ in range(40):  # 10 s of polls every 0.25 s: the waited time changes every second
            reporter.poll(waiting)
            clock[0] += 0.25
        assert 2 <= len(draws) <= 10 / progress.CLOCK_REDRAW + 1
        before = len(draws)
        reporter.poll(stack(ServiceVerdict("api", "ready", "healthy", "p-api-1")))
        assert len(draws) == before + 1  # a state change is drawn at once, clock or not
    finally:
        reporter.close()
