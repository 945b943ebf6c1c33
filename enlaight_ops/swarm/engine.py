"""Everything the swarm tasks ask of the engine: swarm and node state, IPVS, deploy, tasks, logs, push, rm.

Every command is an argv list through runner.run; parsing and deciding happen in status.py and render.py.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CommandFailed, UsageError
from ..runner import run
from .status import STACK_LABEL, ServiceState, Task, parse_services, parse_tasks


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str
    state: str
    availability: str
    labels: dict[str, str]
    nano_cpus: int
    memory_bytes: int


# -- IPVS: can this engine's kernel do service VIPs and the ingress routing mesh? ---------------------------------


def detect_ipvs(proc: Path = Path("/proc"), sys_dir: Path = Path("/sys"), modules: Path = Path("/lib/modules"),
                docker_host: str | None = None) -> tuple[bool | None, str]:  # fmt: skip
    """(available, why). None when the engine is not local (its kernel cannot be read from here).

    Swarm's VIPs and ingress are IPVS: loaded (/proc/net/ip_vs), built in or loadable (dockerd modprobes it),
    or absent (kernel config says `CONFIG_IP_VS is not set`, or no module anywhere)."""
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if host and not host.startswith("unix://"):
        return None, f"the engine is remote ({host}): its kernel cannot be checked from here"
    if (proc / "net/ip_vs").exists() or (sys_dir / "module/ip_vs").exists():
        return True, "IPVS is loaded (/proc/net/ip_vs)"
    release = platform.release()
    module_dir = modules / release
    if module_dir.is_dir():
        builtin = module_dir / "modules.builtin"
        if builtin.is_file() and "ip_vs.ko" in builtin.read_text(errors="replace"):
            return True, "IPVS is built into the kernel"
        if any(module_dir.rglob("ip_vs.ko*")):
            return True, f"the ip_vs module is available in {module_dir}"
    config = proc / "config.gz"
    if config.is_file():
        text = gzip.decompress(config.read_bytes()).decode(errors="replace")
        if "CONFIG_IP_VS=y" in text or "CONFIG_IP_VS=m" in text:
            return True, "the kernel config enables IPVS"
        return False, "no IPVS in this kernel (CONFIG_IP_VS is not set)"
    return False, "no IPVS: /proc/net/ip_vs is absent and no ip_vs module is installed"


def choose_endpoint_mode(wanted: str) -> tuple[str, str]:
    """(mode, reason) for `wanted` auto | vip | dnsrr."""
    if wanted in ("vip", "dnsrr"):
        return wanted, "asked for with --endpoint-mode"
    if wanted != "auto":
        raise UsageError(f"unknown endpoint mode {wanted!r}: use auto, vip or dnsrr")
    available, why = detect_ipvs()
    if available is None:
        return "vip", f"{why}; vip is Swarm's default (--endpoint-mode dnsrr if published ports refuse connections)"
    return ("vip" if available else "dnsrr"), why


# -- swarm and nodes ----------------------------------------------------------------------------------------------


def swarm_info() -> dict[str, Any]:
    return json.loads(run(["docker", "info", "--format", "{{json .Swarm}}"], what="docker info").stdout or "{}")


def require_manager() -> None:
    info = swarm_info()
    if info.get("LocalNodeState") != "active":
        raise UsageError("this engine is not part of a swarm: run `docker swarm init --advertise-addr ADDRESS` "
                         "(or `docker swarm join`) first")  # fmt: skip
    if not info.get("ControlAvailable"):
        raise UsageError("this engine is a swarm worker: run the task against a manager (DOCKER_HOST or a context)")


def nodes() -> list[Node]:
    ids = run(["docker", "node", "ls", "--quiet"], what="docker node ls").stdout.split()
    if not ids:
        return []
    found = json.loads(run(["docker", "node", "inspect", *ids], what="docker node inspect").stdout)
    return [
        Node(id=n["ID"], hostname=n.get("Description", {}).get("Hostname", ""),
             role=n.get("Spec", {}).get("Role", ""), state=n.get("Status", {}).get("State", ""),
             availability=n.get("Spec", {}).get("Availability", ""), labels=n.get("Spec", {}).get("Labels") or {},
             nano_cpus=n.get("Description", {}).get("Resources", {}).get("NanoCPUs", 0),
             memory_bytes=n.get("Description", {}).get("Resources", {}).get("MemoryBytes", 0))
        for n in found
    ]  # fmt: skip


def add_node_label(node: Node, label: str) -> None:
    run(["docker", "node", "update", "--label-add", f"{label}=true", node.id], what="docker node update")


# -- deploy and state ---------------------------------------------------------------------------------------------


def deploy(stack_file: Path, stack: str) -> str:
    """`docker stack deploy`; returns its output. --resolve-image always: a tag pushed again rolls out."""
    argv = ["docker", "stack", "deploy", "--resolve-image", "always", "--compose-file", str(stack_file), stack]
    if _supports_detach():
        argv.insert(3, "--detach=true")  # we wait ourselves, with diagnostics
    result = run(argv, what="docker stack deploy")
    return (result.stdout + result.stderr).strip()


def _supports_detach() -> bool:
    return "--detach" in run(["docker", "stack", "deploy", "--help"], check=False).stdout


def service_ids(stack: str) -> list[str]:
    argv = ["docker", "service", "ls", "--quiet", "--filter", f"label={STACK_LABEL}={stack}"]
    return run(argv, what="docker service ls").stdout.split()


def services(stack: str) -> list[ServiceState]:
    ids = service_ids(stack)
    if not ids:
        return []
    # A service removed between the two calls makes inspect fail: the next poll sees the new list.
    inspected = run(["docker", "service", "inspect", *ids], check=False, what="docker service inspect")
    if not inspected.ok:
        return []
    return parse_services(json.loads(inspected.stdout), tasks(ids, stack), stack)


def tasks(ids: list[str], stack: str) -> list[Task]:
    result = run(["docker", "service", "ps", "--no-trunc", "--format", "json", *ids], check=False,
                 what="docker service ps")  # fmt: skip
    return parse_tasks(result.stdout, stack) if result.ok else []


def task_logs(task_id: str, tail: int = 30) -> str:
    result = run(["docker", "service", "logs", "--no-task-ids", "--tail", str(tail), task_id], check=False,
                 what="docker service logs")  # fmt: skip
    return (result.stdout + result.stderr).strip()


def stack_objects(kind: str, stack: str) -> list[str]:
    """Names of the stack's configs or secrets (kind: config | secret)."""
    argv = ["docker", kind, "ls", "--filter", f"label={STACK_LABEL}={stack}", "--format", "{{.Name}}"]
    return run(argv, what=f"docker {kind} ls").stdout.split()


