"""A Docker Swarm stack file from the merged compose config (pure: unit-tested with captured JSON).

Input: `docker compose config --format json` of base + prod (already interpolated from .env, `$$` still
escaped, which is also what a stack file wants). Output: the stack file as a dict, one note per dropped or
translated key, the secret values to write as files, and the images to push. The caller reads config files and
writes secret files; nothing here touches the engine or the disk.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from .check import SUPPORTED_SERVICE_KEYS, UNSUPPORTED, bound_to_one_address
from .durations import format_duration, parse_duration

# Services whose data lives in a local volume: one replica, pinned to the node labelled for it.
STATEFUL = ("mysql", "postgres", "redis", "n8n")
LABEL_PREFIX = "enlaight."  # node label enlaight.<service>=true

# Variables a service's image reads from VAR_FILE (so they can be Docker secrets), checked in the images:
# mysql's and postgres's entrypoints (official and images/*/docker-entrypoint.sh: file_env) and n8n's
# @n8n/config (`@Env` reads NAME_FILE). mysql's other passwords are read by backend/mysql/init/01-databases.sh
# from the environment only; the backend (Django settings) and Superset (superset_config.py) read os.environ
# only: those stay environment variables until their readers learn *_FILE.
FILE_VARIABLES: dict[str, tuple[str, ...]] = {
    "mysql": ("MYSQL_ROOT_PASSWORD",),
    "postgres": ("POSTGRES_PASSWORD",),
    "n8n": ("DB_POSTGRESDB_PASSWORD", "N8N_ENCRYPTION_KEY"),
}
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY", "TOKEN")

# swarm's restart_policy for compose's restart values.
RESTART_CONDITIONS = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
DEFAULT_MONITOR = 10.0  # seconds, for a service without healthcheck
HASH_LENGTH = 10
MAX_OBJECT_NAME = 64  # Docker's limit for config and secret names


@dataclass(frozen=True)
class RenderOptions:
    stack: str
    registry: str = ""  # "" = no registry: built images keep their local names
    endpoint_mode: str = "vip"  # vip | dnsrr
    mode_reason: str = ""
    replicas: Mapping[str, int] = field(default_factory=dict)
    file_contents: Mapping[str, bytes] = field(default_factory=dict)  # config file path -> content
    secret_dir: str = "secrets"  # noqa: S105 - a directory name, not a secret. Where the caller writes the secret files (the stack file names them)
    only: tuple[str, ...] = ()  # deploy just these services ("" = all); what they use comes along


@dataclass(frozen=True)
class ImagePush:
    source: str  # the image on this engine
    target: str  # its name in the registry


@dataclass
class Rendered:
    stack: dict[str, Any]
    notes: list[str]
    secret_files: dict[str, str]  # file name in secret_dir -> value (never printed)
    pushes: list[ImagePush]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def _object_name(stack: str, key: str, digest: str) -> str:
    name = f"{stack}_{key}-{digest}"
    if len(name) > MAX_OBJECT_NAME:
        raise UsageError(f"{name} is longer than Docker's {MAX_OBJECT_NAME} characters: use a shorter project name")
    return name


def registry_image(registry: str, image: str) -> str:
    return f"{registry.rstrip('/')}/{image}"


def local_only_images(services: Mapping[str, Any]) -> set[str]:
    """Images built here (by any service: superset runs the image superset-init builds) or registry-free local
    images: no other node can pull them from anywhere but enlaight.registry."""
    images = {str(s.get("image", "")) for s in services.values() if s.get("image")}
    built = {str(s.get("image")) for s in services.values() if s.get("build") and s.get("image")}
    return built | {image for image in images if image.startswith("enlaight-local/")}


def volume_labels(services: Mapping[str, Any]) -> dict[str, str]:
    """Named volume -> the node label that keeps it: its stateful service's, else its first long-running user's
    (superset_home is shared by superset and its one-shot init, so both go where the label `superset` is)."""
    users: dict[str, list[str]] = {}
    for name, service in sorted(services.items()):
        for mount in service.get("volumes") or []:
            if mount.get("type") == "volume" and mount.get("source"):
                users.setdefault(mount["source"], []).append(name)
    labels = {}
    for volume, names in users.items():
        stateful = [n for n in names if n in STATEFUL]
        lasting = [n for n in names if services[n].get("restart") != "no"]
        labels[volume] = (stateful or lasting or names)[0]
    return labels


def _monitor(service: Mapping[str, Any]) -> float:
    """Longer than the healthcheck's interval x retries: a task that turns unhealthy inside it fails the update."""
    health = service.get("healthcheck") or {}
    if health.get("disable") or not health.get("test"):
        return DEFAULT_MONITOR
    interval = parse_duration(health.get("interval")) or 30.0
    retries = int(health.get("retries") or 3)
    return max(DEFAULT_MONITOR, 2 * interval * retries)


