"""Run one job per component in threads, show progress, and stop them all at the first failure or Ctrl-C."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from .progress import Board
from .streams import Cancelled, Processes

T = TypeVar("T")


def run_parallel(jobs: Mapping[str, Callable[[], T]], board: Board, processes: Processes) -> dict[str, T]:
    def run(name: str, job: Callable[[], T]) -> T:
        board.state(name, "running")
        try:
            result = job()
        except Cancelled:
            board.state(name, "cancelled")
            raise
        except BaseException as exc:
            board.state(name, "failed", str(exc))
            raise
        board.state(name, "done")
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="backup")
    futures: dict[Future, str] = {pool.submit(run, name, job): name for name, job in jobs.items()}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            board.tick()
            failed = [f for f in done if f.exception() is not None]
            if failed:
                processes.cancel()
                wait(pending)
                raise _first_real_failure(failed + list(pending))
        return {futures[f]: f.result() for f in futures}
    except BaseException:
        processes.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        board.close()


def _first_real_failure(futures: list[Future]) -> BaseException:
    errors = [f.exception() for f in futures if f.done() and f.exception() is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    return (real or errors)[0]  # type: ignore[return-value]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """`kill PID` cleans up like Ctrl-C does (the partial set goes away) instead of dying mid-write."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
