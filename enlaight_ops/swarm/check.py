"""What in the merged compose config would not survive `docker stack deploy`, each with its fix (pure).

`docker stack deploy` reads the compose model but ignores or rejects part of it (build, container_name,
depends_on conditions, restart, security_opt, host-bound ports), and configs/secrets are immutable. This module
is the one table of that knowledge: `lint` turns a config into findings for `invoke swarm.check`, and render.py
uses the same table for the keys it drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Service keys a stack file (compose file format 3.x, which `docker stack` reads) supports.
SUPPORTED_SERVICE_KEYS = frozenset({
    "cap_add", "cap_drop", "command", "configs", "credential_spec", "deploy", "dns", "dns_search", "domainname",
    "entrypoint", "environment", "expose", "extra_hosts", "healthcheck", "hostname", "image", "init", "isolation",
    "labels", "logging", "networks", "ports", "read_only", "secrets", "stdin_open", "stop_grace_period",
    "stop_signal", "sysctls", "tmpfs", "tty", "ulimits", "user", "volumes", "working_dir",
})  # fmt: skip

# Keys render translates (it says how in its notes); everything else unsupported is dropped.
TRANSLATED_KEYS = frozenset({"build", "restart"})

# key -> (what stack deploy does with it, the fix). Keys not listed get a generic line.
UNSUPPORTED: dict[str, tuple[str, str]] = {
    "build": (
        "stack deploy cannot build",
        "render points the service at its image in enlaight.registry; push it with `invoke build --push`",
    ),
    "container_name": ("ignored: swarm names tasks <stack>_<service>.<n>", "drop it; address the service by name"),
    "depends_on": (
        "ignored, conditions included: swarm starts every service at once",
        "make the service wait for what it needs (the backend's entrypoint waits for MySQL) and let "
        "restart_policy retry it",
    ),
    "restart": ("ignored: swarm reads deploy.restart_policy", "render translates it to deploy.restart_policy"),
    "security_opt": (
        "ignored: swarm services cannot set it",
        'set it daemon-wide on every node ("no-new-privileges": true in /etc/docker/daemon.json)',
    ),
    "env_file": ("not needed", "compose config already merged it into environment"),
    "profiles": ("ignored", "render only the services you deploy"),
    "pull_policy": ("ignored", "swarm pulls on every node that runs a task"),
    "privileged": ("not supported by swarm services", "drop it, or add the capabilities with cap_add"),
    "network_mode": ("not supported by swarm services", "use overlay networks"),
    "devices": ("not supported by swarm services", "drop it"),
    "links": ("not supported", "use service names on a shared network"),
    "external_links": ("not supported", "use service names on a shared network"),
    "mem_limit": ("ignored", "use deploy.resources.limits.memory"),
    "cpus": ("ignored", "use deploy.resources.limits.cpus"),
}


@dataclass(frozen=True)
class Finding:
    service: str  # "" for the stack as a whole
    key: str
    problem: str
    fix: str
    severity: str = "warning"  # info | warning | error

    def line(self) -> str:
        where = f"{self.service}: {self.key}" if self.service else self.key
        return f"{where}: {self.problem} - fix: {self.fix}"


ALL_INTERFACES = ("0.0.0.0", "::")  # noqa: S104 - what Swarm can publish on, compared against, not bound


def bound_to_one_address(host_ip: str) -> bool:
    return bool(host_ip) and host_ip not in ALL_INTERFACES


def lint(config: Mapping[str, Any], *, registry: str = "", endpoint_mode: str = "vip") -> list[Finding]:
    """Findings for every service of a `docker compose config --format json` document."""
    findings: list[Finding] = []
    for name, service in sorted(config.get("services", {}).items()):
        for key, value in sorted(service.items()):
            if value is None or key in SUPPORTED_SERVICE_KEYS:
                continue
            if key == "build" and not registry:
                findings.append(Finding(name, key, "stack deploy cannot build and no registry is set: only a node "
                                        "that built the image can run it", "set enlaight.registry (e.g. "
                                        "registry.example:5000) and run `invoke build --push`", "warning"))  # fmt: skip
                continue
            if key == "depends_on":
                conditions = ", ".join(
                    f"{dep}: {v.get('condition', 'service_started')}" for dep, v in sorted(value.items())
                )
                problem, fix = UNSUPPORTED[key]
                findings.append(Finding(name, key, f"{problem} ({conditions})", fix, "info"))
                continue
            problem, fix = UNSUPPORTED.get(key, ("not supported by stack deploy", "drop it"))
            findings.append(Finding(name, key, problem, fix, "info" if key in TRANSLATED_KEYS else "warning"))
        for port in service.get("ports") or []:
            if bound_to_one_address(port.get("host_ip", "")):
                findings.append(Finding(name, "ports", f"published on {port['host_ip']} only: swarm cannot bind an "
                                        "address and would publish it on every interface of every node",
                                        "render leaves it unpublished; reach it through the front end or a proxy, "
                                        "or set its *_BIND_ADDRESS to 0.0.0.0 to publish it", "warning"))  # fmt: skip
        for mount in service.get("volumes") or []:
            if mount.get("type") == "bind":
                findings.append(Finding(name, "volumes", f"bind mount {mount.get('source')}: the path must exist on "
                                        "every node that may run the service", "use a named volume or a config",
                                        "warning"))  # fmt: skip
        image = str(service.get("image", ""))
        if image.startswith("enlaight-local/") and not registry:
            fix = "set enlaight.registry and run `invoke build --push`: it pushes the local images too"
            findings.append(Finding(name, "image", f"{image} exists only on this engine", fix, "warning"))
    for key in sorted(config.get("configs", {})):
        fix = "render names it with a hash of its content, so a change rolls out"
        findings.append(
            Finding("", f"configs.{key}", "configs are immutable: deploying a changed file fails", fix, "info")
        )
    if endpoint_mode == "dnsrr":
        findings.append(Finding("", "endpoint mode", "this engine has no IPVS: service VIPs and the ingress routing "
                                "mesh do not work", "render uses endpoint_mode dnsrr and host-mode published ports "
                                "(reach the front end on the node that runs it)", "info"))  # fmt: skip
    return _grouped(findings)


def _grouped(findings: list[Finding]) -> list[Finding]:
    """One finding per problem, naming every service it concerns (security_opt is on all of them)."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for f in findings:
        groups.setdefault((f.key, f.problem, f.fix, f.severity), []).append(f.service)
    return [Finding(", ".join(s for s in services if s), key, problem, fix, severity)
            for (key, problem, fix, severity), services in groups.items()]  # fmt: skip