def remove_unused(kind: str, names: list[str]) -> list[str]:
    """Remove old config/secret versions; one still used by a task is refused by Docker and stays."""
    removed = []
    for name in names:
        if run(["docker", kind, "rm", name], check=False).ok:
            removed.append(name)
    return removed


def push(source: str, target: str) -> None:
    run(["docker", "tag", source, target], what="docker tag")
    try:
        run(["docker", "push", "--quiet", target], what=f"docker push {target}")
    except CommandFailed as exc:
        raise CommandFailed(f"{exc} - is the registry running and reachable from this engine? (enlaight.registry)",
                            exc.exit_code) from None  # fmt: skip


def stack_volumes(stack: str) -> list[str]:
    argv = ["docker", "volume", "ls", "--quiet", "--filter", f"label={STACK_LABEL}={stack}"]
    return run(argv, what="docker volume ls").stdout.split()


def stack_containers(stack: str) -> list[str]:
    argv = ["docker", "ps", "--all", "--quiet", "--filter", f"label={STACK_LABEL}={stack}"]
    return run(argv, what="docker ps").stdout.split()


def stack_networks(stack: str) -> list[str]:
    argv = ["docker", "network", "ls", "--quiet", "--filter", f"label={STACK_LABEL}={stack}"]
    return run(argv, what="docker network ls").stdout.split()
