"""The facts an upgrade plan is made from, read from the engine without changing anything.

Images are inspected, servers are asked their version (`docker compose exec` into the running containers), a
target server image is asked with its binary's `--version` in a throwaway container, and the Django migrations
the target backend would apply come from `migrate --plan` run as a one-shot against the live database
(`--plan` only reads). Nothing is built, pulled, started for good or removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..compose import Compose
from ..health import one_shot_services
from ..runner import run
from . import plan as p

# The server binary of each database image, asked for its version in a throwaway container.
SERVER_BINARY = {"mysql": "mysqld", "postgres": "postgres", "redis": "redis-server"}
# What each running server says about its own version (the credentials come from the container's own env).
VERSION_QUERY = {
    "mysql": 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --user=root --batch --skip-column-names '
    '-e "SELECT VERSION()"',
    "postgres": 'exec psql -X -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SHOW server_version"',
    "redis": "exec redis-cli INFO server",
}
BACKEND = "backend"


class OverlayCompose(Compose):
    """The stack's own compose command with one more file: an overlay changing one thing for a one-shot."""

    def __init__(self, compose: Compose, overlay: Path) -> None:
        super().__init__(compose.settings)
        self.overlay = overlay

    def argv(self, *args: str) -> list[str]:
        return [*super().argv(), "--file", str(self.overlay), *args]


@contextmanager
def overlay(compose: Compose, services: Mapping[str, Any]) -> Iterator[Compose]:
    """`compose` plus a temporary overlay file with `services` (JSON is YAML; nothing secret goes in it)."""
    with tempfile.TemporaryDirectory(prefix="enlaight-upgrade-") as tmp:
        path = Path(tmp) / "upgrade-overlay.yml"
        path.write_text(json.dumps({"services": services}))
        yield OverlayCompose(compose, path)


def docker(*args: str, check: bool = True):
    return run(["docker", *args], check=check, what=f"docker {args[0]}")


def running_services(compose: Compose) -> dict[str, str]:
    """{service: container name} of the services running now (one-shots are not services to upgrade)."""
    one_shots = one_shot_services(compose.config)
    return {s.service: s.name for s in compose.states() if s.state == "running" and s.service not in one_shots}


def container_image(container: str) -> p.ImageRef:
    info = json.loads(docker("inspect", container).stdout)[0]
    image = image_info(info["Image"])
    return p.ImageRef(info["Config"]["Image"], info["Image"], image.size)


def image_info(reference: str) -> p.ImageRef:
    """The image's id and size, or an empty id when the engine does not have it."""
    result = docker("image", "inspect", "--format", "{{.Id}}\t{{.Size}}", reference, check=False)
    if not result.ok:
        return p.ImageRef(reference)
    image_id, size = result.stdout.strip().split("\t")
    return p.ImageRef(reference, image_id, int(size))


def buildable(config: Mapping[str, Any]) -> list[str]:
    return sorted(name for name, spec in config.get("services", {}).items() if "build" in spec)


def service_facts(compose: Compose, running: Mapping[str, str], to: Mapping[str, str]) -> list[p.ServiceFacts]:
    config = compose.config.get("services", {})
    facts = []
    for service, container in sorted(running.items()):
        now = container_image(container)
        configured = str(config[service].get("image") or "")
        if service in to:
            target, source = image_info(to[service]), "image"
        elif "build" in config[service]:
            # Built at upgrade time, so its id is not known yet; about the size of what runs now.
            target, source = p.ImageRef(configured, "", now.size), "build"
        else:
            target, source = image_info(configured), "config"
        facts.append(p.ServiceFacts(service, now, target, source))  # type: ignore[arg-type]
    return facts


def server_version(compose: Compose, service: str) -> str:
    result = compose.run("exec", "-T", service, "sh", "-c", VERSION_QUERY[service], capture=True, check=False)
    text = result.stdout.strip() if result.ok else ""
    return p.redis_version(text) if service == "redis" else text


def image_server_version(image: str, service: str) -> str:
    # Never pulled here (--plan changes nothing), no network: the binary only prints its version.
    result = docker("run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", SERVER_BINARY[service],
                    image, "--version", check=False)  # fmt: skip
    return result.stdout.strip() if result.ok else ""