def _cpus(value: Any) -> str:
    return f"{float(value):g}"


def _deploy(name: str, service: Mapping[str, Any], options: RenderOptions, notes: list[str], host_ports: bool,
            label: str | None) -> dict[str, Any]:  # fmt: skip
    deploy = {k: v for k, v in (service.get("deploy") or {}).items() if v not in (None, {}, [])}
    resources = deploy.get("resources") or {}
    for kind in ("limits", "reservations"):
        if resources.get(kind, {}).get("cpus") is not None:
            resources[kind] = {**resources[kind], "cpus": _cpus(resources[kind]["cpus"])}

    restart = service.get("restart")
    if restart:
        condition = RESTART_CONDITIONS.get(str(restart).split(":")[0], "any")
        deploy["restart_policy"] = {"condition": condition}
        notes.append(f"{name}: restart: {restart} -> deploy.restart_policy.condition: {condition}")

    if name in STATEFUL:
        wanted = options.replicas.get(name, 1)
        if wanted != 1:
            raise UsageError(f"{name} keeps its data in a local volume: it runs exactly 1 replica, not {wanted}")
    replicas = options.replicas.get(name, deploy.get("replicas", 1))
    deploy["replicas"] = replicas
    if label:
        constraint = f"node.labels.{LABEL_PREFIX}{label}==true"
        placement = dict(deploy.get("placement") or {})
        placement["constraints"] = sorted({*placement.get("constraints", []), constraint})
        deploy["placement"] = placement
        notes.append(f"{name}: its volume stays on one node: replicas {replicas}, placement {constraint} "
                     f"(`docker node update --label-add {LABEL_PREFIX}{label}=true NODE`)")  # fmt: skip

    # start-first runs the new task beside the old one: never for a database (two servers on one volume) nor
    # for host-mode ports (the new task cannot bind the port the old one holds on that node).
    one_shot = restart == "no"
    if name in STATEFUL or label or host_ports or one_shot:
        order = "stop-first"
        why = "its volume" if (name in STATEFUL or label) else "host-mode port" if host_ports else "one-shot"
    else:
        order, why = "start-first", "stateless"
    monitor = format_duration(_monitor(service))
    update = {"parallelism": 1, "order": order, "failure_action": "rollback", "monitor": monitor}
    deploy["update_config"] = update
    deploy["rollback_config"] = {"parallelism": 1, "order": order, "failure_action": "pause", "monitor": monitor}
    notes.append(f"{name}: update_config order {order} ({why}), failure_action rollback, monitor {monitor}")

    if options.endpoint_mode == "dnsrr":
        deploy["endpoint_mode"] = "dnsrr"
    return deploy


