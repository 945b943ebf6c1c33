"""Byte pipes and the parsers of what the database tools print: no Docker needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

import pytest
import zstandard

from enlaight_ops.backup import mysql, postgres, redis
from enlaight_ops.backup.components import all_components, select
from enlaight_ops.backup.streams import CHUNK, codec_of, pump_from_file, pump_to_file, read_head, tail_of
from enlaight_ops.backup.target import parse_counts
from enlaight_ops.backup.volume import TarStats, stateful_volumes


class Sink(io.BytesIO):
    """A process's stdin: remembers the biggest single write, stays readable after pump_from_file closes it."""

    biggest = 0

    def write(self, data) -> int:
        self.biggest = max(self.biggest, len(data))
        return super().write(data)

    def close(self) -> None:
        pass


def test_pump_writes_standard_zstd_and_hashes_what_lands_on_disk(tmp_path):
    data = os.urandom(3 << 20) + "INSERT INTO `t` VALUES (1,'emoji 😀');\n".encode() * 200000
    target = tmp_path / "mysql.sql.zst"
    seen = []
    written = pump_to_file(io.BytesIO(data), target, compress=True, on_progress=lambda raw, out: seen.append(raw))
    on_disk = target.read_bytes()
    # A standard zstd frame, with its own content checksum: `zstd -d` and `zstdcat` read it.
    assert zstandard.ZstdDecompressor().decompressobj().decompress(on_disk) == data
    assert zstandard.get_frame_parameters(on_disk).has_checksum
    assert written.sha256 == hashlib.sha256(on_disk).hexdigest()
    assert written.raw_bytes == len(data) and written.bytes == len(on_disk) < len(data) / 2
    assert seen[-1] == len(data) and len(seen) > 2  # progress while streaming, not once at the end
    assert read_head(target, 9) == data[:9]

    sink = Sink()
    assert pump_from_file(target, sink, compressed=True) == len(data)
    assert sink.getvalue() == data


def test_a_damaged_zstd_file_fails_loudly_instead_of_feeding_garbage(tmp_path):
    target = tmp_path / "redis.rdb.zst"
    pump_to_file(io.BytesIO(b"REDIS0010" + os.urandom(1 << 20)), target, compress=True)
    damaged = bytearray(target.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    target.write_bytes(bytes(damaged))
    with pytest.raises(zstandard.ZstdError):
        pump_from_file(target, Sink(), compressed=True)


@pytest.mark.parametrize("name", ["volume-n8n_data.tar.zst", "volume-n8n_data.tar.gz"])
def test_decompression_moves_in_bounded_chunks_however_well_a_file_compresses(tmp_path, name):
    # 64 MiB of zeros shrink to a few KiB: a restore must not inflate a whole read into memory at once.
    target = tmp_path / name
    pump_to_file(io.BytesIO(bytes(64 << 20)), target, compress=True)
    assert target.stat().st_size < 1 << 20
    sink = Sink()
    assert pump_from_file(target, sink, compressed=True) == 64 << 20
    assert sink.biggest <= CHUNK


def test_the_file_name_says_how_it_is_compressed(tmp_path):
    assert codec_of(tmp_path / "mysql.sql.zst") == "zstd"
    assert codec_of(tmp_path / "mysql.sql.gz") == "gzip"
    assert codec_of(tmp_path / "postgres.dump") is None
    with pytest.raises(ValueError, match="ends in"):
        pump_to_file(io.BytesIO(b"x"), tmp_path / "mysql.sql", compress=True)
    raw = tmp_path / "postgres.dump"
    pump_to_file(io.BytesIO(b"PGDMP raw"), raw, compress=False)
    assert raw.read_bytes() == b"PGDMP raw" and read_head(raw, 5) == b"PGDMP"


def test_error_tails_are_masked():
    err = io.BytesIO(b"noise\nERROR 1045: Access denied for user 'root' (using password: hunter2secret)\n\n")
    masked = tail_of(err, lambda text: text.replace("hunter2secret", "****"))
    assert masked == "ERROR 1045: Access denied for user 'root' (using password: ****)"
    assert tail_of(io.BytesIO(b"")) == "no error output"


def test_mysql_write_counters_decide_whether_one_count_pass_is_exact():
    mysql_8 = {"Innodb_rows_inserted": 10, "Innodb_rows_deleted": 2, "Handler_write": 99, "Handler_delete": 2,
               "@open_writers": 0, "enlaight.t": 5}  # fmt: skip
    mariadb = {"Handler_write": 7, "Handler_delete": 1, "@open_writers": 0, "enlaight.t": 5}
    assert mysql.writes_of(mysql_8) == 12  # InnoDB's own counters when the server has them
    assert mysql.writes_of(mariadb) == 8
    assert mysql.writes_of({**mariadb, "@open_writers": 1}) == -1  # an open writer may commit between snapshots
    assert mysql.writes_of({"enlaight.t": 5}) == -1  # a server that does not say is taken as written to
    assert mysql.WRITES_SQL in mysql.count_sql(["enlaight"])
    # the counters are read before the snapshot the counts are taken in
    sql = mysql.count_sql(["enlaight"])
    assert sql.index("Innodb_rows_inserted") < sql.index("START TRANSACTION WITH CONSISTENT SNAPSHOT")


def test_pump_still_writes_format_1_gzip_and_hashes_what_lands_on_disk(tmp_path):
    data = os.urandom(3 << 20) + "emoji 😀\n".encode() * 100000
    target = tmp_path / "part.sql.gz"
    seen = []
    written = pump_to_file(io.BytesIO(data), target, compress=True, on_progress=lambda raw, out: seen.append(raw))
    assert gzip.decompress(target.read_bytes()) == data
    assert written.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert written.raw_bytes == len(data) and written.bytes == target.stat().st_size
    assert seen[-1] == len(data) and len(seen) > 2  # progress while streaming, not once at the end
    assert read_head(target, 9, compressed=True) == data[:9]

    sink = Sink()
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


def test_a_failed_pump_command_never_shows_a_secret_of_the_env_files(tmp_path):
    from enlaight_ops.backup.streams import ComponentFailed, run_bytes
    from enlaight_ops.backup.target import Target, dump_to_file
    from enlaight_ops.compose import Compose
    from enlaight_ops.settings import load_settings

    (tmp_path / ".env").write_text("MYSQL_ROOT_PASSWORD=hunter2secret\nBACKEND_DB=enlaight\n")
    target = Target(Compose(load_settings({"project": "masking"}, root=tmp_path)), tools_image="unused")
    failing = ["sh", "-c", "echo 'ERROR 1045: denied (using password hunter2secret)' >&2; exit 1"]
    dump = tmp_path / "x.sql.zst"
    for attempt in (
        lambda: run_bytes(target.processes, failing, "mysql: counting rows"),
        lambda: dump_to_file(target, failing, dump, "mysql: mysqldump", compress=True, progress=lambda r, w: None),
    ):
        with pytest.raises(ComponentFailed) as caught:
            attempt()
        assert "hunter2secret" not in str(caught.value) and "using password ****" in str(caught.value)
