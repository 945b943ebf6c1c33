"""env.sample -> .env: secrets generated, values never overwritten, new keys merged, mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from enlaight_ops.envfile import mask_text, parse_env, sync_env_file

SAMPLE = """# comment
SECRET_KEY=__GENERATE__
DEBUG=1
DB_PASSWORD=__GENERATE__
# OPTIONAL_IMAGE=mysql:8.4
ADMIN_EMAIL=__CHANGE_ME__
"""


def _files(tmp_path: Path, sample: str = SAMPLE) -> tuple[Path, Path]:
    (tmp_path / "env.sample").write_text(sample)
    return tmp_path / "env.sample", tmp_path / ".env"


def test_creates_env_with_generated_secrets_and_private_mode(tmp_path: Path):
    sample, target = _files(tmp_path)
    report = sync_env_file(sample, target)
    values = parse_env(target.read_text())
    assert report.created and sorted(report.generated) == ["DB_PASSWORD", "SECRET_KEY"]
    assert len(values["SECRET_KEY"]) >= 40 and values["SECRET_KEY"] != values["DB_PASSWORD"]
    assert values["DEBUG"] == "1"
    assert "OPTIONAL_IMAGE" not in values  # commented-out keys stay commented
    assert report.needs_value == ["ADMIN_EMAIL"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_second_run_changes_nothing(tmp_path: Path):
    sample, target = _files(tmp_path)
    sync_env_file(sample, target)
    before = target.read_text()
    report = sync_env_file(sample, target)
    assert not report.changed
    assert target.read_text() == before


def test_existing_values_are_kept_and_new_keys_added(tmp_path: Path):
    sample, target = _files(tmp_path, SAMPLE + "NEW_TOKEN=__GENERATE__\nNEW_PORT=8080\n")
    target.write_text("SECRET_KEY=mine\nDEBUG=0\nDB_PASSWORD=\nMY_OWN=keep\n")
    target.chmod(0o644)
    report = sync_env_file(sample, target)
    values = parse_env(target.read_text())
    assert values["SECRET_KEY"] == "mine" and values["DEBUG"] == "0" and values["MY_OWN"] == "keep"
    assert values["DB_PASSWORD"]  # blank + generated in the sample -> filled
    assert sorted(report.added) == ["ADMIN_EMAIL", "NEW_PORT", "NEW_TOKEN"]
    assert values["NEW_PORT"] == "8080" and len(values["NEW_TOKEN"]) >= 40
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_secrets_are_masked_in_echoed_text():
    values = {"MYSQL_ROOT_PASSWORD": "s3cr3t-value", "DEBUG": "1", "N8N_KB_KEY": "abcd1234"}
    text = "mysql -ps3cr3t-value --key abcd1234 DEBUG=1"
    assert mask_text(text, values) == "mysql -p**** --key **** DEBUG=1"
