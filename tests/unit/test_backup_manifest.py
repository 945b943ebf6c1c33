"""Backup sets on disk: names, SHA256SUMS, validation (partial, corrupt, incompatible) and retention."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enlaight_ops.backup import manifest as m
from enlaight_ops.backup import sets as backup_sets
from enlaight_ops.backup.sets import resolve_set

WHEN = datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC)


def make_set(directory: Path, name: str, files: dict[str, bytes] | None = None, **manifest_extra) -> Path:
    files = files if files is not None else {"mysql.sql.gz": b"dump", "redis.rdb.gz": b"rdb"}
    set_dir = directory / name
    set_dir.mkdir(parents=True)
    for file_name, data in files.items():
        (set_dir / file_name).write_bytes(data)
    components = {Path(f).name.split(".")[0]: {"files": [f], "service": f.split(".")[0]} for f in files}
    manifest = {"format": m.FORMAT_VERSION, "components": components, **manifest_extra}
    m.write_json(set_dir / m.MANIFEST, manifest)
    digests = {f: m.file_sha256(set_dir / f) for f in [*files, m.MANIFEST]}
    (set_dir / m.CHECKSUMS).write_text(m.format_checksums(digests))
    return set_dir


def test_set_names_sort_by_time_and_never_collide():
    assert m.set_name(WHEN, "dev") == "20260102T150405Z-dev"
    assert m.set_name(WHEN, "prod", ["20260102T150405Z-prod"]) == "20260102T150405Z-prod-2"
    assert m.parse_set_name("20260102T150405Z-prod-2") == WHEN
    assert m.parse_set_name("notes") is None


def test_checksums_are_what_sha256sum_c_accepts(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    if shutil.which("sha256sum"):
        result = subprocess.run(["sha256sum", "-c", m.CHECKSUMS], cwd=set_dir, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    text = (set_dir / m.CHECKSUMS).read_text()
    assert m.parse_checksums(text)["mysql.sql.gz"] == m.file_sha256(set_dir / "mysql.sql.gz")


@pytest.mark.parametrize("line", ["nonsense", "abc  file", f"{'0' * 64}  ../escape"])
def test_a_malformed_checksum_line_is_refused(line):
    with pytest.raises(m.SetError, match="corrupt"):
        m.parse_checksums(line + "\n")


def test_a_good_set_passes_and_returns_its_manifest(tmp_path):
    manifest = m.check_set(make_set(tmp_path, "20260102T150405Z-dev"))
    assert set(manifest["components"]) == {"mysql", "redis"}


def test_one_flipped_byte_is_refused_naming_the_file(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    data = bytearray((set_dir / "redis.rdb.gz").read_bytes())
    data[1] ^= 0x01
    (set_dir / "redis.rdb.gz").write_bytes(bytes(data))
    with pytest.raises(m.SetError) as caught:
        m.check_set(set_dir)
    assert "redis.rdb.gz" in str(caught.value) and "corrupt" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_edited_manifest_is_refused(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    (set_dir / m.MANIFEST).write_text((set_dir / m.MANIFEST).read_text().replace("mysql", "mysqX"))
    with pytest.raises(m.SetError, match="manifest.json"):
        m.check_set(set_dir)


def test_a_set_without_sha256sums_is_partial(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    (set_dir / m.CHECKSUMS).unlink()
    with pytest.raises(m.SetError, match="partial"):
        m.check_set(set_dir)


def test_a_missing_part_is_refused_naming_it(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    (set_dir / "mysql.sql.gz").unlink()
    with pytest.raises(m.SetError, match="mysql.sql.gz"):
        m.check_set(set_dir)


def test_a_newer_format_is_incompatible(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    manifest = json.loads((set_dir / m.MANIFEST).read_text())
    manifest["format"] = m.FORMAT_VERSION + 1
    m.write_json(set_dir / m.MANIFEST, manifest)
    digests = m.parse_checksums((set_dir / m.CHECKSUMS).read_text())
    digests[m.MANIFEST] = m.file_sha256(set_dir / m.MANIFEST)
    (set_dir / m.CHECKSUMS).write_text(m.format_checksums(digests))
    with pytest.raises(m.SetError, match="newer enlaight_ops"):
        m.check_set(set_dir)


def _rewrite_manifest(set_dir: Path, **changes) -> None:
    manifest = json.loads((set_dir / m.MANIFEST).read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    m.write_json(set_dir / m.MANIFEST, manifest)
    digests = m.parse_checksums((set_dir / m.CHECKSUMS).read_text())
    digests[m.MANIFEST] = m.file_sha256(set_dir / m.MANIFEST)
    (set_dir / m.CHECKSUMS).write_text(m.format_checksums(digests))


def test_new_sets_are_format_2_and_zstd_names_are_found_by_their_stem(tmp_path):
    assert m.FORMAT_VERSION == 2
    set_dir = make_set(tmp_path, "20260102T150405Z-dev", {"mysql.sql.zst": b"dump", "redis.rdb.zst": b"rdb"})
    manifest = m.check_set(set_dir)
    assert manifest["format"] == 2
    assert m.part_file(manifest["components"]["mysql"], "mysql.sql") == "mysql.sql.zst"


@pytest.mark.parametrize("version", [1, None])
def test_format_1_sets_and_sets_from_before_the_format_field_still_read(tmp_path, version):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")  # mysql.sql.gz, redis.rdb.gz: the gzip format
    _rewrite_manifest(set_dir, format=version)
    manifest = m.check_set(set_dir)
    assert manifest["format"] == 1
    assert m.part_file(manifest["components"]["mysql"], "mysql.sql") == "mysql.sql.gz"
    assert m.part_file(manifest["components"]["redis"], "redis.rdb") == "redis.rdb.gz"


def test_part_file_tells_postgres_dump_from_its_globals_in_both_formats():
    old = {"files": ["postgres.dump", "postgres-globals.sql.gz"]}
    new = {"files": ["postgres.dump.zst", "postgres-globals.sql.zst"]}
    assert m.part_file(old, "postgres.dump") == "postgres.dump"
    assert m.part_file(old, "postgres-globals.sql") == "postgres-globals.sql.gz"
    assert m.part_file(new, "postgres.dump") == "postgres.dump.zst"
    assert m.part_file(new, "postgres-globals.sql") == "postgres-globals.sql.zst"
    with pytest.raises(m.SetError, match="corrupt"):
        m.part_file({"files": ["postgres.dumpling"]}, "postgres.dump")


@pytest.mark.parametrize("version", [0, "2", True, 2.0])
def test_a_format_that_is_not_a_known_number_is_refused(tmp_path, version):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    _rewrite_manifest(set_dir, format=version)
    with pytest.raises(m.SetError, match="format"):
        m.check_set(set_dir)


def test_asking_for_a_component_the_set_lacks_is_refused(tmp_path):
    set_dir = make_set(tmp_path, "20260102T150405Z-dev")
    with pytest.raises(m.SetError, match="has no postgres"):
        m.check_set(set_dir, ["postgres"])


def test_a_partial_directory_is_refused_and_listed_as_partial(tmp_path):
    partial = tmp_path / m.partial_name("20260102T150405Z-dev")
    partial.mkdir()
    (partial / "mysql.sql.gz").write_bytes(b"half a dump")
    with pytest.raises(m.SetError, match="partial"):
        m.check_set(partial)
    with pytest.raises(m.SetError, match="partial"):
        resolve_set(tmp_path, "20260102T150405Z-dev")
    [info] = backup_sets.scan_sets(tmp_path)
    assert not info.complete


def _info(tmp_path: Path, age_hours: int, *, verified=False, complete=True) -> backup_sets.SetInfo:
    created = WHEN - timedelta(hours=age_hours)
    name = m.set_name(created, "dev")
    return backup_sets.SetInfo(name=name, path=tmp_path / name, created=created, complete=complete, verified=verified,
                     size=1, components=("mysql",))  # fmt: skip


def test_retention_removes_the_oldest_beyond_keep(tmp_path):
    sets = [_info(tmp_path, h) for h in range(5)]
    removed = backup_sets.sets_to_remove(sets, keep=2)
    assert [s.name for s in removed] == [s.name for s in sets[2:]]


def test_retention_never_removes_the_newest_verified_set(tmp_path):
    sets = [
        _info(tmp_path, 0),
        _info(tmp_path, 1),
        _info(tmp_path, 2, verified=True),
        _info(tmp_path, 3, verified=True),
    ]
    removed = backup_sets.sets_to_remove(sets, keep=1)
    assert sets[2] not in removed
    assert sets[3] in removed and sets[1] in removed


def test_retention_ignores_partial_sets_and_rejects_zero(tmp_path):
    sets = [_info(tmp_path, 0, complete=False), _info(tmp_path, 1), _info(tmp_path, 2)]
    assert backup_sets.sets_to_remove(sets, keep=2) == []
    with pytest.raises(ValueError):
        backup_sets.sets_to_remove(sets, keep=0)


def test_scan_lists_newest_first_with_verified_state(tmp_path):
    make_set(tmp_path, "20260101T000000Z-dev")
    newer = make_set(tmp_path, "20260102T000000Z-dev")
    m.write_json(newer / m.VERIFIED, {"verified_at": "now"})
    (tmp_path / "not-a-set").mkdir()
    sets = backup_sets.scan_sets(tmp_path)
    assert [s.name for s in sets] == ["20260102T000000Z-dev", "20260101T000000Z-dev"]
    assert sets[0].verified and not sets[1].verified
    assert resolve_set(tmp_path, "latest") == newer


def test_counts_taken_before_and_after_become_ranges_when_writers_ran():
    merged = m.merge_counts({"a.t": 5, "a.u": 1}, {"a.t": 5, "a.u": 3, "a.new": 2})
    assert merged == {"a.t": 5, "a.u": [1, 3], "a.new": [0, 2]}
    assert m.compare_counts(merged, {"a.t": 5, "a.u": 2, "a.new": 2}) == []
    problems = m.compare_counts(merged, {"a.t": 4, "a.u": 9})
    assert problems == ["a.t: 4 rows, the backup has 5", "a.u: 9 rows, the backup saw 1..3"]


def test_latest_and_retention_stay_within_one_environment(tmp_path: Path):
    from enlaight_ops.backup.sets import of_env

    sets = [
        backup_sets.SetInfo("20261127T100000Z-prod", tmp_path / "a", None, True, False, 1, ()),
        backup_sets.SetInfo("20261127T090000Z-dev", tmp_path / "b", None, True, False, 1, ()),
        backup_sets.SetInfo(".20261127T110000Z-dev.partial", tmp_path / "c", None, False, False, 1, ()),
    ]
    assert [s.name for s in of_env(sets, "dev")] == ["20261127T090000Z-dev", ".20261127T110000Z-dev.partial"]
    assert [s.name for s in of_env(sets, "prod")] == ["20261127T100000Z-prod"]
    assert len(of_env(sets, None)) == 3


def _write_set(directory: Path, name: str, components: list[str]) -> None:
    path = directory / name
    path.mkdir(parents=True)
    m.write_json(path / m.MANIFEST, {"components": {c: {} for c in components}})
    (path / m.CHECKSUMS).write_text("")


def test_two_sets_of_one_second_are_both_seen_by_latest_and_retention(tmp_path):
    _write_set(tmp_path, "20260102T150405Z-dev", ["mysql"])
    _write_set(tmp_path, "20260102T150405Z-dev-2", ["mysql"])
    assert m.set_env("20260102T150405Z-dev-2") == "dev" and m.set_env(".20260102T150405Z-prod.partial") == "prod"
    assert resolve_set(tmp_path, "latest", "dev").name == "20260102T150405Z-dev-2"
    assert [s.name for s in backup_sets.apply_retention(tmp_path, 1, "dev")] == ["20260102T150405Z-dev"]


def test_a_live_partial_of_the_same_second_is_not_given_the_same_name():
    taken = [m.bare_name(".20260102T150405Z-dev.partial")]
    assert m.set_name(WHEN.replace(hour=15, minute=4, second=5), "dev", taken).endswith("-dev-2")


def test_retention_counts_only_sets_of_the_same_components(tmp_path):
    _write_set(tmp_path, "20260101T000000Z-dev", ["mysql", "postgres", "redis"])
    for hour in range(1, 4):
        _write_set(tmp_path, f"20260101T0{hour}0000Z-dev", ["redis"])
    removed = backup_sets.apply_retention(tmp_path, 1, "dev", ("redis",))
    assert sorted(s.name for s in removed) == ["20260101T010000Z-dev", "20260101T020000Z-dev"]
    assert (tmp_path / "20260101T000000Z-dev").is_dir(), "the last full set stays"
