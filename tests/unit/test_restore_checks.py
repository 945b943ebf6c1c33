"""What restore refuses before it changes anything: another environment's set in prod, n8n data under another
encryption key, a set outside the backup directory; and `-s n8n` takes everything n8n needs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from enlaight_ops.backup.manifest import SetError
from enlaight_ops.backup.restore import check_compatible
from enlaight_ops.backup.sets import resolve_set
from enlaight_ops.errors import UsageError


def target(env: str, fingerprint: str | None) -> SimpleNamespace:
    settings = SimpleNamespace(env=env)
    return SimpleNamespace(compose=SimpleNamespace(settings=settings), n8n_key_fingerprint=lambda: fingerprint)


def component(name: str, service: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, service=service)


N8N = [component("postgres", "postgres"), component("n8n_data", "n8n")]
MYSQL = [component("mysql", "mysql")]


def test_a_dev_set_is_refused_in_prod_unless_asked():
    manifest = {"env": "dev", "n8n_key_fingerprint": "aaaa"}
    with pytest.raises(UsageError, match="--from-other-env"):
        check_compatible(Path("s"), manifest, target("prod", "aaaa"), MYSQL, from_other_env=False)
    check_compatible(Path("s"), manifest, target("prod", "aaaa"), MYSQL, from_other_env=True)
    check_compatible(Path("s"), {"env": "prod"}, target("dev", "aaaa"), MYSQL, from_other_env=False)


def test_n8n_data_under_another_key_is_refused_with_the_fix():
    manifest = {"env": "dev", "n8n_key_fingerprint": "aaaa"}
    with pytest.raises(SetError, match="N8N_ENCRYPTION_KEY") as caught:
        check_compatible(Path("s"), manifest, target("dev", "bbbb"), N8N, from_other_env=False)
    assert "back in .env" in str(caught.value)
    check_compatible(Path("s"), manifest, target("dev", "bbbb"), MYSQL, from_other_env=False)  # n8n not touched
    check_compatible(Path("s"), {"env": "dev"}, target("dev", "bbbb"), N8N, from_other_env=False)  # an older set


def test_a_set_outside_the_backup_directory_is_refused(tmp_path: Path):
    backups = tmp_path / "backups"
    (backups / "20260101T000000Z-dev").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert resolve_set(backups, "20260101T000000Z-dev") == (backups / "20260101T000000Z-dev").resolve()
    for reference in ("../elsewhere", str(tmp_path / "elsewhere"), "../../" * 8 + "etc"):
        with pytest.raises(SetError, match="not inside the backup directory"):
            resolve_set(backups, reference)


def test_restoring_n8n_restores_its_database_too():
    from enlaight_ops.backup.restore import plan

    config = {
        "services": {
            "mysql": {},
            "postgres": {},
            "n8n": {"volumes": [{"type": "volume", "source": "n8n_data", "target": "/home/node/.n8n"}]},
        },
        "volumes": {"n8n_data": {}},
    }
    manifest = {
        "components": {
            "mysql": {"service": "mysql"},
            "postgres": {"service": "postgres"},
            "n8n_data": {"service": "n8n"},
        }
    }
    stack = SimpleNamespace(compose=SimpleNamespace(config=config))
    assert sorted(c.name for c in plan(Path("s"), manifest, stack, ["n8n"])) == ["n8n_data", "postgres"]
    assert [c.name for c in plan(Path("s"), manifest, stack, ["mysql"])] == ["mysql"]
