"""Contract tests: the merged dev and prod configurations keep the stack's invariants.

They run the real Compose v2 binary (`config` needs no daemon) and read its JSON, so what is checked is what
Docker would run, after merging, interpolation and YAML anchors.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import invariants as inv

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = {"dev": "docker-compose.override.yml", "prod": "docker-compose.prod.yml"}


def compose_config(
    compose_argv,
    env: str,
    *extra_files: Path,
    env_overrides: dict | None = None,
    env_file: Path = ROOT / "env.sample",
    check: bool = True,
):
    argv = [
        *compose_argv,
        "--project-name",
        "contract",
        "--project-directory",
        str(ROOT),
        "--file",
        str(ROOT / "docker-compose.yml"),
        "--file",
        str(ROOT / OVERLAYS[env]),
    ]
    for extra in extra_files:
        argv += ["--file", str(extra)]
    argv += ["--env-file", str(env_file), "config", "--format", "json"]
    # A clean environment: values from the developer's shell must not leak into what is checked.
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env_overrides or {})},
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return result


@pytest.fixture(scope="module", params=["dev", "prod"])
def env_config(request, compose_argv):
    return request.param, compose_config(compose_argv, request.param)


@pytest.fixture(scope="module")
def prod_config(compose_argv):
    return compose_config(compose_argv, "prod")


@pytest.fixture(scope="module")
def dev_config(compose_argv):
    return compose_config(compose_argv, "dev")


def test_every_platform_service_is_defined(env_config):
    env, config = env_config
    assert set(config["services"]) == {
        "frontend",
        "backend",
        "mysql",
        "postgres",
        "redis",
        "n8n",
        "superset",
        "superset-init",
    } | ({"smtp"} if env == "dev" else set())


def test_every_long_running_service_has_a_healthcheck(env_config):
    _, config = env_config
    assert inv.missing_healthchecks(config) == []
    assert inv.one_shots(config) == {"superset-init"}


def test_every_dependency_waits_on_a_condition(env_config):
    assert inv.unconditional_dependencies(env_config[1]) == []


def test_no_fixed_container_names(env_config):
    assert inv.fixed_container_names(env_config[1]) == []


def test_every_stateful_service_keeps_state_on_a_named_volume(env_config):
    assert inv.missing_state_volumes(env_config[1]) == []


def test_networks_split_databases_from_public(env_config):
    env, config = env_config
    services = config["services"]
    for db in inv.DATABASE_SERVICES:
        assert list(services[db]["networks"]) == ["internal"]
    for public in ("frontend", "smtp"):
        assert public not in services or "internal" not in services[public]["networks"]
    assert config["networks"]["internal"].get("internal", False) is (env == "prod")


def test_prod_limits_every_service(prod_config):
    assert inv.missing_prod_limits(prod_config) == []


def test_prod_hardens_every_service(prod_config):
    assert inv.missing_prod_hardening(prod_config) == []


def test_prod_has_no_source_mounts_and_no_database_ports(prod_config):
    assert inv.bind_mounts(prod_config) == []
    assert inv.published_database_ports(prod_config) == []


def test_prod_runs_production_targets(prod_config):
    services = prod_config["services"]
    assert services["backend"]["build"]["target"] == "prod"
    assert services["frontend"]["build"]["target"] == "prod"
    assert services["backend"]["environment"]["DEBUG"] == "0"


def test_dev_mounts_sources_for_hot_reload(dev_config):
    assert inv.hot_reload_mounts(dev_config) == []
    services = dev_config["services"]
    assert services["backend"]["build"]["target"] == "dev"
    assert services["frontend"]["build"]["target"] == "dev"
    assert services["frontend"]["environment"]["CHOKIDAR_USEPOLLING"] == "true"


def test_dev_publishes_database_ports_on_loopback_only(dev_config):
    published = inv.published_database_ports(dev_config)
    assert len(published) == 3
    for db in inv.DATABASE_SERVICES:
        for port in dev_config["services"][db]["ports"]:
            assert port["host_ip"] == "127.0.0.1"


IMAGE_VARIABLES = {
    "mysql": "MYSQL_IMAGE",
    "postgres": "POSTGRES_IMAGE",
    "redis": "REDIS_IMAGE",
    "n8n": "N8N_IMAGE",
    "smtp": "SMTP_IMAGE",
}
BUILD_ARGS = {
    "backend": ["PYTHON_IMAGE"],
    "frontend": ["NODE_IMAGE", "NGINX_IMAGE"],
    "superset-init": ["SUPERSET_IMAGE"],
}


def test_default_third_party_images_are_pinned(env_config):
    for name, service in env_config[1]["services"].items():
        image = service["image"]
        if image.startswith("enlaight/"):
            continue  # built here from pinned bases (see test_dockerfile_bases_come_from_build_args)
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: tag {tag} names no version"


def test_every_image_can_be_overridden(compose_argv):
    overrides = {var: f"mirror.example/{svc}:1" for svc, var in IMAGE_VARIABLES.items()}
    overrides |= {arg: f"mirror.example/{arg.lower()}:1" for args in BUILD_ARGS.values() for arg in args}
    for env in OVERLAYS:
        services = compose_config(compose_argv, env, env_overrides=overrides)["services"]
        for svc, var in IMAGE_VARIABLES.items():
            if svc in services:  # the SMTP sink is a development service
                assert services[svc]["image"] == overrides[var]
        for svc, args in BUILD_ARGS.items():
            for arg in args:
                assert services[svc]["build"]["args"][arg] == overrides[arg]


@pytest.mark.parametrize("dockerfile", ["backend/Dockerfile", "frontend/Dockerfile", "superset/Dockerfile"])
def test_dockerfile_bases_come_from_build_args(dockerfile):
    text = (ROOT / dockerfile).read_text()
    args = set(re.findall(r"^ARG\s+([A-Z_]+_IMAGE)=", text, re.M))
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    assert args, f"{dockerfile} declares no *_IMAGE build argument"
    earlier: set[str] = set()
    for base, name in stages:
        from_argument = re.fullmatch(r"\$\{([A-Z_]+)\}", base)
        assert (from_argument and from_argument.group(1) in args) or base in earlier, (
            f"{dockerfile}: FROM {base} is neither a declared *_IMAGE argument nor an earlier stage"
        )
        earlier.add(name)


def test_files_have_no_version_key():
    for name in ("docker-compose.yml", *OVERLAYS.values()):
        assert not re.search(r"^version\s*:", (ROOT / name).read_text(), re.M), name


def test_files_match_the_compose_spec_schema():
    files = [str(ROOT / n) for n in ("docker-compose.yml", *OVERLAYS.values())]
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_required_value_fails_fast(compose_argv, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text(
        "\n".join(line for line in (ROOT / "env.sample").read_text().splitlines() if not line.startswith("SECRET_KEY="))
    )
    result = compose_config(compose_argv, "dev", env_file=env_file, check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_superset_gets_its_guest_token_secret_and_the_read_only_user_is_wired(env_config):
    services = env_config[1]["services"]
    for name in ("superset", "superset-init"):
        environment = services[name]["environment"]
        assert environment["GUEST_TOKEN_JWT_SECRET"] and environment["SUPERSET_CORS_ORIGINS"], name
    mysql = services["mysql"]["environment"]
    assert mysql["SUPERSET_RO_DB_USER"] == "superset_ro" and mysql["SUPERSET_RO_DB_PASSWORD"]


def test_superset_without_a_guest_token_secret_fails_fast(compose_argv, tmp_path):
    """Superset's built-in default is public: no value must stop the stack, not fall back to it."""
    env_file = tmp_path / "env"
    env_file.write_text(
        "\n".join(
            line
            for line in (ROOT / "env.sample").read_text().splitlines()
            if not line.startswith("GUEST_TOKEN_JWT_SECRET=")
        )
    )
    result = compose_config(compose_argv, "prod", env_file=env_file, check=False)
    assert result.returncode != 0
    assert "GUEST_TOKEN_JWT_SECRET" in result.stderr


