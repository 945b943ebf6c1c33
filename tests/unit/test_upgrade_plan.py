"""The upgrade plan's decisions, fed with what a real engine answered (captured on the local images)."""

from __future__ import annotations

import json
import stat

import pytest

from enlaight_ops.errors import UsageError
from enlaight_ops.upgrade import history
from enlaight_ops.upgrade.plan import (
    DiskFacts,
    EngineFacts,
    Facts,
    ImageRef,
    ServiceFacts,
    engine_change,
    history_rows,
    make_plan,
    parse_migrate_plan,
    parse_to,
    parse_version,
    plan_lines,
    postgres_hop,
    redis_version,
    rollback_tag,
)

# Captured: `python manage.py migrate --plan` in the backend, one migration behind, then up to date.
MIGRATE_PLAN = """Planned operations:
core.0002_project_superset_dashboard
    Add field superset_dashboard_id to project
    Add field superset_embedded_id to project
"""
MIGRATE_PLAN_NONE = "Planned operations:\n  No planned migration operations.\n"
# Captured: what the servers and the images' binaries say.
POSTGRES_15_SERVER = "15.20 (Debian 15.20-0+deb12u1)"
POSTGRES_15_BINARY = "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
POSTGRES_17_BINARY = "postgres (PostgreSQL) 17.6 (Debian 17.6-0+deb13u1)"
MARIADB_SERVER = "10.11.19-MariaDB-0+deb12u1"
MARIADB_BINARY = "mysqld  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
MYSQL_BINARY = "mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)"
REDIS_INFO = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"
REDIS_8_BINARY = "Redis server v=8.0.2 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1b2c3d"

OLD = ImageRef("enlaight/backend:prod", "sha256:" + "a" * 64, 257_000_000)
PG = ImageRef("enlaight-local/postgres:15", "sha256:" + "b" * 64, 378_000_000)


def facts(**overrides) -> Facts:
    values = dict(
        project="enlaight",
        env="prod",
        services=(
            ServiceFacts("backend", OLD, ImageRef("enlaight/backend:prod", "", OLD.size), "build"),
            ServiceFacts("postgres", PG, PG, "config"),
        ),
        engines=(EngineFacts("postgres", POSTGRES_15_SERVER, POSTGRES_15_SERVER),),
        migrations=parse_migrate_plan(MIGRATE_PLAN),
        disk=DiskFacts(
            backup_bytes=40_000_000, image_bytes=OLD.size, free_bytes=20_000_000_000, backup_free_bytes=20_000_000_000
        ),  # fmt: skip
    )
    return Facts(**(values | overrides))


def test_migrate_plan_lists_the_migrations_in_order():
    assert parse_migrate_plan(MIGRATE_PLAN) == ("core.0002_project_superset_dashboard",)
    assert parse_migrate_plan(MIGRATE_PLAN_NONE) == ()
    two = "Planned operations:\ncore.0002_a\n    Add field\nauth.0013_b\n    Raw SQL operation\n"
    assert parse_migrate_plan(two) == ("core.0002_a", "auth.0013_b")


def test_versions_from_server_answers():
    assert parse_version(POSTGRES_15_SERVER) == (15, 20)
    assert parse_version(POSTGRES_17_BINARY) == (17, 6)
    assert parse_version(MARIADB_BINARY) == (10, 11, 19)
    assert parse_version(REDIS_8_BINARY) == (8, 0, 2)
    assert redis_version(REDIS_INFO) == "7.0.15"
    assert parse_version("") == ()


def test_same_image_is_no_engine_change_and_a_minor_update_keeps_the_data():
    same = engine_change(EngineFacts("postgres", POSTGRES_15_SERVER, POSTGRES_15_BINARY))
    assert (same.kind, same.blocks) == ("same", False)
    minor = engine_change(EngineFacts("mysql", "10.11.6-MariaDB", MARIADB_BINARY))
    assert (minor.kind, minor.blocks) == ("minor", False)


def test_a_postgres_major_hop_is_crossed_by_dump_and_restore():
    change = engine_change(EngineFacts("postgres", POSTGRES_15_SERVER, POSTGRES_17_BINARY))
    assert (change.kind, change.blocks) == ("major", False)
    assert "15.20 -> 17.6" in change.how and "dump and restore into a fresh volume" in change.how
    plan = make_plan(facts(engines=(EngineFacts("postgres", POSTGRES_15_SERVER, POSTGRES_17_BINARY),)))
    assert plan.blockers == () and postgres_hop(plan) == change
    assert postgres_hop(make_plan(facts())) is None


def test_mysql_majors_are_major_minor_and_flavours_do_not_mix():
    hop = engine_change(EngineFacts("mysql", "8.0.39", MYSQL_BINARY))
    assert (hop.kind, hop.blocks) == ("major", True)
    flavour = engine_change(EngineFacts("mysql", MARIADB_SERVER, MYSQL_BINARY))
    assert (flavour.kind, flavour.blocks) == ("flavour", True)


