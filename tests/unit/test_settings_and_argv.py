"""Which files, project and env files each environment uses, and the exact compose argv (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from enlaight_ops.compose import Compose
from enlaight_ops.errors import UsageError
from enlaight_ops.settings import load_settings


def test_dev_is_the_default_and_uses_the_override(tmp_path: Path):
    (tmp_path / ".env").write_text("X=1\n")
    settings = load_settings({}, root=tmp_path)
    assert settings.env == "dev"
    assert [f.name for f in settings.compose_files] == ["docker-compose.yml", "docker-compose.override.yml"]
    assert Compose(settings).argv("ps") == [
        "docker",
        "compose",
        "--project-name",
        "enlaight",
        "--project-directory",
        str(tmp_path),
        "--file",
        str(tmp_path / "docker-compose.yml"),
        "--file",
        str(tmp_path / "docker-compose.override.yml"),
        "--env-file",
        str(tmp_path / ".env"),
        "ps",
    ]


def test_prod_flag_wins_over_configuration(tmp_path: Path):
    settings = load_settings({"env": "dev"}, prod=True, root=tmp_path)
    assert settings.env == "prod"
    assert [f.name for f in settings.compose_files] == ["docker-compose.yml", "docker-compose.prod.yml"]


def test_configuration_selects_prod_and_project(tmp_path: Path):
    settings = load_settings({"env": "prod", "project": "enlaight-staging"}, root=tmp_path)
    argv = Compose(settings).argv("up", "--detach")
    assert argv[argv.index("--project-name") + 1] == "enlaight-staging"
    assert str(tmp_path / "docker-compose.prod.yml") in argv
    assert "staging" in settings.describe() and "prod" in settings.describe()


def test_local_images_env_file_is_loaded_after_dot_env(tmp_path: Path):
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / "local-images.env").write_text("MYSQL_IMAGE=enlaight-local/mysql:mariadb-10.11\n")
    argv = Compose(load_settings({}, root=tmp_path)).argv("config")
    env_files = [argv[i + 1] for i, a in enumerate(argv) if a == "--env-file"]
    assert env_files == [str(tmp_path / ".env"), str(tmp_path / "local-images.env")]


def test_missing_env_files_are_not_passed(tmp_path: Path):
    assert "--env-file" not in Compose(load_settings({}, root=tmp_path)).argv("config")


def test_compose_command_can_be_a_standalone_binary(tmp_path: Path):
    settings = load_settings({"compose_command": "/opt/compose/docker-compose"}, root=tmp_path)
    assert Compose(settings).argv("version")[:2] == ["/opt/compose/docker-compose", "--project-name"]


@pytest.mark.parametrize("config", [{"env": "staging"}, {"project": "Bad Name"}])
def test_bad_configuration_is_one_clear_error(config, tmp_path: Path):
    with pytest.raises(UsageError) as error:
        load_settings(config, root=tmp_path)
    assert "\n" not in str(error.value)


def test_docker_ps_lines_captured_from_a_real_engine():
    from enlaight_ops.compose import parse_docker_ps_output

    text = (Path(__file__).parent / "fixtures" / "docker-ps-one-shot-and-exit.tsv").read_text()
    states = {s.service: (s.state, s.health, s.exit_code) for s in parse_docker_ps_output(text)}
    assert states == {
        "app": ("running", "healthy", 0),
        "exits-one": ("exited", "", 1),
        "init-job": ("exited", "", 0),
    }
    starting = parse_docker_ps_output("db\tp-db-1\trunning\tUp 1 second (health: starting)\n")
    assert starting[0].health == "starting"
    looping = parse_docker_ps_output("api\tp-api-1\trestarting\tRestarting (2) 1 second ago\n")
    assert (looping[0].state, looping[0].exit_code) == ("restarting", 2)


def test_compose_errors_never_show_a_secret_from_the_env_files(tmp_path: Path):
    (tmp_path / ".env").write_text("MYSQL_ROOT_PASSWORD=Sup3rS3cretValue\nDEBUG=1\n")
    compose = Compose(load_settings({}, root=tmp_path))
    shown = compose.mask("error: mysqladmin -pSup3rS3cretValue failed; DEBUG=1")
    assert "Sup3rS3cretValue" not in shown and "DEBUG=1" in shown
