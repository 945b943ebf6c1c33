"""The stack on a single-node Docker Swarm, deployed from the same compose files through `invoke swarm.*`.

The engine joins a swarm of its own for this module (`docker swarm init --advertise-addr 127.0.0.1`) and leaves it
in a finally; an engine already in a swarm is not touched (the module skips). A registry-free registry image
(Debian's docker-registry) runs on a free loopback port; `invoke build --push` pushes to it and the swarm pulls from
it. This kernel has no IPVS, so the deploy runs in the dnsrr + host-mode ports world, which is what is tested for
real here (the VIP world is covered by rendering, tests/unit/test_swarm_render.py).

Narrowed to the core (frontend, backend, mysql, redis): the backend's ready endpoint needs only MySQL and Redis;
n8n (1.5 GB) and Superset (1 GB) would be pushed to the registry and take minutes to start; PostgreSQL only
serves n8n. `--no-reservations`: the prod reservations (2 backends x 0.5 CPU + MySQL 0.5 + ...) plus one
start-first task exceed this 2-core machine, and swarm.deploy refuses a stack that cannot be placed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from .conftest import ROOT, Stack, _docker_ready, _free_port, _make_stack, poll

CORE = ("frontend", "backend", "mysql", "redis")
REGISTRY_IMAGE = "enlaight-local/registry:2.8"


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def services_flags() -> list[str]:
    return [f"--service={name}" for name in CORE]


@pytest.fixture
def swarm_stack(tmp_path_factory, local_images_env):
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    state = json.loads(docker("info", "--format", "{{json .Swarm}}").stdout).get("LocalNodeState")
    if state != "inactive":
        pytest.skip(f"this engine is already part of a swarm (state {state}): the test would change it")
    had_gwbridge = docker("network", "inspect", "docker_gwbridge", check=False).returncode == 0
    build_registry_image(tmp_path_factory)
    stack = _make_stack(tmp_path_factory, local_images_env, "swarm")
    port = _free_port()
    registry = f"127.0.0.1:{port}"
    registry_container = f"enlaight-e2e-registry-{uuid.uuid4().hex[:8]}"
    # enlaight.registry is not a name or a port: invoke.yaml of the copy, not an INVOKE_ENLAIGHT_* variable.
    (stack.root / "invoke.yaml").write_text(f"enlaight:\n  registry: {registry}\n")
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        docker("run", "--detach", "--name", registry_container, "--publish", f"{registry}:5000", REGISTRY_IMAGE)
        poll(lambda: requests.get(f"http://{registry}/v2/", timeout=2).ok, timeout=30)
        yield stack, registry
    finally:
        stack.invoke("swarm.rm", "--volumes", "--yes", check=False, timeout=300)
        docker("swarm", "leave", "--force", check=False)
        docker("rm", "--force", "--volumes", registry_container, check=False)
        _remove_registry_images(registry)
        for volume in docker("volume", "ls", "--quiet", "--filter", f"name={stack.project}_").stdout.split():
            docker("volume", "rm", volume, check=False)
        if not had_gwbridge:
            docker("network", "rm", "docker_gwbridge", check=False)


def build_registry_image(tmp_path_factory) -> None:
    """The registry image is not built by default (images.local -s registry): built here, reused by hash."""
    subprocess.run([sys.executable, "-m", "invoke", "images.local", "--service=registry", "--env-file",
                    str(tmp_path_factory.mktemp("registry") / "images.env")], cwd=ROOT, check=True)  # fmt: skip


def _remove_registry_images(registry: str) -> None:
    """Tags and digests under the test's registry (pushed or pulled by the swarm); the local images stay."""
    listed = docker("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").stdout.splitlines()
    for repository, tag, digest in (line.split(" ") for line in listed):
        if repository.startswith(f"{registry}/"):
            docker("image", "rm", f"{repository}@{digest}" if tag == "<none>" else f"{repository}:{tag}", check=False)


def deploy(stack: Stack, check: bool = True) -> subprocess.CompletedProcess:
    return stack.invoke("swarm.deploy", *services_flags(), "--replicas", "backend=2", "--no-reservations",
                        "--timeout", "400", check=check, timeout=900)  # fmt: skip


