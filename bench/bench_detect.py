"""How soon after a container dies does `invoke wait` say so? (detection latency, not a timed test)

Starts the wait fixture's `exits-later` service (it exits 1 three seconds after starting), runs `invoke wait`,
and compares the moment `invoke wait` returned with the container's own FinishedAt. Repeats and prints the median.

    python bench/bench_detect.py --rounds 5 [--image enlaight-local/debian:bookworm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "e2e" / "fixtures" / "wait"


def finished_at(container: str) -> float:
    stamp = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, check=True).stdout)[0]
    text = stamp["State"]["FinishedAt"]  # e.g. 2026-11-27T08:10:01.123456789Z
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (fraction or "0"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", default="enlaight-local/debian:bookworm")
    args = parser.parse_args()
    latencies: list[float] = []
    totals: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        root = Path(tmp)
        for name in ("docker-compose.yml", "docker-compose.override.yml", "env.sample"):
            shutil.copy2(FIXTURE / name, root / name)
        shutil.copy2(ROOT / "tasks.py", root / "tasks.py")
        project = f"enlaight-bench-detect-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project, "FIXTURE_IMAGE": args.image,
               "COMPOSE_PROFILES": "exits-later"}  # fmt: skip
        invoke = [sys.executable, "-m", "invoke"]
        try:
            for _ in range(args.rounds):
                subprocess.run([*invoke, "start", "--no-wait"], cwd=root, env=env, check=True, capture_output=True)
                waiting = subprocess.Popen([*invoke, "wait", "--timeout", "30"], cwd=root, env=env,
                                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)  # fmt: skip
                reported = returned = 0.0
                for line in waiting.stderr:  # the verdict line is printed the moment it is decided
                    if "exits-later: exited with code 1" in line and not reported:
                        reported = time.time()
                waiting.wait()
                returned = time.time()
                died = finished_at(f"{project}-exits-later-1")
                latencies.append(reported - died)
                totals.append(returned - died)
                subprocess.run(["docker", "compose", "-p", project, "down", "-t", "0"], cwd=root, env=env,
                               capture_output=True, check=False)  # fmt: skip
        finally:
            subprocess.run(["docker", "compose", "-p", project, "down", "-t", "0"], cwd=root, env=env,
                           capture_output=True, check=False)  # fmt: skip
    for label, values in (("container exit -> verdict printed", latencies),
                          ("container exit -> invoke wait returned (diagnostics, exit)", totals)):  # fmt: skip
        print(f"{label}: median {statistics.median(values):.2f}s  runs {' '.join(f'{x:.2f}' for x in values)}")


if __name__ == "__main__":
    main()
