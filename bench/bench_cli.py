"""`invoke ps` against raw `docker compose ps` with the same files and env files, side by side in one run.

Alternates the two commands (A B A B ...) in this checkout and prints the median wall time of each and their ratio
(goal: <= 2.5; invoke's own start-up, `invoke --list`, is measured too as the floor). Needs an engine; a running
stack is not required (both then list nothing).

    python bench/bench_cli.py --rounds 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enlaight_ops.compose import Compose  # noqa: E402
from enlaight_ops.settings import load_settings  # noqa: E402


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    invoke = str(Path(sys.executable).parent / "invoke")
    commands = {
        "invoke ps": [invoke, "ps"],
        "docker compose ps": Compose(load_settings({}, root=ROOT)).argv("ps"),
        "invoke --list": [invoke, "--list"],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(args.rounds):
        for label, argv in commands.items():
            times[label].append(timed(argv))
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.rounds} rounds, alternating")
    for label, median in medians.items():
        print(f"{label:18s} median {median * 1000:6.0f} ms")
    print(
        f"ratio invoke ps / docker compose ps = {medians['invoke ps'] / medians['docker compose ps']:.2f} (goal <= 2.5)"
    )


if __name__ == "__main__":
    main()
