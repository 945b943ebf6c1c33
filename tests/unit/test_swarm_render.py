"""Rendering a Swarm stack file from captured `docker compose config --format json` (base + prod, with values
derived from env.sample: every __GENERATE__ replaced by sample-<KEY>). No daemon here; the contract test at the
end runs the real `docker stack config`, which needs only the CLI."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from enlaight_ops.errors import UsageError
from enlaight_ops.swarm import check, render
from enlaight_ops.swarm.durations import format_duration, parse_duration
from enlaight_ops.swarm.render import RenderOptions

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = json.loads((FIXTURES / "swarm-compose-config-prod.json").read_text())
INIT_FILE = CONFIG["configs"]["mysql-init"]["file"]
STATELESS = ("backend", "frontend")


def options(**kwargs) -> RenderOptions:
    values = {"stack": "enlaight", "registry": "registry.example:5000", "endpoint_mode": "vip",
              "file_contents": {INIT_FILE: b"#!/bin/sh\necho init\n"},
              "secret_dir": "/run/enlaight-secrets"}  # fmt: skip
    return RenderOptions(**{**values, **kwargs})


def rendered(**kwargs) -> render.Rendered:
    return render.render(copy.deepcopy(CONFIG), options(**kwargs))


def notes_about(result: render.Rendered, service: str) -> list[str]:
    return [note for note in result.notes if note.startswith(f"{service}: ")]


# ------------------------------------------------------------------ dropped and translated keys


def test_unsupported_keys_are_dropped_each_with_a_note() -> None:
    result = rendered()
    for name, service in result.stack["services"].items():
        for key in ("build", "container_name", "depends_on", "restart", "security_opt"):
            assert key not in service, (name, key)
        assert set(service) <= check.SUPPORTED_SERVICE_KEYS
    backend = notes_about(result, "backend")
    assert any("depends_on dropped, conditions too (mysql: service_healthy, redis: service_healthy)" in n
               for n in backend)  # fmt: skip
    assert any("security_opt dropped" in n for n in backend)
    assert "name" not in result.stack and not any(key.startswith("x-") for key in result.stack)


def test_built_images_point_at_the_registry_and_are_pushed_once() -> None:
    result = rendered()
    services = result.stack["services"]
    assert services["backend"]["image"] == "registry.example:5000/enlaight/backend:prod"
    # superset runs the image superset-init builds: it must come from the registry too.
    assert (
        services["superset"]["image"]
        == services["superset-init"]["image"]
        == ("registry.example:5000/enlaight/superset:4.1.2")
    )
    assert services["mysql"]["image"] == "mysql:8.4.3"  # pulled from its own registry
    assert [p.source for p in result.pushes] == ["enlaight/backend:prod", "enlaight/frontend:prod",
                                                 "enlaight/superset:4.1.2"]  # fmt: skip
    assert any(
        "build -> image registry.example:5000/enlaight/backend:prod" in n for n in notes_about(result, "backend")
    )


def test_local_only_images_go_to_the_registry_too() -> None:
    config = copy.deepcopy(CONFIG)
    config["services"]["mysql"]["image"] = "enlaight-local/mysql:mariadb-10.11"
    result = render.render(config, options())
    assert result.stack["services"]["mysql"]["image"] == "registry.example:5000/enlaight-local/mysql:mariadb-10.11"


def test_without_a_registry_built_images_keep_their_names_and_say_so() -> None:
    result = rendered(registry="")
    assert result.stack["services"]["backend"]["image"] == "enlaight/backend:prod"
    assert result.pushes == []
    assert any("no enlaight.registry" in n for n in notes_about(result, "backend"))


def test_render_leaves_the_parsed_config_alone() -> None:
    config = copy.deepcopy(CONFIG)
    render.render(config, options(replicas={"backend": 2}))
    assert config == CONFIG


def test_restart_becomes_a_restart_policy() -> None:
    services = rendered().stack["services"]
    assert services["backend"]["deploy"]["restart_policy"] == {"condition": "any"}
    assert services["superset-init"]["deploy"]["restart_policy"] == {"condition": "none"}  # a one-shot


def test_values_stay_interpolated_and_escaped_for_stack_deploy() -> None:
    services = rendered().stack["services"]
    assert services["backend"]["environment"]["ALLOWED_HOSTS"] == "localhost,127.0.0.1,backend"
    # compose config keeps $$ (a literal $), which is also what stack deploy wants: not $POSTGRES_USER of the shell.
    assert '"$$POSTGRES_USER"' in services["postgres"]["healthcheck"]["test"][1]


def test_cpus_become_strings_and_resources_stay() -> None:
    resources = rendered().stack["services"]["backend"]["deploy"]["resources"]
    assert resources["limits"] == {"cpus": "2", "memory": "1073741824"}
    assert resources["reservations"]["cpus"] == "0.5"


# ------------------------------------------------------------------ secrets


def test_secrets_only_where_the_image_reads_a_file_variable() -> None:
    result = rendered()
    services = result.stack["services"]
    mysql = services["mysql"]
    assert "MYSQL_ROOT_PASSWORD" not in mysql["environment"]
    assert mysql["environment"]["MYSQL_ROOT_PASSWORD_FILE"] == "/run/secrets/mysql_root_password"
    assert mysql["secrets"] == [{"source": "mysql_root_password", "target": "mysql_root_password"}]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    n8n = services["n8n"]["environment"]
    assert "N8N_ENCRYPTION_KEY" not in n8n and n8n["N8N_ENCRYPTION_KEY_FILE"] == "/run/secrets/n8n_encryption_key"
    assert "DB_POSTGRESDB_PASSWORD_FILE" in n8n
    # The backend and Superset read os.environ only: their secrets stay, and a note says why.
    assert services["backend"]["environment"]["SECRET_KEY"] == "sample-SECRET_KEY"
    assert "secrets" not in services["backend"]
    assert any("SECRET_KEY" in n and "no *_FILE support" in n for n in notes_about(result, "backend"))
    assert set(result.secret_files) == {"mysql_root_password", "postgres_password", "db_postgresdb_password",
                                        "n8n_encryption_key"}  # fmt: skip
    assert result.secret_files["mysql_root_password"] == "sample-MYSQL_ROOT_PASSWORD"
    assert result.stack["secrets"]["mysql_root_password"]["file"] == "/run/enlaight-secrets/mysql_root_password"


def test_secret_values_never_appear_in_notes() -> None:
    result = rendered()
    for value in result.secret_files.values():
        assert not any(value in note for note in result.notes)


def test_a_changed_secret_gets_a_new_name() -> None:
    config = copy.deepcopy(CONFIG)
    config["services"]["mysql"]["environment"]["MYSQL_ROOT_PASSWORD"] = "rotated"
    before = rendered().stack["secrets"]["mysql_root_password"]["name"]
    after = render.render(config, options()).stack["secrets"]["mysql_root_password"]["name"]
    assert before != after and after.startswith("enlaight_mysql_root_password-")


def test_a_dollar_in_a_secret_is_written_as_itself() -> None:
    config = copy.deepcopy(CONFIG)
    config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "a$$b"  # compose config's escaping
    assert render.render(config, options()).secret_files["postgres_password"] == "a$b"


# ------------------------------------------------------------------ configs


def test_config_names_carry_a_content_hash() -> None:
    first = rendered().stack["configs"]["mysql-init"]
    changed = rendered(file_contents={INIT_FILE: b"#!/bin/sh\necho changed\n"}).stack["configs"]["mysql-init"]
    assert first["file"] == INIT_FILE
    assert first["name"].startswith("enlaight_mysql-init-") and first["name"] != changed["name"]
    assert rendered().stack["configs"]["mysql-init"]["name"] == first["name"]  # same content, same name


def test_an_unreadable_config_file_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="config mysql-init: cannot read"):
        rendered(file_contents={})


# ------------------------------------------------------------------ update_config, stateful services


def test_every_service_rolls_back_a_failed_update_and_monitors_past_its_healthcheck() -> None:
    for name, service in rendered().stack["services"].items():
        update = service["deploy"]["update_config"]
        assert update["failure_action"] == "rollback", name
        health = CONFIG["services"][name].get("healthcheck")
        if health:
            window = parse_duration(health["interval"]) * health["retries"]
            assert parse_duration(update["monitor"]) > window, name


def test_stateless_services_start_first_stateful_stop_first() -> None:
    services = rendered().stack["services"]
    assert services["backend"]["deploy"]["update_config"]["order"] == "start-first"
    assert services["frontend"]["deploy"]["update_config"]["order"] == "start-first"
    for name in render.STATEFUL:
        assert services[name]["deploy"]["update_config"]["order"] == "stop-first", name


def test_stateful_services_run_one_replica_on_their_labelled_node() -> None:
    services = rendered(replicas={"backend": 3}).stack["services"]
    for name in ("mysql", "postgres", "redis", "n8n"):
        assert services[name]["deploy"]["replicas"] == 1
        assert services[name]["deploy"]["placement"]["constraints"] == [f"node.labels.enlaight.{name}==true"]
    # superset-init and superset share superset_home: both follow the label superset.
    assert services["superset-init"]["deploy"]["placement"]["constraints"] == ["node.labels.enlaight.superset==true"]
    assert services["backend"]["deploy"]["replicas"] == 3
    assert "placement" not in services["backend"]["deploy"] or not services["backend"]["deploy"]["placement"]


def test_a_stateful_service_cannot_be_scaled() -> None:
    with pytest.raises(UsageError, match="mysql keeps its data in a local volume: it runs exactly 1 replica"):
        rendered(replicas={"mysql": 2})


def test_replicas_of_an_unknown_service_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="--replicas names service nope"):
        rendered(replicas={"nope": 2})


def test_narrowing_keeps_only_what_the_services_use() -> None:
    result = rendered(only=("frontend", "backend", "mysql", "redis"))
    assert sorted(result.stack["services"]) == ["backend", "frontend", "mysql", "redis"]
    assert sorted(result.stack["volumes"]) == ["mysql_data", "redis_data"]
    assert set(result.secret_files) == {"mysql_root_password"}
    with pytest.raises(UsageError, match="unknown service nope"):
        rendered(only=("nope",))


# ------------------------------------------------------------------ endpoint mode and ports


def test_vip_mode_keeps_ingress_ports_and_drops_loopback_bound_ones() -> None:
    result = rendered(endpoint_mode="vip")
    services = result.stack["services"]
    assert services["frontend"]["ports"] == [{"target": 8080, "protocol": "tcp", "published": 8080, "mode": "ingress"}]
    assert "endpoint_mode" not in services["frontend"]["deploy"]
    # 127.0.0.1:8000 cannot be honoured by Swarm: publishing it would open it on every interface of every node.
    assert "ports" not in services["backend"]
    assert any("port 127.0.0.1:8000 dropped" in n for n in notes_about(result, "backend"))
    assert result.notes[0].startswith("endpoint mode vip")


def test_dnsrr_mode_uses_dns_round_robin_and_host_ports() -> None:
    result = rendered(endpoint_mode="dnsrr", mode_reason="no IPVS")
    services = result.stack["services"]
    assert all(s["deploy"]["endpoint_mode"] == "dnsrr" for s in services.values())
    assert services["frontend"]["ports"][0]["mode"] == "host"
    # A host port is held by the old task on its node: the new one could not start beside it.
    assert services["frontend"]["deploy"]["update_config"]["order"] == "stop-first"
    assert result.notes[0] == "endpoint mode dnsrr + host-mode ports (no IPVS)"


def test_networks_are_overlays_named_by_the_stack() -> None:
    networks = rendered().stack["networks"]
    assert networks == {"internal": {"driver": "overlay", "internal": True}, "public": {"driver": "overlay"}}


# ------------------------------------------------------------------ the lint


def test_lint_reports_what_stack_deploy_would_ignore_with_a_fix() -> None:
    findings = check.lint(CONFIG, registry="", endpoint_mode="dnsrr")
    lines = [f.line() for f in findings]
    security = next(f for f in findings if f.key == "security_opt")
    assert "backend" in security.service and "mysql" in security.service and "daemon.json" in security.fix
    assert any(f.key == "build" and "enlaight.registry" in f.fix for f in findings)
    assert any(f.key == "ports" and "127.0.0.1" in f.problem for f in findings)
    assert any(f.key == "endpoint mode" for f in findings)
    assert any("configs.mysql-init" in line and "hash" in line for line in lines)
    assert all(" - fix: " in line for line in lines)


def test_capacity_counts_replicas_and_one_start_first_task() -> None:
    stack = rendered(only=("frontend", "backend", "mysql", "redis"), replicas={"backend": 2}).stack
    two_cores = [(2_000_000_000, 8 * 2**30)]
    # 2 x 0.5 (backend) + 0.5 (mysql) + 0.1 + 0.1, plus one more backend during a start-first update: 2.2 > 2.
    (finding,) = check.capacity(stack, two_cores)
    assert "2.2 CPUs reserved" in finding.problem and "--no-reservations" in finding.fix
    assert check.capacity(stack, [(4_000_000_000, 8 * 2**30)]) == []


def test_required_labels() -> None:
    labels = check.required_labels(rendered().stack)
    assert labels["enlaight.mysql"] == ["mysql"]
    assert labels["enlaight.superset"] == ["superset", "superset-init"]


def test_durations() -> None:
    assert parse_duration("2m0s") == 120 and parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5
    assert parse_duration(2_000_000_000) == 2
    assert format_duration(20) == "20s" and format_duration(130) == "2m10s"
    with pytest.raises(ValueError):
        parse_duration("soon")


# ------------------------------------------------------------------ contract: the real CLI accepts the file


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (`docker stack config`, no daemon)")
@pytest.mark.parametrize("mode", ["vip", "dnsrr"])
def test_rendered_file_passes_docker_stack_config(tmp_path: Path, mode: str) -> None:
    from enlaight_ops.swarm.deploy import write_stack

    init = tmp_path / "01-databases.sh"
    init.write_text("#!/bin/sh\n")
    config = copy.deepcopy(CONFIG)
    config["configs"]["mysql-init"]["file"] = str(init)
    result = render.render(config, options(endpoint_mode=mode, file_contents={str(init): init.read_bytes()},
                                           secret_dir=str(tmp_path / "secrets"), replicas={"backend": 2}))  # fmt: skip
    write_stack(result, tmp_path / "stack.yml", tmp_path / "secrets")
    assert oct((tmp_path / "secrets").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "secrets" / "postgres_password").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "stack.yml").stat().st_mode & 0o777) == "0o600"  # backend secrets stay in its env
    checked = subprocess.run(["docker", "stack", "config", "--compose-file", str(tmp_path / "stack.yml")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "node.labels.enlaight.mysql==true" in checked.stdout
    assert 'pg_isready -U "$POSTGRES_USER"' in checked.stdout  # unescaped once, by stack deploy, not by us
