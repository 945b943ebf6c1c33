"""Redis: a fresh RDB snapshot, and a restore that turns it back into the append-only files the stack runs on.

BGSAVE's completion is read from INFO persistence (rdb_saves grows, no save in progress, status ok) inside the
container, then the snapshot streams out of the same exec; nothing waits a fixed time. Redis with appendonly on
ignores dump.rdb at start, so the restore loads the RDB into a throwaway server on the volume, switches it to
AOF (which rewrites the AOF from memory) and shuts it down; the real service then starts from that AOF.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .manifest import SetError, merge_counts, part_file
from .streams import read_head, run_bytes
from .target import Progress, Target, dump_to_file, load_from_file

SERVICE = "redis"
VOLUME = "redis_data"
STEM = "redis.rdb"
FILE = STEM + ".zst"

SNAPSHOT_SCRIPT = r"""set -eu
export REDISCLI_AUTH="${REDIS_PASSWORD:-}"
[ -n "$REDISCLI_AUTH" ] || unset REDISCLI_AUTH
field() { redis-cli info persistence | tr -d '\r' | sed -n "s/^$1://p"; }
while [ "$(field rdb_bgsave_in_progress)" = 1 ]; do sleep 0.05; done
before=$(field rdb_saves)
reply=$(redis-cli bgsave)
case "$reply" in
  *started*|*progress*|*scheduled*) ;;
  *) echo "BGSAVE refused: $reply" >&2; exit 1 ;;
esac
until [ "$(field rdb_bgsave_in_progress)" = 0 ] && [ "$(field rdb_saves)" -gt "$before" ]; do sleep 0.05; done
status=$(field rdb_last_bgsave_status)
[ "$status" = ok ] || { echo "BGSAVE failed (rdb_last_bgsave_status:$status): see the redis log" >&2; exit 1; }
dir=$(redis-cli config get dir | tr -d '\r' | sed -n 2p)
file=$(redis-cli config get dbfilename | tr -d '\r' | sed -n 2p)
exec cat "$dir/$file"
"""

INFO_SCRIPT = 'export REDISCLI_AUTH="${REDIS_PASSWORD:-}"; [ -n "$REDISCLI_AUTH" ] || unset REDISCLI_AUTH; '
INFO_SCRIPT += "redis-cli info server; redis-cli info keyspace"

# $1: the data directory on the volume. Runs in a one-off container of the redis service (its image, its volume).
RESTORE_SCRIPT = r"""set -eu
data=$1
rm -rf "$data/appendonlydir" "$data"/appendonly*.aof "$data/dump.rdb" "$data"/temp-*.rdb
cat > "$data/dump.rdb"
sock=/tmp/restore-redis.sock
redis-server --port 0 --unixsocket "$sock" --dir "$data" --dbfilename dump.rdb --appendonly no --save "" \
  --daemonize yes --logfile /tmp/restore-redis.log
cli() { redis-cli -s "$sock" "$@" | tr -d '\r'; }
field() { cli info persistence | sed -n "s/^$1://p"; }
tries=0
until [ "$(cli ping 2>/dev/null)" = PONG ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 6000 ]; then cat /tmp/restore-redis.log >&2; exit 1; fi
  if [ ! -S "$sock" ] && [ "$tries" -gt 200 ]; then cat /tmp/restore-redis.log >&2; exit 1; fi
  sleep 0.05
done
cli info keyspace
[ "$(cli config set appendonly yes)" = OK ] || { echo "could not switch the restored data to AOF" >&2; exit 1; }
until [ "$(field aof_rewrite_in_progress)" = 0 ] && [ "$(field aof_rewrite_scheduled)" = 0 ] \
  && { [ -f "$data/appendonlydir/appendonly.aof.manifest" ] || [ -f "$data/appendonly.aof" ]; }; do
  sleep 0.05
done
if [ "$(field aof_last_bgrewrite_status)" != ok ]; then
  echo "AOF rewrite failed" >&2; cat /tmp/restore-redis.log >&2; exit 1
