"""Each doctor check, made to fail for real: a busy port, a missing key, a placeholder secret in prod,
a world-readable .env, a daemon that is down, an invalid compose config."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from enlaight_ops import doctor
from enlaight_ops.envfile import check_env, referenced_variables, sync_env_file

SAMPLE = "SECRET_KEY=__GENERATE__\nDEBUG=1\nDB_PASSWORD=__GENERATE__\n"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_busy_port_fails_unless_this_stack_holds_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = doctor.check_ports([("backend", "127.0.0.1", port)], held_by_us=set())
        assert busy.verdict == "fail" and str(port) in busy.detail and "backend" in busy.detail
        assert doctor.check_ports([("backend", "127.0.0.1", port)], held_by_us={port}).verdict == "pass"
    assert doctor.check_ports([("backend", "127.0.0.1", port)], held_by_us=set()).verdict == "pass"


def test_a_missing_or_blank_key_fails(tmp_path: Path):
    sample = write(tmp_path / "env.sample", SAMPLE)
    env = write(tmp_path / ".env", "SECRET_KEY=x" * 3 + "\nDEBUG=\n")
    check = doctor.check_env_file(env, sample)
    assert check.verdict == "fail"
    assert "missing: DB_PASSWORD" in check.detail and "blank: DEBUG" in check.detail
    assert doctor.check_env_file(tmp_path / "absent", sample).verdict == "fail"


def test_a_placeholder_or_weak_secret_fails_in_prod_only(tmp_path: Path):
    env = write(tmp_path / ".env", "SECRET_KEY=__GENERATE__\nDB_PASSWORD=password\nDEBUG=0\n")
    prod = doctor.check_production_settings(env, "prod")
    assert prod.verdict == "fail"
    assert "SECRET_KEY is a placeholder" in prod.detail and "DB_PASSWORD is weak" in prod.detail
    assert doctor.check_production_settings(env, "dev").verdict == "pass"


def test_debug_on_in_the_effective_prod_config_fails(tmp_path: Path):
    env = write(tmp_path / ".env", "SECRET_KEY=" + "k" * 40 + "\nDEBUG=1\n")
    forced_off = {"services": {"backend": {"environment": {"DEBUG": "0"}}}}
    assert doctor.check_production_settings(env, "prod", forced_off).verdict == "pass"
    left_on = {"services": {"backend": {"environment": {"DEBUG": "1"}}}}
    assert "DEBUG is on" in doctor.check_production_settings(env, "prod", left_on).detail


def test_a_world_readable_env_fails(tmp_path: Path):
    env = write(tmp_path / ".env", SAMPLE, mode=0o644)
    check = doctor.check_env_permissions(env)
    assert check.verdict == "fail" and "chmod 600" in check.fix
    env.chmod(0o600)
    assert doctor.check_env_permissions(env).verdict == "pass"


def test_a_daemon_that_is_down_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if doctor.check_docker_cli().verdict != "pass":
        pytest.skip("no docker CLI here")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    check, _ = doctor.check_engine()
    assert check.verdict == "fail" and "not reachable" in check.detail


def test_an_invalid_compose_config_fails_with_composes_message():
    def broken() -> dict:
        raise RuntimeError("service backend: invalid interpolation format for SECRET_KEY")

    from enlaight_ops.settings import load_settings

    check, config = doctor.check_compose_config(load_settings({}, root=Path(__file__).parents[2]), broken)
    assert check.verdict == "fail" and "SECRET_KEY" in check.detail and config == {}


def test_published_ports_come_from_the_merged_config():
    config = {"services": {"db": {"ports": [{"published": "3306", "host_ip": "127.0.0.1", "target": 3306}]},
                           "api": {"ports": [{"published": "8000", "target": 8000}]}, "cache": {}}}  # fmt: skip
    assert doctor.published_ports(config) == [("api", "0.0.0.0", 8000), ("db", "127.0.0.1", 3306)]


def test_env_check_reports_drift():
    sample = {"SECRET_KEY": "__GENERATE__", "DEBUG": "1", "OPTIONAL": ""}
    values = {"SECRET_KEY": "__GENERATE__", "DEBUG": "", "OPTIONAL": "", "TYPO_KEY": "1", "MYSQL_IMAGE": "x"}
    report = check_env(values, sample, referenced_variables("image: ${MYSQL_IMAGE:-mysql:8.4}"))
    assert report.blank == ["DEBUG"]
    assert report.placeholders == ["SECRET_KEY"]
    assert report.unread == ["TYPO_KEY"]
    assert report.missing == []
    assert report.problems("dev") == ["blank: DEBUG"]
    assert report.problems("prod") == ["blank: DEBUG", "placeholder: SECRET_KEY"]


def test_an_address_this_host_cannot_bind_is_a_warning_not_a_crash():
    check = doctor.check_ports([("api", "::1", 1), ("db", "192.0.2.1", 5)], held_by_us=set())
    assert check.verdict in ("warn", "fail")  # never an exception
    assert "192.0.2.1:5" in check.detail or "in use" in check.detail


def test_unread_keys_are_a_warning(tmp_path: Path):
    sample = write(tmp_path / "env.sample", "DEBUG=1\n")
    env = write(tmp_path / ".env", "DEBUG=1\nDEBGU=0\n")
    check = doctor.check_env_file(env, sample)
    assert (check.verdict, check.detail) == ("warn", "not read by anything: DEBGU")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (None, "missing: GUEST_TOKEN_JWT_SECRET"),
        ("GUEST_TOKEN_JWT_SECRET=", "blank: GUEST_TOKEN_JWT_SECRET"),
        ("GUEST_TOKEN_JWT_SECRET=   ", "blank: GUEST_TOKEN_JWT_SECRET"),
        ("GUEST_TOKEN_JWT_SECRET=__GENERATE__", "GUEST_TOKEN_JWT_SECRET is a placeholder"),
        ("GUEST_TOKEN_JWT_SECRET=__CHANGE_ME__", "GUEST_TOKEN_JWT_SECRET is a placeholder"),
        ("GUEST_TOKEN_JWT_SECRET=test-guest-secret-change-me", "GUEST_TOKEN_JWT_SECRET is a publicly known default"),
    ],
)
def test_prod_fails_without_a_real_guest_token_secret(tmp_path: Path, line: str | None, reason: str):
    """Superset signs embedded-dashboard guest tokens with it; its built-in default is public."""
    repo_sample = Path(__file__).resolve().parents[2] / "env.sample"
    sample = write(tmp_path / "env.sample", repo_sample.read_text())
    env = tmp_path / ".env"
    sync_env_file(sample, env)  # every secret generated, as `invoke env` does
    kept = [entry for entry in env.read_text().splitlines() if not entry.startswith("GUEST_TOKEN_JWT_SECRET=")]
    write(env, "\n".join(kept + ([line] if line is not None else [])) + "\n")
    prod_config = {"services": {"backend": {"environment": {"DEBUG": "0"}}}}  # what the prod overlay forces
    checks = [doctor.check_env_file(env, sample), doctor.check_production_settings(env, "prod", prod_config)]
    failures = [check for check in checks if check.verdict == "fail"]
    assert failures and any(reason in check.detail for check in failures), checks

    write(env, "\n".join([*kept, "GUEST_TOKEN_JWT_SECRET=" + "g" * 48]) + "\n")
    checks = [doctor.check_env_file(env, sample), doctor.check_production_settings(env, "prod", prod_config)]
    assert [check.verdict for check in checks] == ["pass", "pass"], checks


def test_production_without_a_mail_relay_is_a_warning(tmp_path):
    from enlaight_ops.doctor import check_mail_relay

    env_file = tmp_path / ".env"
    env_file.write_text("EMAIL_HOST=smtp\n")
    assert check_mail_relay(env_file, "dev").verdict == "pass"
    assert check_mail_relay(env_file, "prod").verdict == "warn"
    env_file.write_text("EMAIL_HOST=mail.example.com  # the company relay\n")
    assert check_mail_relay(env_file, "prod").verdict == "pass"
