"""Side-by-side: `invoke start` against `docker compose up --detach --wait`, on the same stack, in one run.

Alternates A B A B on one Compose project (volumes kept, containers removed between runs, so both start from
the same warm state), then prints the median wall time of each and their ratio (goal: <= 1.05).

    python bench/bench_start.py --rounds 5 [--local-images local-images.env] [--full]

--full starts every service of the dev stack (n8n, Superset and their one-shot init jobs included) instead of the
default subset; both commands then name every service. --already-up keeps the stack running between runs: both
commands then find it healthy, which times what each adds on its own (the toolkit's fixed overhead).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enlaight_ops.compose import Compose  # noqa: E402
from enlaight_ops.settings import load_settings  # noqa: E402

SERVICES = ["frontend", "backend", "postgres", "smtp"]


def copy_project(target: Path) -> None:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)


class RunFailed(Exception):
    pass


def timed(argv: list[str], cwd: Path, env: dict[str, str], logs: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        tail = subprocess.run(logs, cwd=cwd, env=env, capture_output=True, text=True, check=False).stdout[-3000:]
        raise RunFailed(f"{' '.join(argv[-4:])} failed (exit {result.returncode}):\n{result.stderr[-1500:]}\n"
                        f"logs:\n{tail}")  # fmt: skip
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-images", type=Path, default=ROOT / "local-images.env")
    parser.add_argument("--full", action="store_true", help="every service of the stack, not the default subset")
    parser.add_argument("--already-up", action="store_true", help="do not remove the containers between runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        root = Path(tmp)
        copy_project(root)
        if args.local_images.is_file():
            shutil.copy2(args.local_images, root / "local-images.env")
        project = f"enlaight-bench-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project}
        invoke = [sys.executable, "-m", "invoke"]
        subprocess.run([*invoke, "env"], cwd=root, env=env, check=True, capture_output=True)
        compose = Compose(load_settings({"project": project}, root=root))
        services = compose.services if args.full else SERVICES
        print(f"services: {' '.join(services)}", flush=True)
        down = compose.argv("down", "--timeout", "5")
        a = [*invoke, "start", *(f"--service={s}" for s in services)]
        b = compose.argv("up", "--detach", "--wait", *services)
        try:
            warm_up = [*invoke, "start", "--build", *(f"--service={s}" for s in services)]
            for attempt in range(2):  # builds, initialises volumes; a first init on a loaded machine may flake
                if subprocess.run(warm_up, cwd=root, env=env, check=False).returncode == 0:
                    break
                print(f"warm-up failed (attempt {attempt + 1})", flush=True)
            times: dict[str, list[float]] = {"invoke start": [], "compose up --wait": []}
            failures: list[str] = []
            logs = compose.argv("logs", "--no-color", "--tail", "15")
            for _ in range(args.rounds):
                for label, argv in (("invoke start", a), ("compose up --wait", b)):
                    # A run that fails (the stack's own flake, e.g. superset-init losing the database under load)
                    # is reported and run once more: its time would measure the failure, not the start.
                    for _attempt in range(2):
                        if not args.already_up:
                            subprocess.run(down, cwd=root, env=env, check=True, capture_output=True)
                        try:
                            times[label].append(timed(argv, root, env, logs))
                            print(f"{label:20s} {times[label][-1]:6.2f}s", flush=True)
                            break
                        except RunFailed as failure:
                            failures.append(f"{label}: {failure}")
                            print(f"{label:20s} FAILED:\n{failure}", flush=True)
        finally:
            subprocess.run(compose.argv("down", "--volumes", "--timeout", "5"), cwd=root, env=env,
                           check=False, capture_output=True)  # fmt: skip
    medians = {label: statistics.median(values) for label, values in times.items()}
    ratio = medians["invoke start"] / medians["compose up --wait"]
    for label, values in times.items():
        print(f"{label:20s} median {medians[label]:6.2f}s  runs {' '.join(f'{v:.2f}' for v in values)}")
    print(f"ratio invoke/compose: {ratio:.3f} (goal <= 1.05); load average {os.getloadavg()[0]:.2f}; "
          f"failed runs (retried): {len(failures)}")  # fmt: skip


if __name__ == "__main__":
    main()