# -- the checks catch a broken file: remove a rule with Compose's !reset and watch it fail ------------------------


def _mutation(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mutation.yml"
    path.write_text(text)
    return path


def test_removing_a_healthcheck_is_caught(compose_argv, tmp_path):
    broken = _mutation(tmp_path, "services:\n  backend:\n    healthcheck: !reset null\n")
    for env in OVERLAYS:
        config = compose_config(compose_argv, env, broken)
        assert inv.missing_healthchecks(config) == ["backend: no healthcheck"]


def test_removing_a_prod_limit_is_caught(compose_argv, tmp_path):
    broken = _mutation(tmp_path, "services:\n  mysql:\n    deploy: !reset {}\n")
    config = compose_config(compose_argv, "prod", broken)
    assert "mysql: no limits.memory" in inv.missing_prod_limits(config)
    assert "mysql: no limits.cpus" in inv.missing_prod_limits(config)


def test_a_source_mount_in_prod_is_caught(compose_argv, tmp_path):
    broken = _mutation(tmp_path, "services:\n  backend:\n    volumes: ['./backend:/app']\n")
    config = compose_config(compose_argv, "prod", broken)
    assert inv.bind_mounts(config) == [f"backend: bind mount {ROOT / 'backend'} -> /app"]


def test_prod_listens_on_every_interface_only_for_the_front_end(prod_config):
    assert inv.published_on_all_interfaces(prod_config) == ["frontend"]
    admin_ports = {name: [p["host_ip"] for p in prod_config["services"][name]["ports"]]
                   for name in ("backend", "n8n", "superset")}  # fmt: skip
    assert admin_ports == {"backend": ["127.0.0.1"], "n8n": ["127.0.0.1"], "superset": ["127.0.0.1"]}


def test_prod_has_no_smtp_sink_and_the_dev_sink_is_not_root(prod_config, compose_argv):
    assert "smtp" not in prod_config["services"]
    dev = compose_config(compose_argv, "dev")
    assert inv.runs_as_root(dev["services"]["smtp"]) is False
    assert inv.runs_as_root({"image": "rnwood/smtp4dev:3.6.1"}) is True  # no user: root, which the contract refuses
