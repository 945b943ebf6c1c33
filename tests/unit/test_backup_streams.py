"""Byte pipes and the parsers of what the database tools print: no Docker needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

from enlaight_ops.backup import mysql, postgres, redis
from enlaight_ops.backup.components import all_components, select
from enlaight_ops.backup.streams import pump_from_file, pump_to_file, read_head
from enlaight_ops.backup.target import parse_counts
from enlaight_ops.backup.volume import TarStats, stateful_volumes


def test_pump_writes_standard_gzip_and_hashes_what_lands_on_disk(tmp_path):
    data = os.urandom(3 << 20) + "emoji 😀\n".encode() * 100000
    target = tmp_path / "part.sql.gz"
    seen = []
    written = pump_to_file(io.BytesIO(data), target, compress=True, on_progress=lambda raw, out: seen.append(raw))
    assert gzip.decompress(target.read_bytes()) == data
    assert written.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert written.raw_bytes == len(data) and written.bytes == target.stat().st_size
    assert seen[-1] == len(data) and len(seen) > 2  # progress while streaming, not once at the end
    assert read_head(target, 9, compressed=True) == data[:9]

    sink = io.BytesIO()
    sink.close = lambda: None  # keep the buffer readable after pump_from_file closes it
    assert pump_from_file(target, sink, compressed=True) == len(data)
    assert sink.getvalue() == data


def test_tar_stats_count_files_and_bytes_like_tarfile(tmp_path):
    (tmp_path / "src" / "deep").mkdir(parents=True)
    sizes = {"a": 0, "b": 511, "c": 512, "deep/d": 70000, "deep/" + "long" * 40: 3}
    for name, size in sizes.items():
        (tmp_path / "src" / name).write_bytes(b"x" * size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(tmp_path / "src", arcname=".")
    stats = TarStats()
    raw = buffer.getvalue()
    for start in range(0, len(raw), 777):  # chunk boundaries anywhere, as pipes deliver them
        stats.feed(raw[start : start + 777])
    assert stats.as_counts() == {"files": len(sizes), "bytes": sum(sizes.values())}


def test_mysql_counts_are_parsed_and_names_quoted():
    version, counts = parse_counts("@version\t10.11.6-MariaDB\nenlaight.core_client\t12\nsuperset.ab_user\t0\n", "\t")
    assert version == "10.11.6-MariaDB" and counts == {"enlaight.core_client": 12, "superset.ab_user": 0}
    assert mysql.sql_string("it's\\") == "'it''s\\\\'"
    assert "IN ('enlaight', 'superset')" in mysql.count_sql(["enlaight", "superset"])


def test_postgres_counts_and_versions():
    version, counts = parse_counts("@version|15.10 (Debian)\npublic.workflow_entity|3\npublic.odd|name|1\n", "|")
    assert version == "15.10 (Debian)" and counts == {"public.workflow_entity": 3, "public.odd|name": 1}
    assert postgres.major("15.10 (Debian)") == 15 and postgres.major("") == 0


def test_redis_info_and_rdb_compatibility():
    info = (
        "# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\ndb2:keys=1,expires=0\r\n"
    )
    assert redis.parse_info(info) == ("7.0.15", {"db0": 5, "db2": 1})
    assert redis.rdb_version(b"REDIS0010\xfa") == 10 and redis.rdb_version(b"garbage!!") is None
    assert redis.max_rdb_version("7.0.15") == 10
    assert redis.max_rdb_version("7.4.1") == 12
    assert redis.max_rdb_version("6.2.14") == 9


CONFIG = {
    "services": {
        "mysql": {"volumes": [{"type": "volume", "source": "mysql_data", "target": "/var/lib/mysql"}]},
        "postgres": {"volumes": [{"type": "volume", "source": "postgres_data", "target": "/var/lib/postgresql/data"}]},
        "redis": {"volumes": [{"type": "volume", "source": "redis_data", "target": "/data"}]},
        "n8n": {"volumes": [{"type": "volume", "source": "n8n_data", "target": "/home/node/.n8n"}]},
        "superset": {"volumes": [{"type": "volume", "source": "superset_home", "target": "/app/superset_home"}]},
        "superset-init": {"volumes": [{"type": "volume", "source": "superset_home", "target": "/app/superset_home"}]},
        "backend": {"volumes": [{"type": "bind", "source": "/src", "target": "/app"}]},
    }
}


def test_state_volumes_are_those_the_dumps_do_not_cover():
    assert stateful_volumes(CONFIG) == {"n8n_data": "n8n", "superset_home": "superset"}


def test_components_are_selected_by_service_or_name():
    components = all_components(CONFIG)
    assert [c.name for c in components] == ["mysql", "postgres", "redis", "n8n_data", "superset_home"]
    assert [c.name for c in select(components, ["n8n", "mysql"])] == ["n8n_data", "mysql"]
    assert [c.name for c in select(components, ["superset_home"])] == ["superset_home"]
    try:
        select(components, ["backend"])
    except Exception as exc:  # UsageError: one line naming the valid choices
        assert "backend holds no data" in str(exc) and "mysql" in str(exc)
    else:
        raise AssertionError("backend has no data and must be refused")