def _reserved(service: Mapping[str, Any]) -> tuple[float, int]:
    reservations = (service.get("deploy") or {}).get("resources", {}).get("reservations") or {}
    return float(reservations.get("cpus") or 0), int(reservations.get("memory") or 0)


def capacity(stack: Mapping[str, Any], node_resources: list[tuple[int, int]]) -> list[Finding]:
    """An error when the stack's reservations (replicas x reservations, plus one extra task of the largest
    start-first service, which runs beside the old one during an update) exceed the nodes' CPUs or memory:
    Swarm would leave tasks pending ("no suitable node (insufficient resources)") and an update stuck.

    `node_resources`: (NanoCPUs, MemoryBytes) of every node that can take tasks."""
    cpus = sum(n for n, _m in node_resources) / 1e9
    memory = sum(m for _n, m in node_resources)
    need_cpus = need_memory = 0.0
    extra_cpus = extra_memory = 0.0
    for service in stack.get("services", {}).values():
        deploy = service.get("deploy") or {}
        task_cpus, task_memory = _reserved(service)
        replicas = int(deploy.get("replicas", 1))
        need_cpus += replicas * task_cpus
        need_memory += replicas * task_memory
        if (deploy.get("update_config") or {}).get("order") == "start-first":
            extra_cpus, extra_memory = max(extra_cpus, task_cpus), max(extra_memory, task_memory)
    problems = []
    if cpus and need_cpus + extra_cpus > cpus + 1e-9:
        problems.append(f"{need_cpus + extra_cpus:g} CPUs reserved (with one start-first update task) but the "
                        f"swarm has {cpus:g}")  # fmt: skip
    if memory and need_memory + extra_memory > memory:
        problems.append(f"{(need_memory + extra_memory) / 2**20:.0f} MiB reserved but the swarm has "
                        f"{memory / 2**20:.0f} MiB")  # fmt: skip
    return [Finding("", "resources", "; ".join(problems) + ": tasks would stay pending",
                    "add a node, lower --replicas, or deploy with --no-reservations (limits stay)", "error")
            ] if problems else []  # fmt: skip


def required_labels(stack: Mapping[str, Any]) -> dict[str, list[str]]:
    """node label -> services whose placement requires it (node.labels.X==true)."""
    needed: dict[str, list[str]] = {}
    for name, service in sorted(stack.get("services", {}).items()):
        for constraint in (service.get("deploy") or {}).get("placement", {}).get("constraints", []):
            if constraint.startswith("node.labels.") and constraint.endswith("==true"):
                needed.setdefault(constraint[len("node.labels.") : -len("==true")], []).append(name)
    return needed
