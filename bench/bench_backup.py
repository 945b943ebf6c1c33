"""Side by side, one stack, alternating in each round: `invoke backup` and `invoke restore` of MySQL, PostgreSQL and
a volume against the raw tools (`mysqldump > file`, `mysql < dump`, `pg_dump -Fc`, `pg_restore`, `tar`) and
against the peers' method (the dump piped through `gzip`); then the toolkit's own peak memory while it backs up and
restores a MySQL dump of >= 1 GB.

Goals (issue 14): backup <= 1.15x raw mysqldump and faster than mysqldump | gzip; restore <= 1.05x raw mysql;
the invoke process's peak RSS (VmHWM) < 100 MB. Restores run with --no-safety-set, since the raw tools keep none
(the safety set is a full backup, measured above).

    python bench/bench_backup.py --rounds 3 [--local-images local-images.env] [--rows-log2 19]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
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

from enlaight_ops.backup.mysql import CLIENT_SCRIPT, DUMP_SCRIPT  # noqa: E402
from enlaight_ops.backup.postgres import PSQL_SCRIPT, RECREATE_SCRIPT, RECREATE_SQL, RESTORE_SCRIPT  # noqa: E402
from enlaight_ops.compose import Compose  # noqa: E402
from enlaight_ops.settings import load_settings  # noqa: E402

PORTS = (
    "FRONTEND_PORT",
    "BACKEND_PORT",
    "N8N_PORT",
    "SUPERSET_PORT",
    "SMTP_WEB_PORT",
    "SMTP_PORT",
    "MYSQL_HOST_PORT",
    "POSTGRES_HOST_PORT",
    "REDIS_HOST_PORT",
)
# pg_dump as a person runs it: custom format with its own compression (the toolkit adds -Z0 and zstd).
RAW_PG_DUMP = 'export PGPASSWORD="$POSTGRES_PASSWORD" PGUSER="$POSTGRES_USER"; exec pg_dump -Fc --dbname="$POSTGRES_DB"'
PLAIN_PG_DUMP = 'export PGPASSWORD="$POSTGRES_PASSWORD" PGUSER="$POSTGRES_USER"; exec pg_dump --dbname="$POSTGRES_DB"'
VOLUME = "n8n_data"


def copy_project(target: Path) -> None:
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, names.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_kb(pid: int, done: threading.Event, peaks: list[int]) -> None:
    """VmHWM (the kernel's own high-water mark of resident memory) of `pid`, read until it exits."""
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]))
        except (OSError, ValueError):
            return
        done.wait(0.05)


def timed(
    argv: list[str], cwd: Path, env: dict[str, str], stdin=None, stdout=subprocess.DEVNULL, failed: list | None = None
) -> tuple[float, int]:
    """Seconds the command took, and its own peak RSS in KiB (not its children's). A failure stops the bench,
    unless `failed` is given: then its last error line is appended there and the time still counts."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    done, peaks = threading.Event(), [0]
    watcher = threading.Thread(target=peak_rss_kb, args=(process.pid, done, peaks), daemon=True)
    watcher.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    if process.returncode != 0:
        if failed is None:
            raise SystemExit(f"{' '.join(argv[:6])} ... exited {process.returncode}: {err.decode()[-2000:]}")
        failed.append(err.decode(errors="replace").strip().splitlines()[-1])
    return seconds, max(peaks)


def timed_pipe(producer: list[str], consumer: list[str], out: Path, cwd: Path, env: dict[str, str]) -> float:
    """`producer | consumer > out`, as a shell pipeline runs it; the time until both finished."""
    started = time.perf_counter()
    with out.open("wb") as sink:
        first = subprocess.Popen(producer, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        second = subprocess.Popen(consumer, stdin=first.stdout, stdout=sink)
        assert first.stdout is not None
        first.stdout.close()
        if second.wait() != 0 or first.wait() != 0:
            raise SystemExit(f"{producer[:4]} | {consumer} failed")
    return time.perf_counter() - started


def mysql_seed_sql(rows_log2: int) -> str:
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


def postgres_seed_sql(rows: int) -> str:
    # Like n8n's execution data: JSON text with ids and repeated keys, plus a bytea that does not compress.
    return f"""DROP TABLE IF EXISTS bench_executions;
