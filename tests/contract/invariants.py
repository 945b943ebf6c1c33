"""The rules our compose files must keep, as pure checks over `docker compose config --format json`.

Each check returns the list of violations (empty when the rule holds), so a test can show both that the
real files pass and that a file with the rule broken is caught.
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]

DATABASE_SERVICES = ("mysql", "postgres", "redis")
# Where each stateful service keeps its state; each must be a named volume, never a container layer.
STATEFUL_PATHS = {
    "mysql": "/var/lib/mysql",
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "n8n": "/home/node/.n8n",
    "superset": "/app/superset_home",
}


def one_shots(config: Config) -> set[str]:
    names = set()
    for service in config["services"].values():
        for dep, spec in (service.get("depends_on") or {}).items():
            if spec.get("condition") == "service_completed_successfully":
                names.add(dep)
    return names


def long_running(config: Config) -> list[str]:
    return sorted(set(config["services"]) - one_shots(config))


def missing_healthchecks(config: Config) -> list[str]:
    bad = []
    for name in long_running(config):
        check = config["services"][name].get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check["test"][0] == "NONE":
            bad.append(f"{name}: no healthcheck")
    return bad


def unconditional_dependencies(config: Config) -> list[str]:
    allowed = {"service_healthy", "service_completed_successfully"}
    return [
        f"{name} -> {dep}: condition {spec.get('condition')}"
        for name, service in config["services"].items()
        for dep, spec in (service.get("depends_on") or {}).items()
        if spec.get("condition") not in allowed
    ]


def fixed_container_names(config: Config) -> list[str]:
    return [f"{name}: container_name set" for name, s in config["services"].items() if s.get("container_name")]


def missing_prod_limits(config: Config) -> list[str]:
    bad = []
    for name, service in config["services"].items():
        resources = (service.get("deploy") or {}).get("resources") or {}
        for kind in ("limits", "reservations"):
            for key in ("cpus", "memory"):
                if not (resources.get(kind) or {}).get(key):
                    bad.append(f"{name}: no {kind}.{key}")
    return bad


def missing_prod_hardening(config: Config) -> list[str]:
    bad = []
    shots = one_shots(config)
    for name, service in config["services"].items():
        if name not in shots and service.get("restart") not in ("always", "unless-stopped", "on-failure"):
            bad.append(f"{name}: no restart policy")
        if "no-new-privileges:true" not in (service.get("security_opt") or []):
            bad.append(f"{name}: no no-new-privileges")
        options = (service.get("logging") or {}).get("options") or {}
        if not options.get("max-size") or not options.get("max-file"):
            bad.append(f"{name}: logs not rotated")
    return bad


def bind_mounts(config: Config) -> list[str]:
    return [
        f"{name}: bind mount {v.get('source')} -> {v.get('target')}"
        for name, service in config["services"].items()
        for v in service.get("volumes") or []
        if v.get("type") == "bind"
    ]


def published_database_ports(config: Config) -> list[str]:
    return [
        f"{name}: publishes {p.get('published')}"
        for name in DATABASE_SERVICES
        for p in config["services"][name].get("ports") or []
    ]


def missing_state_volumes(config: Config) -> list[str]:
    bad = []
    for name, path in STATEFUL_PATHS.items():
        mounts = config["services"][name].get("volumes") or []
        if not any(v.get("type") == "volume" and v.get("target") == path for v in mounts):
            bad.append(f"{name}: {path} is not on a named volume")
    return bad


def hot_reload_mounts(config: Config) -> list[str]:
    """Development must mount the sources the dev servers watch."""
    wanted = {"backend": "/app", "frontend": "/app/src"}
    bad = []
    for name, target in wanted.items():
        mounts = config["services"][name].get("volumes") or []
        if not any(v.get("type") == "bind" and v.get("target") == target for v in mounts):
            bad.append(f"{name}: no source mount on {target}")
    return bad


def published_on_all_interfaces(config: Config) -> list[str]:
    """Services with a host port bound to every interface (no host_ip, or 0.0.0.0 / ::)."""
    return sorted(
        name
        for name, service in config["services"].items()
        if any(p.get("host_ip", "") in ("", "0.0.0.0", "::") for p in service.get("ports") or [])
    )


def runs_as_root(service: dict) -> bool:
    """A service whose `user` is unset (the image's default, root for most) or names uid 0 / root."""
    user = str(service.get("user", "")).split(":")[0]
    return user in ("", "0", "root")
