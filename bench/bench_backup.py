"""Side by side: `invoke backup -s mysql` against a raw `mysqldump > file`, and `invoke restore -s mysql` against
a raw `mysql < dump`, on one stack seeded with >= 200 MB of rows; plus a full backup against MySQL's alone.

Alternates A B A B so both see the same warm caches, then prints medians and ratios (goal: backup and restore
<= 1.15x raw while compressing and hashing; a full backup <= 1.2x its slowest component alone).

    python bench/bench_backup.py --rounds 3 [--local-images local-images.env] [--rows-log2 19]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enlaight_ops.backup.mysql import CLIENT_SCRIPT, DUMP_SCRIPT  # noqa: E402
from enlaight_ops.compose import Compose  # noqa: E402
from enlaight_ops.settings import load_settings  # noqa: E402

PORTS = ("FRONTEND_PORT", "BACKEND_PORT", "N8N_PORT", "SUPERSET_PORT", "SMTP_WEB_PORT", "SMTP_PORT",
         "MYSQL_HOST_PORT", "POSTGRES_HOST_PORT", "REDIS_HOST_PORT")  # fmt: skip


def copy_project(target: Path) -> None:
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout  # fmt: skip
    for name in filter(None, names.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(argv: list[str], cwd: Path, env: dict[str, str], stdin=None, stdout=subprocess.DEVNULL) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def seed_sql(rows_log2: int) -> str:
    # Text that compresses like real rows (hex digests, words) and a binary column that does not.
    statements = [
        "DROP TABLE IF EXISTS enlaight.bench_rows;",
        "CREATE TABLE enlaight.bench_rows (id BIGINT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(255), "
        "body TEXT CHARACTER SET utf8mb4, payload BLOB) ENGINE=InnoDB;",
        "INSERT INTO enlaight.bench_rows (title, body, payload) VALUES (MD5(RAND()), 'seed 😀', RANDOM_BYTES(200));",
    ]
    statements += [
        "INSERT INTO enlaight.bench_rows (title, body, payload) SELECT MD5(RAND()), "
        "CONCAT(SHA2(RAND(), 256), ' lorem ipsum dolor sit amet 😀 ', REPEAT(SHA1(RAND()), 8), ' ', title), "
        "RANDOM_BYTES(200) FROM enlaight.bench_rows;"
    ] * rows_log2
    return "\n".join(statements) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-images", type=Path, default=ROOT / "local-images.env")
    parser.add_argument("--tools-image", default="enlaight-local/debian:bookworm")
    parser.add_argument("--rows-log2", type=int, default=19, help="2^N rows of ~400 bytes (19: ~200 MB)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bk-bench-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        copy_project(root)
        if args.local_images.is_file():
            shutil.copy2(args.local_images, root / "local-images.env")
        project = f"bk-bench-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "INVOKE_ENLAIGHT_PROJECT": project, "INVOKE_ENLAIGHT_TOOLS_IMAGE": args.tools_image,
               **{p: str(free_port()) for p in PORTS}}  # fmt: skip
        env.pop("INVOKE_ENLAIGHT_ENV", None)
        invoke = [sys.executable, "-m", "invoke"]
        subprocess.run([*invoke, "env"], cwd=root, env=env, check=True, capture_output=True)
        compose = Compose(load_settings({"project": project}, root=root))
        sets = Path(tmp) / "sets"
        raw_dump = Path(tmp) / "raw.sql"
        databases = ["enlaight", "superset"]
        times: dict[str, list[float]] = {k: [] for k in ("invoke backup -s mysql", "raw mysqldump > file",
                                                          "invoke restore -s mysql", "raw mysql < dump",
                                                          "invoke backup (all)")}  # fmt: skip
        try:
            subprocess.run([*invoke, "start", "-s", "mysql", "-s", "postgres", "-s", "redis"], cwd=root, env=env,
                           check=True)  # fmt: skip
            print("seeding MySQL ...", flush=True)
            subprocess.run(compose.argv("exec", "-T", "mysql", "sh", "-c", CLIENT_SCRIPT), cwd=root, env=env,
                           input=seed_sql(args.rows_log2).encode(), check=True)  # fmt: skip
            query = (
                "SELECT ROUND(SUM(data_length + index_length) / 1e6), SUM(table_rows) "
                "FROM information_schema.tables WHERE table_schema = 'enlaight'"
            )
            size_argv = compose.argv("exec", "-T", "mysql", "sh", "-c", CLIENT_SCRIPT, "sh", "-N", "-e", query)
            size = subprocess.run(size_argv, cwd=root, env=env, capture_output=True, text=True, check=True)
            size = size.stdout.split()
            print(f"MySQL data: {size[0]} MB, ~{size[1]} rows", flush=True)
            raw_argv = compose.argv("exec", "-T", "mysql", "sh", "-c", DUMP_SCRIPT, "sh", *databases)
            load_argv = compose.argv("exec", "-T", "mysql", "sh", "-c", CLIENT_SCRIPT)
            backup_mysql = [*invoke, "backup", "-s", "mysql", "--to", str(sets)]
            backup_all = [*invoke, "backup", "--to", str(sets)]
            for n in range(args.rounds):
                print(f"round {n + 1}/{args.rounds}", flush=True)
                shutil.rmtree(sets, ignore_errors=True)
                times["invoke backup -s mysql"].append(timed(backup_mysql, root, env))
                with raw_dump.open("wb") as out:
                    times["raw mysqldump > file"].append(timed(raw_argv, root, env, stdout=out))
                set_name = next(p.name for p in sets.iterdir())
                restore = [*invoke, "restore", set_name, "-s", "mysql", "--yes", "--to", str(sets)]
                times["invoke restore -s mysql"].append(timed(restore, root, env))
                with raw_dump.open("rb") as dump:
                    times["raw mysql < dump"].append(timed(load_argv, root, env, stdin=dump))
                shutil.rmtree(sets, ignore_errors=True)
                times["invoke backup (all)"].append(timed(backup_all, root, env))
            set_dir = next(p for p in sets.iterdir())
            part_sizes = {p.name: p.stat().st_size for p in set_dir.iterdir()}
            raw_size = raw_dump.stat().st_size
        finally:
            subprocess.run(compose.argv("down", "--volumes", "--timeout", "5"), cwd=root, env=env, check=False,
                           capture_output=True)  # fmt: skip

    medians = {label: statistics.median(values) for label, values in times.items()}
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs"
    print(f"\nmachine: {machine}, Python {platform.python_version()}")
    print(f"raw dump {raw_size / 1e6:.0f} MB; set files: "
          + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(part_sizes.items())))  # fmt: skip
    for label, values in times.items():
        print(f"{label:26s} median {medians[label]:6.2f}s  runs {' '.join(f'{v:.2f}' for v in values)}")
    print(f"backup ratio invoke/raw:  {medians['invoke backup -s mysql'] / medians['raw mysqldump > file']:.3f} "
          "(goal <= 1.15)")  # fmt: skip
    print(f"restore ratio invoke/raw: {medians['invoke restore -s mysql'] / medians['raw mysql < dump']:.3f} "
          "(goal <= 1.15)")  # fmt: skip
    print(f"full/mysql-only backup:   {medians['invoke backup (all)'] / medians['invoke backup -s mysql']:.3f} "
          "(goal <= 1.2)")  # fmt: skip


if __name__ == "__main__":
    main()
