"""Side-by-side: `invoke start` against `docker compose up --detach --wait`, on the same stack, in one run.

Alternates A B A B on one Compose project (volumes kept, containers removed between runs, so both start from
the same warm state), then prints the median wall time of each and their ratio (goal: <= 1.05).

    python bench/bench_start.py --rounds 5 [--local-images local-images.env]
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


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-images", type=Path, default=ROOT / "local-images.env")
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
        down = compose.argv("down", "--timeout", "5")
        a = [*invoke, "start", *(f"--service={s}" for s in SERVICES)]
        b = compose.argv("up", "--detach", "--wait", *SERVICES)
        try:
            subprocess.run(
                [*invoke, "start", "--build", *(f"--service={s}" for s in SERVICES)], cwd=root, env=env, check=True
            )  # fmt: skip  (warm-up: builds, initialises volumes)
            times: dict[str, list[float]] = {"invoke start": [], "compose up --wait": []}
            for _ in range(args.rounds):
                for label, argv in (("invoke start", a), ("compose up --wait", b)):
                    subprocess.run(down, cwd=root, env=env, check=True, capture_output=True)
                    times[label].append(timed(argv, root, env))
        finally:
            subprocess.run(compose.argv("down", "--volumes", "--timeout", "5"), cwd=root, env=env,
                           check=False, capture_output=True)  # fmt: skip
    medians = {label: statistics.median(values) for label, values in times.items()}
    ratio = medians["invoke start"] / medians["compose up --wait"]
    for label, values in times.items():
        print(f"{label:20s} median {medians[label]:6.2f}s  runs {' '.join(f'{v:.2f}' for v in values)}")
    print(f"ratio invoke/compose: {ratio:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