fi
cli shutdown nosave >/dev/null 2>&1 || true
while [ -S "$sock" ]; do sleep 0.05; done
if id redis >/dev/null 2>&1; then chown -R redis:redis "$data"; fi
"""


def parse_info(text: str) -> tuple[str, dict[str, int]]:
    """`INFO server` + `INFO keyspace`: the version and the number of keys per database (db0, db1, ...)."""
    version, keys = "", {}
    for line in text.replace("\r", "").splitlines():
        if line.startswith("redis_version:"):
            version = line.split(":", 1)[1]
        match = re.match(r"^(db\d+):keys=(\d+)", line)
        if match:
            keys[match.group(1)] = int(match.group(2))
    return version, keys


# The newest RDB format each Redis release reads (src/rdb.h RDB_VERSION).
_RDB_VERSIONS = ((7, 4, 12), (7, 2, 11), (7, 0, 10), (5, 0, 9), (4, 0, 8), (3, 2, 7))


def max_rdb_version(redis_version: str) -> int:
    match = re.match(r"(\d+)\.(\d+)", redis_version)
    if not match:
        return 0
    release = (int(match.group(1)), int(match.group(2)))
    return next((rdb for *since, rdb in _RDB_VERSIONS if release >= tuple(since)), 6)


def rdb_version(header: bytes) -> int | None:
    """``REDIS0010`` -> 10; None when the bytes are not an RDB header."""
    if len(header) < 9 or not header.startswith(b"REDIS") or not header[5:9].isdigit():
        return None
    return int(header[5:9])


class Redis:
    name = SERVICE
    service = SERVICE
    needs_server = True

    def _info(self, target: Target) -> tuple[str, dict[str, int]]:
        out = run_bytes(target.processes, target.exec_argv(SERVICE, INFO_SCRIPT), "redis: INFO")
        return parse_info(out.decode("utf-8", "replace"))

    def counts(self, target: Target) -> dict[str, int]:
        return self._info(target)[1]

    def backup(self, target: Target, set_dir: Path, progress: Progress) -> dict[str, Any]:
        version, before = self._info(target)
        written = dump_to_file(
            target,
            target.exec_argv(SERVICE, SNAPSHOT_SCRIPT),
            set_dir / FILE,
            "redis: BGSAVE",
            compress=True,
            progress=progress,
        )
        _, after = self._info(target)
        header = read_head(set_dir / FILE, 9)
        return {
            "kind": "redis",
            "service": SERVICE,
            "files": [FILE],
            "server_version": version,
            "rdb_version": rdb_version(header),
            "checksums": {FILE: written.sha256},
            "bytes": written.bytes,
            "raw_bytes": written.raw_bytes,
            "row_counts": merge_counts(before, after),
        }

    def check_restorable(self, target: Target, set_dir: Path, part: Mapping[str, Any]) -> None:
        path = set_dir / part_file(part, STEM)
        found = rdb_version(read_head(path, 9))
        if found is None:
            raise SetError(f"{path} is not a Redis snapshot (no RDB header): the set is corrupt")
        image_version = self._target_version(target)
        if image_version and found > max_rdb_version(image_version):
            raise SetError(
                f"{path} is RDB format {found}, which Redis {image_version} cannot read: incompatible set "
                "(restore it on the same or a newer Redis)"
            )

    def _target_version(self, target: Target) -> str:
        argv = target.compose.argv(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "redis-server", SERVICE, "--version"
        )
        out = run_bytes(target.processes, argv, "redis: version").decode("utf-8", "replace")
        match = re.search(r"v=(\d+\.\d+\.\d+)", out)
        return match.group(1) if match else ""

    def describe(self, part: Mapping[str, Any]) -> str:
        keys = sum(v if isinstance(v, int) else v[-1] for v in part.get("row_counts", {}).values())
        return f"the Redis dataset is replaced (~{keys} keys); redis restarts"

    def restore(self, target: Target, set_dir: Path, part: Mapping[str, Any], progress: Progress) -> None:
        compose = target.compose
        data_dir = target.mount_target(SERVICE, VOLUME)
        compose.run("stop", SERVICE, capture=True)
        argv = compose.argv(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", SERVICE, "-c", RESTORE_SCRIPT, "sh", data_dir
        )
        path = set_dir / part_file(part, STEM)
        load_from_file(target, argv, path, "redis: restore", compressed=True, progress=progress)
        compose.run("up", "--detach", "--no-deps", "--wait", SERVICE, capture=True)