def _ports(name: str, service: Mapping[str, Any], options: RenderOptions, notes: list[str]) -> list[dict[str, Any]]:
    ports = []
    for port in service.get("ports") or []:
        host_ip = port.get("host_ip", "")
        if bound_to_one_address(host_ip):
            notes.append(f"{name}: port {host_ip}:{port.get('published')} dropped: swarm cannot publish on one "
                         "address (it would listen on every interface of every node)")  # fmt: skip
            continue
        published = port.get("published")
        rendered = {"target": int(port["target"]), "protocol": port.get("protocol", "tcp")}
        if published not in (None, ""):
            rendered["published"] = int(published) if str(published).isdigit() else published
        rendered["mode"] = "host" if options.endpoint_mode == "dnsrr" else "ingress"
        if options.endpoint_mode == "dnsrr":
            notes.append(f"{name}: port {published} published in host mode (on the node running the task)")
        ports.append(rendered)
    return ports


def _secrets(name: str, environment: dict[str, Any], options: RenderOptions, secrets: dict[str, Any],
             files: dict[str, str], notes: list[str]) -> list[dict[str, str]]:  # fmt: skip
    mounted = []
    for variable in FILE_VARIABLES.get(name, ()):
        value = environment.pop(variable, None)
        if value is None:
            continue
        key = variable.lower()
        # The file holds the real value: compose config prints $ as $$ (stack file syntax), a file has no syntax.
        plain = str(value).replace("$$", "$")
        secrets[key] = {"file": f"{options.secret_dir.rstrip('/')}/{key}",
                        "name": _object_name(options.stack, key, content_hash(plain.encode()))}  # fmt: skip
        files[key] = plain
        environment[f"{variable}_FILE"] = f"/run/secrets/{key}"
        mounted.append({"source": key, "target": key})
        notes.append(f"{name}: {variable} -> Docker secret {key} ({variable}_FILE)")
    left = sorted(k for k in environment if any(w in k for w in SECRET_WORDS) and not k.endswith("_FILE"))
    if left:
        notes.append(f"{name}: {', '.join(left)} stay environment variables: its image reads them from the "
                     "environment only (no *_FILE support)")  # fmt: skip
    return mounted


def select_services(config: Mapping[str, Any], only: tuple[str, ...]) -> dict[str, Any]:
    """`config` narrowed to `only` (all when empty), with the networks, volumes and configs they use."""
    services = config.get("services", {})
    unknown = sorted(set(only) - set(services))
    if unknown:
        raise UsageError(f"unknown service {', '.join(unknown)}: valid services are {', '.join(sorted(services))}")
    if not only:
        return dict(config)
    kept = {name: services[name] for name in only}
    used = {
        "networks": {n for s in kept.values() for n in (s.get("networks") or {})},
        "volumes": {m.get("source") for s in kept.values() for m in s.get("volumes") or []
                    if m.get("type") == "volume"},
        "configs": {c.get("source") for s in kept.values() for c in s.get("configs") or []},
    }  # fmt: skip
    narrowed = {**config, "services": kept}
    for kind, names in used.items():
        narrowed[kind] = {k: v for k, v in (config.get(kind) or {}).items() if k in names}
    return narrowed


