"""A new user's first run, cold: README's run command in a fresh clone, on an engine with an empty data root.

What it measures is what the README promises (goal: <= 10 min to a healthy full stack on 2 cores): no images,
no pip cache, no virtualenv. The engine is started by README's own command (scripts/provision-engine.sh) with
ENGINE_DOCKERD_ARGS pointing its data root at a new directory, so the machine's usual images are neither used nor
touched. Because two daemons would fight over the default bridge, it refuses to run while another daemon answers:
stop it first (scripts/stop-engine.sh), start it again afterwards (scripts/provision-engine.sh).

    python bench/bench_cold_run.py            # prints each phase as the toolkit reports it, then the total
    python bench/bench_cold_run.py --keep     # keep the cold data root, clone and engine for inspection

At the end it removes the stack (down --volumes), stops the engine it started and deletes the data root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the data root, clone and engine afterwards")
    parser.add_argument("--workdir", help="where the clone and the data root go (needs ~12 GB; default: the temp dir)")
    args = parser.parse_args()
    if daemon_answers():
        print("a Docker daemon already answers: stop it first (scripts/stop-engine.sh)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="enlaight-cold-", dir=args.workdir))
    clone, data_root, state_dir = work / "enlaight", work / "docker", work / "engine-state"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    run_command = subprocess.run(
        [str(clone / "scripts" / "readme-command"), "run"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "ENGINE_DOCKERD_ARGS": f"--data-root {data_root}",
        "ENGINE_STATE_DIR": str(state_dir),
        "PIP_CACHE_DIR": str(work / "pip-cache"),  # a new machine has no pip cache
    }
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; nproc {os.cpu_count()}")
    print(f"$ {run_command}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(["bash", "-c", run_command], cwd=clone, env=env, check=False)
    elapsed = time.perf_counter() - started
    verdict = "healthy full stack" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"\ncold README run command: {elapsed:.0f} s ({elapsed / 60:.1f} min) -> {verdict} (goal <= 600 s)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if not args.keep:
        invoke = clone / ".venv" / "bin" / "invoke"
        if invoke.exists():
            subprocess.run([str(invoke), "down", "--volumes", "--yes"], cwd=clone, env=env, check=False)
        subprocess.run([str(clone / "scripts" / "stop-engine.sh")], env=env, check=False)
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} (engine state in {state_dir}; stop it with ENGINE_STATE_DIR={state_dir} stop-engine.sh)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