def engine_facts(compose: Compose, services: Sequence[p.ServiceFacts]) -> list[p.EngineFacts]:
    facts = []
    for s in services:
        if s.service not in SERVER_BINARY:
            continue
        now = server_version(compose, s.service)
        if s.target.id and s.target.id == s.now.id:
            target = now  # the same image: the same server
        else:
            target = image_server_version(s.target.id, s.service) if s.target.id else ""
        facts.append(p.EngineFacts(s.service, now, target))
    return facts


def pending_migrations(compose: Compose, backend: p.ServiceFacts) -> tuple[tuple[str, ...] | None, str]:
    """`manage.py migrate --plan` in the TARGET backend against the live database (it only reads).

    A target that is built at upgrade time does not exist yet: its source (this checkout's ./backend) is then
    mounted read-only over the running image's code, which is what the new image will hold."""
    override: dict[str, Any] = {"image": backend.target.id or backend.now.id}
    if backend.source == "build" and compose.settings.env != "dev":  # dev mounts ./backend already
        override["volumes"] = [f"{compose.settings.root / 'backend'}:/app:ro"]
    with overlay(compose, {BACKEND: override}) as one_shot:
        result = one_shot.run("run", "--rm", "--no-deps", "-T", "--entrypoint", "python", BACKEND,
                              "manage.py", "migrate", "--plan", capture=True, check=False)  # fmt: skip
    if not result.ok:
        text = result.stderr.strip() or result.stdout.strip()
        words = compose.mask(text.splitlines()[-1] if text else "no output")
        return None, f"`migrate --plan` failed in the target backend (exit {result.returncode}): {words}"
    return p.parse_migrate_plan(result.stdout), ""


def disk_facts(compose: Compose, services: Sequence[p.ServiceFacts]) -> p.DiskFacts:
    from ..backup import scan_sets

    settings = compose.settings
    sets = [s for s in scan_sets(settings.backup_dir) if s.complete and s.name.endswith(f"-{settings.env}")]
    backup = sets[0].size if sets else _volume_bytes(compose)
    # A rebuild is about the size of what runs now; an image already on the engine needs nothing more.
    images = sum(s.target.size or s.now.size for s in services if s.source == "build" or not s.target.id)
    root = _docker_root()
    backup_dir = _existing(settings.backup_dir)
    same = os.stat(root).st_dev == os.stat(backup_dir).st_dev
    return p.DiskFacts(backup_bytes=backup, image_bytes=images, free_bytes=shutil.disk_usage(root).free,
                       backup_free_bytes=shutil.disk_usage(backup_dir).free, same_disk=same)  # fmt: skip


def _volume_bytes(compose: Compose) -> int:
    """What the project's volumes hold, by `du` in one throwaway container (`docker system df -v` sizes every
    volume and image of the engine: 19 s on a busy one, against ~1 s)."""
    label = f"label=com.docker.compose.project={compose.settings.project}"
    names = docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
    image = compose.settings.tools_image or str(compose.config["services"].get("postgres", {}).get("image") or "")
    if not names or not image:
        return 0
    mounts = [arg for i, name in enumerate(names) for arg in ("-v", f"{name}:/volumes/{i}:ro")]
    result = docker("run", "--rm", "--pull", "never", "--network", "none", *mounts, "--entrypoint", "du", image,
                    "-s", "-k", *[f"/volumes/{i}" for i in range(len(names))], check=False)  # fmt: skip
    sizes = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return sum(int(size) * 1024 for size in sizes if size.isdigit())


def _docker_root() -> Path:
    result = docker("info", "--format", "{{.DockerRootDir}}", check=False)
    root = Path(result.stdout.strip()) if result.ok and result.stdout.strip() else Path("/")
    return root if root.exists() else Path("/")  # a remote engine: this host's root disk is the best guess


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def gather(compose: Compose, to: Mapping[str, str], *, disk: bool = True) -> p.Facts:
    running = running_services(compose)
    services = service_facts(compose, running, to)
    by_name = {s.service: s for s in services}
    migrations, error = (None, "backend is not running: no migrations checked")
    if BACKEND in by_name:
        migrations, error = pending_migrations(compose, by_name[BACKEND])
    mounted = compose.settings.env == "dev" and BACKEND in by_name
    return p.Facts(project=compose.settings.project, env=compose.settings.env, services=tuple(services),
                   engines=tuple(engine_facts(compose, services)), migrations=migrations, migrations_error=error,
                   disk=disk_facts(compose, services) if disk else None, source_mounted=mounted)  # fmt: skip