def render(config: Mapping[str, Any], options: RenderOptions) -> Rendered:
    config = copy.deepcopy(select_services(config, options.only))  # the caller's parsed config stays as it was
    services = config.get("services", {})
    unknown = sorted(set(options.replicas) - set(services))
    if unknown:
        raise UsageError(f"--replicas names service {', '.join(unknown)}, which is not deployed: deployed are "
                         f"{', '.join(sorted(services))}")  # fmt: skip
    notes: list[str] = []
    if options.only:
        notes.append(f"only {', '.join(options.only)}: the other services are not deployed")
    if options.endpoint_mode == "dnsrr":
        notes.append(f"endpoint mode dnsrr + host-mode ports ({options.mode_reason or 'asked for'})")
    else:
        notes.append(f"endpoint mode vip + ingress ports ({options.mode_reason or 'asked for'})")
    secrets: dict[str, Any] = {}
    secret_files: dict[str, str] = {}
    pushes: list[ImagePush] = []
    labels = volume_labels(services)
    local_only = local_only_images(services)
    out_services: dict[str, Any] = {}

    for name, service in sorted(services.items()):
        out: dict[str, Any] = {}
        for key, value in service.items():
            if value is None or key in ("deploy", "ports", "environment", "networks", "configs"):
                continue
            if key in SUPPORTED_SERVICE_KEYS:
                out[key] = value
            elif key == "depends_on":
                conditions = ", ".join(
                    f"{d}: {v.get('condition', 'service_started')}" for d, v in sorted(value.items())
                )
                notes.append(f"{name}: depends_on dropped, conditions too ({conditions}): swarm starts services "
                             "together and restart_policy retries a task until what it needs is up")  # fmt: skip
            elif key in ("build", "restart"):
                pass  # translated below
            else:
                problem, _fix = UNSUPPORTED.get(key, ("not supported by stack deploy", ""))
                notes.append(f"{name}: {key} dropped ({problem})")

        image = str(service.get("image") or "")
        if image in local_only and options.registry:
            target = registry_image(options.registry, image)
            if ImagePush(image, target) not in pushes:
                pushes.append(ImagePush(image, target))
            out["image"] = target
            how = "build" if service.get("build") else "local image"
            notes.append(f"{name}: {how} -> image {target} (`invoke build --push` pushes it)")
        elif service.get("build"):
            notes.append(f"{name}: build dropped, image {image} is used as it is on each node (no enlaight.registry)")

        environment = dict(service.get("environment") or {})
        mounted = _secrets(name, environment, options, secrets, secret_files, notes)
        if environment:
            out["environment"] = environment
        if mounted:
            out["secrets"] = mounted
        if service.get("networks"):
            out["networks"] = sorted(service["networks"])
        if service.get("configs"):
            out["configs"] = [{k: v for k, v in c.items() if v is not None} for c in service["configs"]]
        volumes = [{k: v for k, v in m.items() if v not in (None, {})} for m in service.get("volumes") or []]
        if volumes:
            out["volumes"] = volumes
        ports = _ports(name, service, options, notes)
        if ports:
            out["ports"] = ports
        if "healthcheck" in out:
            out["healthcheck"] = {**out["healthcheck"], "test": [str(t) for t in out["healthcheck"].get("test", [])]}
        volume_label = next((labels[m["source"]] for m in volumes if m.get("type") == "volume"), None)
        out["deploy"] = _deploy(name, service, options, notes, host_ports=bool(ports) and options.endpoint_mode
                                == "dnsrr", label=volume_label)  # fmt: skip
        out_services[name] = dict(sorted(out.items()))

    stack: dict[str, Any] = {"version": "3.9", "services": out_services}
    networks = {}
    for key, network in sorted((config.get("networks") or {}).items()):
        rendered = {"driver": "overlay"}
        if network.get("internal"):
            rendered["internal"] = True
        networks[key] = rendered
    if networks:
        stack["networks"] = networks
        notes.append(f"networks {', '.join(networks)}: overlay, named <stack>_<network> by stack deploy")
    volumes = {key: {} for key in sorted(config.get("volumes") or {})}
    if volumes:
        stack["volumes"] = volumes
        notes.append(f"volumes {', '.join(volumes)}: local to the node that runs their service, named "
                     f"{options.stack}_<volume> (the compose project's names: one host keeps its data)")  # fmt: skip
    configs = {}
    for key, item in sorted((config.get("configs") or {}).items()):
        path = item.get("file")
        if path is None or path not in options.file_contents:
            raise UsageError(f"config {key}: cannot read its file {path}")
        digest = content_hash(options.file_contents[path])
        configs[key] = {"file": path, "name": _object_name(options.stack, key, digest)}
        notes.append(f"config {key}: named {configs[key]['name']} (content hash: a changed file rolls out)")
    if configs:
        stack["configs"] = configs
    if secrets:
        stack["secrets"] = secrets
    return Rendered(stack=stack, notes=notes, secret_files=secret_files, pushes=pushes)
