"""CPU of `invoke wait` on a terminal (live table) against the same wait without one (plain lines), side by side.

`invoke wait` returns at once on a healthy stack, so the bench adds one service that stays in "health: starting"
(a probe that fails inside a one-hour start period) to a healthy stack: `invoke wait --timeout 30` then watches
every container for 30 s before it times out, which is the polling cost being measured. Terminal mode runs under a
pseudo-terminal (so the live table is drawn); plain mode writes to pipes. CPU is the user + system time of the
whole process tree (invoke and every docker CLI it ran), from wait4's rusage. Rounds alternate A B A B.

    python bench/bench_wait.py --rounds 3 [--seconds 30] [--services frontend,backend,...] [--keep-up]

Goal (issue 14): terminal CPU - plain CPU <= 2% of one core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enlaight_ops.compose import Compose  # noqa: E402
from enlaight_ops.settings import load_settings  # noqa: E402

SENTINEL = "bench-sentinel"
# Stays "health: starting" for an hour: failures inside start_period do not count against retries.
SENTINEL_SERVICE = f"""
  {SENTINEL}:
    image: ${{POSTGRES_IMAGE:-postgres:15}}
    command: ["sleep", "infinity"]
    init: true
    healthcheck:
      test: ["CMD", "false"]
      interval: 2s
      start_period: 1h
"""


def copy_project(target: Path) -> None:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass  # the slave side closed: the child is gone


def cpu_seconds(argv: list[str], cwd: Path, env: dict[str, str], *, terminal: bool) -> tuple[float, float]:
    """(CPU seconds of the process tree, wall seconds) of one run."""
    started = time.perf_counter()
    if terminal:
        master, slave = os.openpty()
        os.set_blocking(master, True)
        env = {**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                   start_new_session=True)  # fmt: skip
        os.close(slave)
        reader = threading.Thread(target=_drain, args=(master,), daemon=True)
        reader.start()
    else:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    # wait4: the child's own CPU plus that of every descendant it waited for (each `docker` it ran).
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped above; keep Popen from waiting again
    wall = time.perf_counter() - started
    if terminal:
        reader.join(timeout=5)
        os.close(master)
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--services", default="", help="comma-separated services to run (default: the full stack)")
    parser.add_argument("--local-images", type=Path, default=ROOT / "local-images.env")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp:
        root = Path(tmp)
        copy_project(root)
        with (root / "docker-compose.override.yml").open("a") as override:
            override.write(SENTINEL_SERVICE)
        if args.local_images.is_file():
            shutil.copy2(args.local_images, root / "local-images.env")
        project = f"enlaight-bench-wait-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project}
        invoke = [sys.executable, "-m", "invoke"]
        subprocess.run([*invoke, "env"], cwd=root, env=env, check=True, capture_output=True)
        compose = Compose(load_settings({"project": project}, root=root))
        services = [s for s in args.services.split(",") if s] or [s for s in compose.services if s != SENTINEL]
        flags = [f"--service={s}" for s in services]
        wait = [*invoke, "wait", "--timeout", str(args.seconds), *flags, f"--service={SENTINEL}"]
        samples: dict[str, list[float]] = {"plain": [], "terminal": []}
        try:
            subprocess.run([*invoke, "start", *flags], cwd=root, env=env, check=True)
            subprocess.run([*invoke, "start", "--no-wait", f"--service={SENTINEL}"], cwd=root, env=env, check=True)
            containers = len(compose.states())
            for _ in range(args.rounds):
                for label in samples:
                    cpu, wall = cpu_seconds(wait, root, env, terminal=label == "terminal")
                    samples[label].append(100 * cpu / wall)
                    print(f"{label:8s} cpu {cpu:6.2f}s wall {wall:6.2f}s = {100 * cpu / wall:5.2f}% of one core",
                          flush=True)  # fmt: skip
        finally:
            subprocess.run(compose.argv("down", "--volumes", "--timeout", "5"), cwd=root, env=env,
                           check=False, capture_output=True)  # fmt: skip
    medians = {label: statistics.median(values) for label, values in samples.items()}
    print(f"{containers} containers watched for {args.seconds}s; load average {os.getloadavg()[0]:.2f}")
    for label, values in samples.items():
        print(f"{label:8s} median {medians[label]:5.2f}% of one core  runs {' '.join(f'{v:.2f}' for v in values)}")
    print(f"terminal - plain: {medians['terminal'] - medians['plain']:+.2f}% of one core (goal <= 2)")


if __name__ == "__main__":
    main()