def test_redis_major_is_crossed_by_loading_the_old_files_and_a_downgrade_blocks():
    up = engine_change(EngineFacts("redis", redis_version(REDIS_INFO), REDIS_8_BINARY))
    assert (up.kind, up.blocks) == ("major", False)
    down = engine_change(EngineFacts("postgres", "17.6", POSTGRES_15_BINARY))
    assert (down.kind, down.blocks) == ("downgrade", True)


def test_unknown_target_version_does_not_block():
    change = engine_change(EngineFacts("postgres", POSTGRES_15_SERVER, ""))
    assert (change.kind, change.blocks) == ("unknown", False)


def test_plan_of_a_rebuild_with_a_pending_migration():
    plan = make_plan(facts())
    assert [s.service for s in plan.changed] == ["backend"]
    assert [s.service for s in plan.replaced_images] == ["backend"]
    assert plan.migrations == ("core.0002_project_superset_dashboard",)
    assert plan.blockers == ()
    text = "\n".join(plan_lines(plan))
    assert "backend: enlaight/backend:prod aaaaaaaaaaaa -> enlaight/backend:prod (not built yet)" in text
    assert "rebuild from this checkout" in text and "postgres" in text and "unchanged" in text
    assert "core.0002_project_superset_dashboard" in text
    json.dumps(plan.as_dict())  # the plan is plain data


def test_plan_blocks_on_disk_and_on_a_major_hop():
    full = make_plan(facts(disk=DiskFacts(40_000_000, 257_000_000, 100_000_000, 100_000_000)))
    assert any("disk" in b and "297.0 MB" in b for b in full.blockers)
    hop = make_plan(facts(engines=(EngineFacts("mysql", "8.0.39", MYSQL_BINARY),)))
    assert hop.blockers and "MySQL 8.0.39 -> 8.4.3" in hop.blockers[0] and "does not cross it yet" in hop.blockers[0]


def test_plan_on_separate_disks_checks_each():
    plan = make_plan(facts(disk=DiskFacts(40_000_000, 257_000_000, 10**10, 1_000_000, same_disk=False)))
    assert len(plan.blockers) == 1 and "backup directory" in plan.blockers[0]


def test_nothing_to_upgrade_and_unknown_migrations_say_so():
    same = ServiceFacts("postgres", PG, PG, "config")
    plan = make_plan(facts(services=(same,), migrations=None, migrations_error="backend is not running"))
    assert plan.changed == []
    assert any("nothing to upgrade" in n for n in plan.notes)
    assert "migrations: unknown (backend is not running)" in "\n".join(plan_lines(plan))


def test_dev_says_its_source_is_mounted():
    assert any("mounts ./backend" in n for n in make_plan(facts(source_mounted=True)).notes)


def test_to_takes_service_equals_image_for_the_stacks_own_images():
    assert parse_to(["backend=reg.example/enlaight-backend:1.4"], ["backend", "frontend"]) == {
        "backend": "reg.example/enlaight-backend:1.4"
    }
    assert parse_to([], ["backend"]) == {}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("backend", "SERVICE=IMAGE"),
        ("=img", "SERVICE=IMAGE"),
        ("backend=", "SERVICE=IMAGE"),
        ("postgres=postgres:17", "*_IMAGE"),
        ("backend=a b", "not an image reference"),
    ],
)
def test_bad_to_is_one_usage_line(value, words):
    with pytest.raises(UsageError) as error:
        parse_to([value], ["backend", "frontend"])
    assert words in str(error.value) and "\n" not in str(error.value)


def test_to_twice_is_refused():
    with pytest.raises(UsageError, match="twice"):
        parse_to(["backend=a:1", "backend=b:2"], ["backend"])


def test_rollback_tag_keeps_the_repository():
    assert rollback_tag("enlaight/backend:prod", "20260102T030405Z") == "enlaight/backend:rollback-20260102T030405Z"
    assert rollback_tag("registry:5000/enlaight/backend", "T") == "registry:5000/enlaight/backend:rollback-T"
    assert rollback_tag("reg:5000/backend:1.4@sha256:" + "c" * 64, "T") == "reg:5000/backend:rollback-T"


def test_history_is_private_json_lines_and_lists_this_project(tmp_path):
    backups = tmp_path / "backups"
    record = {"at": "2026-11-27T18:00:00+00:00", "project": "enlaight", "env": "prod", "outcome": "upgraded",
              "from": {"backend": {"id": OLD.id}}, "to": {"backend": {"id": "sha256:" + "d" * 64}},
              "migrations": ["core.0002_x"], "set": "20261127T180000Z-prod", "cause": ""}  # fmt: skip
    path = history.append(backups, record)
    history.append(backups, record | {"project": "other"})
    with path.open("a") as handle:
        handle.write("{torn")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = history_rows(history.read(backups), "enlaight")
    assert rows == [("2026-11-27T18:00:00+00:00", "prod", "upgraded", "backend aaaaaaaaaaaa->dddddddddddd",
                     "core.0002_x", "20261127T180000Z-prod", "")]  # fmt: skip
    assert history.read(tmp_path / "none") == []