CREATE TABLE bench_executions (id bigserial PRIMARY KEY, workflow text, data jsonb, blob bytea);
INSERT INTO bench_executions (workflow, data, blob)
  SELECT md5(i::text), jsonb_build_object('node', 'HTTP Request', 'run', i, 'hash', md5(random()::text),
         'items', jsonb_build_array(md5(random()::text), sha256(i::text::bytea)::text, 'ok')),
         decode(md5(random()::text) || md5(random()::text), 'hex')
  FROM generate_series(1, {int(rows)}) AS i;
"""  # noqa: S608 (a number, no input)


# Text files (logs, JSON) and binary data (n8n binaryData) in the volume, ~120 MB.
VOLUME_SEED = r"""set -e
mkdir -p /volume/binaryData /volume/logs
head -c 40000000 /dev/urandom > /volume/binaryData/upload.bin
for i in $(seq 1 40); do
  seq -f "{\"event\": \"n8n.workflow.success\", \"workflowId\": \"wf-$i\", \"ts\": %g}" 1 30000 > /volume/logs/$i.log
done
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-images", type=Path, default=ROOT / "local-images.env")
    parser.add_argument("--tools-image", default="enlaight-local/debian:bookworm")
    parser.add_argument("--rows-log2", type=int, default=19, help="2^N MySQL rows of ~400 bytes (19: ~200 MB)")
    parser.add_argument("--pg-rows", type=int, default=600000, help="PostgreSQL rows (600000: ~200 MB of table)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the >= 1 GB dump memory phase")
    parser.add_argument("--only-mysql", action="store_true", help="only the MySQL rows (no PostgreSQL, volume, all)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bk-bench-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        copy_project(root)
        if args.local_images.is_file():
            shutil.copy2(args.local_images, root / "local-images.env")
        project = f"bk-bench-{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "INVOKE_ENLAIGHT_PROJECT": project,
            "INVOKE_ENLAIGHT_TOOLS_IMAGE": args.tools_image,
            **{p: str(free_port()) for p in PORTS},
        }
        env.pop("INVOKE_ENLAIGHT_ENV", None)
        invoke = [sys.executable, "-m", "invoke"]
        subprocess.run([*invoke, "env"], cwd=root, env=env, check=True, capture_output=True)
        compose = Compose(load_settings({"project": project}, root=root))
        volume = f"{project}_{VOLUME}"
        sets = Path(tmp) / "sets"
        raw = {
            k: Path(tmp) / k for k in ("raw.sql", "raw.sql.gz", "raw.pgdump", "raw.pg.sql.gz", "raw.tar", "raw.tar.gz")
        }
        times: dict[str, list[float]] = {}
        peaks: dict[str, list[int]] = {}
        loads: list[float] = []
        sizes: dict[str, int] = {}
        notes: set[str] = set()

        def record(label: str, result: tuple[float, int] | float) -> None:
            seconds, rss = result if isinstance(result, tuple) else (result, 0)
            times.setdefault(label, []).append(seconds)
            if rss:
                peaks.setdefault(label, []).append(rss)

        def exec_argv(service: str, script: str, *extra: str) -> list[str]:
            return compose.argv("exec", "-T", service, "sh", "-c", script, "sh", *extra)

        def docker_tools(*command: str, read_only: bool = True) -> list[str]:
            mount = f"{volume}:/volume" + (":ro" if read_only else "")
            return ["docker", "run", "--rm", "-i", "--network", "none", "-v", mount, args.tools_image, *command]

        def newest_set() -> str:
            return max(p.name for p in sets.iterdir() if not p.name.startswith("."))

        try:
            subprocess.run(
                [*invoke, "start", "-s", "mysql", "-s", "postgres", "-s", "redis"], cwd=root, env=env, check=True
            )
            print("seeding MySQL, PostgreSQL and the n8n volume ...", flush=True)
            subprocess.run(
                exec_argv("mysql", CLIENT_SCRIPT),
                cwd=root,
                env=env,
                input=mysql_seed_sql(args.rows_log2).encode(),
                check=True,
            )
            subprocess.run(
                exec_argv("postgres", PSQL_SCRIPT),
                cwd=root,
                env=env,
                input=postgres_seed_sql(args.pg_rows).encode(),
                check=True,
            )
            subprocess.run(
                [
                    "docker",
                    "volume",
                    "create",
                    "--label",
                    f"com.docker.compose.project={project}",
                    "--label",
                    f"com.docker.compose.volume={VOLUME}",
                    volume,
                ],
                check=True,
                capture_output=True,
            )
            subprocess.run(docker_tools("sh", "-c", VOLUME_SEED, read_only=False), check=True)
            query = (
                "SELECT ROUND(SUM(data_length + index_length) / 1e6), SUM(table_rows) "
                "FROM information_schema.tables WHERE table_schema = 'enlaight'"
            )
            size = subprocess.run(
                exec_argv("mysql", CLIENT_SCRIPT, "-N", "-e", query),
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            pg_size = subprocess.run(
                exec_argv("postgres", PSQL_SCRIPT),
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=True,
                input="SELECT pg_total_relation_size('bench_executions') / 1000000;",
            ).stdout
            print(f"MySQL data: {size[0]} MB, ~{size[1]} rows; PostgreSQL table: {pg_size.strip()} MB", flush=True)

            databases = ["enlaight", "superset"]
            mysqldump = exec_argv("mysql", DUMP_SCRIPT, *databases)
            mysql_load = exec_argv("mysql", CLIENT_SCRIPT)
            tar_out = docker_tools("tar", "--numeric-owner", "-C", "/volume", "-cf", "-", ".")
            tar_in = docker_tools(
                "sh",
                "-c",
                "find /volume -mindepth 1 -delete; exec tar --numeric-owner -C /volume -xpf -",
                read_only=False,
            )
            to = ["--to", str(sets)]
            for n in range(args.rounds):
                loads.append(os.getloadavg()[0])
                print(f"round {n + 1}/{args.rounds} (load average {loads[-1]:.2f})", flush=True)
                shutil.rmtree(sets, ignore_errors=True)
                # MySQL
                record("mysql: invoke backup -s mysql", timed([*invoke, "backup", "-s", "mysql", *to], root, env))
                mysql_set = newest_set()
                with raw["raw.sql"].open("wb") as out:
                    record("mysql: raw mysqldump > file", timed(mysqldump, root, env, stdout=out))
                record(
                    "mysql: mysqldump | gzip > file",
                    timed_pipe(mysqldump, ["gzip", "-c"], raw["raw.sql.gz"], root, env),
                )
                restore = [*invoke, "restore", mysql_set, "-s", "mysql", "--yes", "--no-safety-set", *to]
                record("mysql: invoke restore -s mysql", timed(restore, root, env))
                with raw["raw.sql"].open("rb") as dump:
                    record("mysql: raw mysql < dump", timed(mysql_load, root, env, stdin=dump))
                if args.only_mysql:
                    continue
                # PostgreSQL
                record(
                    "postgres: invoke backup -s postgres", timed([*invoke, "backup", "-s", "postgres", *to], root, env)
                )
                pg_set = newest_set()
                with raw["raw.pgdump"].open("wb") as out:
                    record(
                        "postgres: raw pg_dump -Fc > file",
                        timed(exec_argv("postgres", RAW_PG_DUMP), root, env, stdout=out),
                    )
                record(
                    "postgres: pg_dump | gzip > file",
                    timed_pipe(exec_argv("postgres", PLAIN_PG_DUMP), ["gzip", "-c"], raw["raw.pg.sql.gz"], root, env),
                )
                restore = [*invoke, "restore", pg_set, "-s", "postgres", "--yes", "--no-safety-set", *to]
                record("postgres: invoke restore -s postgres", timed(restore, root, env))
                started = time.perf_counter()
                subprocess.run(
                    exec_argv("postgres", RECREATE_SCRIPT),
                    cwd=root,
                    env=env,
                    input=RECREATE_SQL,
                    check=True,
                    capture_output=True,
                )
                with raw["raw.pgdump"].open("rb") as dump:
                    timed(exec_argv("postgres", RESTORE_SCRIPT), root, env, stdin=dump)
                record("postgres: raw recreate + pg_restore < dump", time.perf_counter() - started)
                # The n8n volume
                record("volume: invoke backup -s n8n_data", timed([*invoke, "backup", "-s", VOLUME, *to], root, env))
                volume_set = newest_set()
                with raw["raw.tar"].open("wb") as out:
                    record("volume: raw tar > file", timed(tar_out, root, env, stdout=out))
                record("volume: tar | gzip > file", timed_pipe(tar_out, ["gzip", "-c"], raw["raw.tar.gz"], root, env))
                restore = [*invoke, "restore", volume_set, "-s", VOLUME, "--yes", "--no-safety-set", *to]
                volume_failures: list[str] = []
                record("volume: invoke restore -s n8n_data", timed(restore, root, env, failed=volume_failures))
                if volume_failures:
                    notes.add(f"volume: invoke restore -s n8n_data exited non-zero: {volume_failures[-1]}")
                with raw["raw.tar"].open("rb") as archive:
                    record("volume: raw tar -x < file", timed(tar_in, root, env, stdin=archive))
                # Everything at once
                record("all: invoke backup", timed([*invoke, "backup", *to], root, env))
            loads.append(os.getloadavg()[0])
            full_set = sets / newest_set()
            sizes |= {f"set {p.name}": p.stat().st_size for p in full_set.iterdir() if p.is_file()}
            sizes |= {k: v.stat().st_size for k, v in raw.items() if v.is_file()}

            if not args.skip_memory:
                print("memory: growing the MySQL table to a >= 1 GB dump ...", flush=True)
                grow = (
                    "INSERT INTO enlaight.bench_rows (title, body, payload) SELECT title, body, payload "
                    "FROM enlaight.bench_rows;\n"
                    "INSERT INTO enlaight.bench_rows (title, body, payload) SELECT title, body, payload "
                    "FROM enlaight.bench_rows LIMIT 150000;\n"
                )
                subprocess.run(exec_argv("mysql", CLIENT_SCRIPT), cwd=root, env=env, input=grow.encode(), check=True)
                shutil.rmtree(sets, ignore_errors=True)
                record(
                    "memory: invoke backup -s mysql (>= 1 GB dump)",
                    timed([*invoke, "backup", "-s", "mysql", *to], root, env),
                )
                big_set = sets / newest_set()
                sizes["memory: raw dump bytes"] = json.loads((big_set / "manifest.json").read_text())["components"][
                    "mysql"
                ]["raw_bytes"]
                restore = [*invoke, "restore", big_set.name, "-s", "mysql", "--yes", "--no-safety-set", *to]
                record("memory: invoke restore -s mysql (>= 1 GB dump)", timed(restore, root, env))
        finally:
            subprocess.run(
                compose.argv("down", "--volumes", "--timeout", "5"), cwd=root, env=env, check=False, capture_output=True
            )
            subprocess.run(["docker", "volume", "rm", "-f", volume], check=False, capture_output=True)

    report(times, peaks, loads, sizes, notes)


def report(times: dict[str, list[float]], peaks: dict[str, list[int]], loads: list[float], sizes: dict[str, int],
           notes: set[str]) -> None:  # fmt: skip
    med = {label: statistics.median(values) for label, values in times.items()}
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(
        f"\nmachine: {machine}; 1-min load average at each round start and at the end: "
        + " ".join(f"{x:.2f}" for x in loads)
    )
    print("sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
    print(f"\n{'measurement':50s} {'median':>8s}  runs                       peak RSS of invoke")
    for label, values in times.items():
        rss = f"{max(peaks[label]) / 1024:.1f} MiB" if label in peaks else ""
        print(f"{label:50s} {med[label]:7.2f}s  {' '.join(f'{v:6.2f}' for v in values):26s} {rss}")

    def ratio(a: str, b: str, goal: str) -> None:
        if a in med and b in med:
            print(f"  {a} / {b}: {med[a] / med[b]:.3f} {goal}")

    print("\nratios of medians:")
    ratio("mysql: invoke backup -s mysql", "mysql: raw mysqldump > file", "(goal <= 1.15)")
    ratio("mysql: invoke backup -s mysql", "mysql: mysqldump | gzip > file", "(goal < 1)")
    ratio("mysql: invoke restore -s mysql", "mysql: raw mysql < dump", "(goal <= 1.05)")
    ratio("postgres: invoke backup -s postgres", "postgres: raw pg_dump -Fc > file", "")
    ratio("postgres: invoke backup -s postgres", "postgres: pg_dump | gzip > file", "")
    ratio("postgres: invoke restore -s postgres", "postgres: raw recreate + pg_restore < dump", "")
    ratio("volume: invoke backup -s n8n_data", "volume: raw tar > file", "")
    ratio("volume: invoke backup -s n8n_data", "volume: tar | gzip > file", "")
    ratio("volume: invoke restore -s n8n_data", "volume: raw tar -x < file", "")
    ratio("all: invoke backup", "mysql: invoke backup -s mysql", "(full set / MySQL alone)")
    memory = {k: max(v) / 1024 for k, v in peaks.items() if k.startswith("memory:")}
    for label, mib in memory.items():
        print(f"  {label}: peak RSS {mib:.1f} MiB (goal < 100 MB)")
    for note in sorted(notes):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