def timings(result: subprocess.CompletedProcess) -> tuple[float, float]:
    match = re.search(r"deploy ([\d.]+)s, converged ([\d.]+)s", result.stderr)
    assert match, result.stderr
    return float(match.group(1)), float(match.group(2))


def ready_through_front_end(stack: Stack) -> dict:
    response = requests.get(stack.url("FRONTEND_PORT", "/api/health/ready/"), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_single_node_swarm(swarm_stack) -> None:
    stack, registry = swarm_stack

    # Push: the built images and the registry-free local ones the core runs.
    pushed = stack.invoke("build", "--push", *services_flags(), timeout=1800)
    for image in ("enlaight/backend:prod", "enlaight/frontend:prod", "enlaight-local/mysql:mariadb-10.11"):
        assert f"pushed {registry}/{image}" in pushed.stderr

    # Deploy and converge: both backend replicas healthy, the front end answering on its host-mode port.
    first = deploy(stack)
    print(f"\nswarm single node: deploy {timings(first)[0]:.1f}s, converged {timings(first)[1]:.1f}s", file=sys.stderr)
    assert "endpoint mode dnsrr + host-mode ports" in first.stderr
    assert "labelled the only node" in first.stderr
    status = json.loads(stack.invoke("swarm.ps", "--json").stdout)
    assert {s["service"]: s["running"] for s in status} == {"backend": 2, "frontend": 1, "mysql": 1, "redis": 1}

    # Both replicas serve: DNS round robin (dnsrr) spreads nginx's requests; each task logs its own requests.
    for _ in range(20):
        assert ready_through_front_end(stack)["status"] == "ok"
    logs = stack.invoke("swarm.logs", "-s", "backend", "--tail", "500")
    logs = logs.stdout + logs.stderr
    served = Counter(line.split()[0] for line in logs.splitlines() if "GET /api/health/ready/" in line)
    assert len(served) == 2, served

    # A changed config rolls out under a new name (configs are immutable); the old version is removed.
    def mysql_config() -> str:
        inspected = json.loads(docker("service", "inspect", f"{stack.project}_mysql").stdout)[0]
        return inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"]

    old_config = mysql_config()
    init = stack.root / "backend/mysql/init/01-databases.sh"
    init.write_text(init.read_text() + "# changed by the swarm e2e test\n")
    changed = deploy(stack)
    new_config = mysql_config()
    assert new_config != old_config and new_config.startswith(f"{stack.project}_mysql-init-")
    assert old_config not in docker("config", "ls", "--format", "{{.Name}}").stdout.split()
    assert "removed 1 unused config version" in changed.stderr
    ready_through_front_end(stack)

    # A backend image that never becomes healthy: Swarm rolls the update back and the deploy reports it.
    good = json.loads(docker("service", "inspect", f"{stack.project}_backend").stdout)[0]
    good_image = good["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    broken = _push_broken_backend(stack.root.parent / "broken-backend", registry)
    started = time.monotonic()
    failed = deploy(stack, check=False)
    print(f"swarm rollback reported after {time.monotonic() - started:.0f}s", file=sys.stderr)
    assert failed.returncode != 0, failed.stderr
    assert "Swarm rolled it back" in failed.stderr
    assert "unhealthy container" in failed.stderr
    assert "broken backend: never healthy" in failed.stderr  # the failing task's own log lines
    assert "Traceback" not in failed.stderr
    after = json.loads(docker("service", "inspect", f"{stack.project}_backend").stdout)[0]
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == good_image != broken
    assert ready_through_front_end(stack)["status"] == "ok"

    # swarm.rm removes the stack; its volumes only when asked.
    stack.invoke("swarm.rm", timeout=300)
    assert (
        docker("service", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack.project}").stdout == ""
    )
    volumes = docker("volume", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack.project}")
    assert sorted(volumes.stdout.split()) == [f"{stack.project}_mysql_data", f"{stack.project}_redis_data"]
    stack.invoke("swarm.rm", "--volumes", "--yes", timeout=300)
    volumes = docker("volume", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack.project}")
    assert volumes.stdout == ""


def _push_broken_backend(context: Path, registry: str) -> str:
    """The pushed backend with a process that runs but never answers its healthcheck, pushed under the same tag
    (what a bad release looks like to the swarm); tagged only under the test's registry."""
    context.mkdir(exist_ok=True)
    image = f"{registry}/enlaight/backend:prod"
    (context / "Dockerfile").write_text(
        f"FROM {image}\nENTRYPOINT []\n"
        'CMD ["python", "-c", "import time; print(\'broken backend: never healthy\', flush=True); time.sleep(86400)"]\n'
    )
    docker("build", "--tag", image, str(context), timeout=300)
    docker("push", "--quiet", image)
    return image


# ------------------------------------------------------------------ three nodes: Docker-in-Docker node containers

NODE_IMAGE = "enlaight-e2e/swarm-node:bookworm"  # kept for the next run, like the local images
NODE_DOCKERFILE = """\
ARG BASE_IMAGE=enlaight-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends docker.io iptables socat procps \\
 && rm -rf /var/lib/apt/lists/*
COPY node-entrypoint.sh /usr/local/bin/node-entrypoint.sh
ENTRYPOINT ["sh", "/usr/local/bin/node-entrypoint.sh"]
"""
# `invoke build --push` pushes to the registry as 127.0.0.1:PORT (Docker trusts plain HTTP on loopback only); each
# node forwards that same address to the registry container, so every engine pulls the same image references.
NODE_ENTRYPOINT = """\
#!/bin/sh
set -eu
socat "TCP-LISTEN:${REGISTRY_PORT},bind=127.0.0.1,fork,reuseaddr" TCP:registry:5000 &
exec dockerd --host unix:///var/run/docker.sock --host tcp://0.0.0.0:2375 --storage-driver overlay2
"""
# What works here (../shared/ENVIRONMENT.md): not --privileged (root lacks CAP_SYS_RESOURCE), but every other cap.
NODE_FLAGS = ("--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
              "--security-opt", "apparmor=unconfined", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
              "--tmpfs", "/run")  # fmt: skip


def node_docker(node: str, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    return docker("exec", node, "docker", *args, check=check, timeout=timeout)


@pytest.fixture
def three_nodes(tmp_path_factory, local_images_env):
    """A manager and two workers (node containers on a network of the test's own), a registry on that network
    and on loopback, and a copy of the project whose swarm tasks talk to the manager (DOCKER_HOST)."""
    reason = _docker_ready()
    if reason:
        pytest.skip(reason)
    build_registry_image(tmp_path_factory)
    context = tmp_path_factory.mktemp("swarm-node")
    (context / "Dockerfile").write_text(NODE_DOCKERFILE)
    (context / "node-entrypoint.sh").write_text(NODE_ENTRYPOINT)
    docker("build", "--network", "host", "--tag", NODE_IMAGE, str(context), timeout=900)

    tag = uuid.uuid4().hex[:8]
    network, port = f"enlaight-e2e-swarm3-{tag}", _free_port()
    registry = f"127.0.0.1:{port}"
    nodes = [f"enlaight-e2e-swarm3-{tag}-{role}" for role in ("manager", "worker1", "worker2")]
    registry_container = f"enlaight-e2e-swarm3-{tag}-registry"
    stack = _make_stack(tmp_path_factory, local_images_env, "swarm3")
    (stack.root / "invoke.yaml").write_text(f"enlaight:\n  registry: {registry}\n")
    docker("network", "create", network)
    try:
        docker("run", "--detach", "--name", registry_container, "--network", network, "--network-alias", "registry",
               "--publish", f"{registry}:5000", REGISTRY_IMAGE)  # fmt: skip
        for node in nodes:
            docker("run", "--detach", "--name", node, "--hostname", node.rsplit("-", 1)[1], "--network", network,
                   "--env", f"REGISTRY_PORT={port}", "--volume", f"{node}:/var/lib/docker", *NODE_FLAGS,
                   NODE_IMAGE)  # fmt: skip
        for node in nodes:
            poll(lambda node=node: node_docker(node, "info", check=False).returncode == 0, timeout=60)
        ips = {node: docker("inspect", "--format", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                            node).stdout.strip() for node in nodes}  # fmt: skip
        manager = nodes[0]
        node_docker(manager, "swarm", "init", "--advertise-addr", ips[manager])
        token = node_docker(manager, "swarm", "join-token", "--quiet", "worker").stdout.strip()
        for worker in nodes[1:]:
            node_docker(worker, "swarm", "join", "--token", token, f"{ips[manager]}:2377")
        stack.env["DOCKER_HOST"] = f"tcp://{ips[manager]}:2375"
        yield stack, registry, nodes, ips
    finally:
        for node in nodes:
            docker("rm", "--force", "--volumes", node, check=False)
            docker("volume", "rm", node, check=False)
        docker("rm", "--force", "--volumes", registry_container, check=False)
        docker("network", "rm", network, check=False)
        _remove_registry_images(registry)


def test_three_nodes(three_nodes) -> None:
    stack, registry, nodes, ips = three_nodes
    manager, hostnames = nodes[0], {node.rsplit("-", 1)[1]: node for node in nodes}
    on_host = {k: v for k, v in stack.env.items() if k != "DOCKER_HOST"}
    pushed = subprocess.run([sys.executable, "-m", "invoke", "build", "--push", *services_flags()], cwd=stack.root,
                            env=on_host, capture_output=True, text=True, timeout=1800, check=False)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr

    # The manager's engine is remote from here: its kernel (this one: no IPVS) is named with --endpoint-mode.
    flags = (*services_flags(), "--replicas", "backend=2", "--endpoint-mode", "dnsrr", "--timeout", "600")
    refused = stack.invoke("swarm.deploy", *flags, check=False)
    assert refused.returncode == 2 and "--label-add enlaight." in refused.stderr  # no node labelled: nothing deployed
    node_docker(manager, "node", "update", "--label-add", "enlaight.mysql=true", "--label-add", "enlaight.redis=true",
                "manager")  # fmt: skip
    result = stack.invoke("swarm.deploy", *flags, timeout=1200)
    deploy_s, converge_s = timings(result)
    print(f"\nswarm three nodes: deploy {deploy_s:.1f}s, converged {converge_s:.1f}s", file=sys.stderr)

    def placement() -> dict[str, list[str]]:
        rows = json.loads(stack.invoke("swarm.ps", "--json").stdout)
        return {row["service"]: sorted(t["node"] for t in row["tasks"] if t["state"] == "Running") for row in rows}

    where = placement()
    assert where["mysql"] == ["manager"] and where["redis"] == ["manager"]  # the databases stay on their node
    # Spread: two replicas on two nodes. Swarm's scheduler balances task counts, so which two depends on where
    # the front end landed first; the databases' node labels are what is pinned.
    assert len(set(where["backend"])) == 2, where
    front = ips[hostnames[where["frontend"][0]]]
    url = f"http://{front}:{stack.ports['FRONTEND_PORT']}/api/health/ready/"
    # The node's address is not in ALLOWED_HOSTS (.env: localhost, ...): ask as a load balancer with a name would.
    host = {"Host": "localhost"}
    assert requests.get(url, headers=host, timeout=10).json()["status"] == "ok"

    # Stop the daemon of the worker that runs a backend and not the front end: its replica moves, answers go on.
    victim = next(name for name in where["backend"] if name not in where["frontend"])
    docker("exec", hostnames[victim], "sh", "-c", "kill -TERM $(cat /var/run/docker.pid)")
    # Until Swarm declares the node down, DNS round robin still hands nginx the dead task's address (cached 10 s):
    # a request may fail on its first try. A probe is a request and up to two retries a second apart (what a load
    # balancer or client does); every probe must be answered, and first-try failures are counted for the report.
    started, first_try_failures, unanswered = time.monotonic(), [], 0
    while time.monotonic() - started < 180:
        for attempt in range(3):
            try:
                response = requests.get(url, headers=host, timeout=15)
                if response.status_code == 200:
                    break
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            if attempt == 0:
                first_try_failures.append(reason)
            time.sleep(1)
        else:
            unanswered += 1
        now = placement()
        if len(now["backend"]) == 2 and victim not in now["backend"]:
            break
        time.sleep(1)
    moved = time.monotonic() - started
    print(f"swarm three nodes: backend replica moved off {victim} in {moved:.0f}s; first-try failures: "
          f"{first_try_failures or 'none'}", file=sys.stderr)  # fmt: skip
    assert victim not in placement()["backend"] and len(placement()["backend"]) == 2
    assert unanswered == 0
    for _ in range(10):
        assert requests.get(url, headers=host, timeout=10).json()["status"] == "ok"
    stack.invoke("swarm.rm", "--volumes", "--yes", timeout=300)
