"""The objects one Compose project has on the engine (what `prune` may remove), and removal of one of them.

Scoping is done by the engine itself (`--filter label=com.docker.compose.project=NAME`), so an object of
another project, or of no project, is never even listed, let alone removed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .runner import run

PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Resource:
    kind: str  # container | network | image | volume
    ident: str  # what `docker <kind> rm` takes
    name: str  # what a person reads
    size: int = 0  # bytes, where the engine knows it
    in_use: bool = False
    detail: str = ""


def _docker(*args: str) -> str:
    return run(["docker", *args], what=f"docker {' '.join(args[:2])}").stdout


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _project_filter(project: str) -> list[str]:
    return ["--filter", f"label={PROJECT_LABEL}={project}"]


def containers(project: str) -> list[Resource]:
    rows = _json_lines(_docker("ps", "--all", "--no-trunc", "--format", "{{json .}}", *_project_filter(project)))
    return [
        Resource(
            "container",
            row["ID"],
            row["Names"],
            in_use=row.get("State") in ("running", "restarting", "paused"),
            detail=row.get("State", ""),
        )  # fmt: skip
        for row in rows
    ]


def networks(project: str) -> list[Resource]:
    rows = _json_lines(_docker("network", "ls", "--no-trunc", "--format", "{{json .}}", *_project_filter(project)))
    if not rows:
        return []
    inspected = json.loads(_docker("network", "inspect", *[row["ID"] for row in rows]))
    return [Resource("network", n["Id"], n["Name"], in_use=bool(n.get("Containers"))) for n in inspected]


def volumes(project: str, *, with_sizes: bool = False) -> list[Resource]:
    rows = _json_lines(_docker("volume", "ls", "--format", "{{json .}}", *_project_filter(project)))
    names = [row["Name"] for row in rows]
    sizes = volume_sizes() if with_sizes and names else {}
    users = _volume_users(names)
    return [
        Resource("volume", n, n, size=sizes.get(n, 0), in_use=n in users, detail=", ".join(sorted(users.get(n, []))))
        for n in names
    ]


def _volume_users(names: Sequence[str]) -> dict[str, list[str]]:
    """Which containers (of any project) mount each volume: a volume in use must not be offered for removal."""
    users: dict[str, list[str]] = {}
    for name in names:
        out = _docker("ps", "--all", "--filter", f"volume={name}", "--format", "{{.Names}}")
        if out.strip():
            users[name] = out.split()
    return users


def volume_sizes() -> dict[str, int]:
    data = json.loads(_docker("system", "df", "--verbose", "--format", "{{json .}}"))
    return {v["Name"]: parse_size(v.get("Size", "0B")) for v in data.get("Volumes") or []}


def images(project: str) -> list[Resource]:
    """Images Compose built for this project (it labels them). `in_use`: a container that prune will not remove
    (a running one of this project, or any container of another project or of none) uses the image."""
    ids = _docker("image", "ls", "--quiet", "--no-trunc", *_project_filter(project)).split()
    if not ids:
        return []
    rows = _docker("ps", "--all", "--no-trunc", "--format",
                   f'{{{{.Image}}}}\t{{{{.Label "{PROJECT_LABEL}"}}}}\t{{{{.State}}}}').splitlines()  # fmt: skip
    staying = {image for image, owner, state in (row.split("\t") for row in rows if row)
               if owner != project or state in ("running", "restarting", "paused")}  # fmt: skip
    used_ids = set(_docker("image", "inspect", "--format", "{{.Id}}", *staying).split()) if staying else set()
    result = []
    for image in json.loads(_docker("image", "inspect", *sorted(set(ids)))):
        tags = image.get("RepoTags") or []
        result.append(Resource("image", image["Id"], ", ".join(tags) or f"<untagged {image['Id'][7:19]}>",
                               size=int(image.get("Size", 0)), in_use=image["Id"] in used_ids,
                               detail="untagged" if not tags else ""))  # fmt: skip
    return result


def remove(resource: Resource) -> None:
    command = {"container": ["rm"], "network": ["network", "rm"], "image": ["image", "rm"], "volume": ["volume", "rm"]}
    _docker(*command[resource.kind], resource.ident)


_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}


def parse_size(text: str) -> int:
    """The engine's human sizes ("12.5MB", "0B") as bytes."""
    text = text.strip()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * _UNITS[unit])
            except ValueError:
                return 0
    return 0
