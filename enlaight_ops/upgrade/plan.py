"""What an upgrade would do, decided from facts gathered on the engine (pure: unit tests feed captured facts).

The facts (probe.py gathers them): for each running service the image it runs now and the one it would run,
the Django migrations `migrate --plan` lists in the target backend, the database servers' versions now and in
their target images, and the disk a backup and new images need against what is free. From them a Plan says what
changes, what the upgrade must cross (a database engine's major version) and what stops it before it starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import UsageError
from ..ui import human_size as _size

# Where a service's target image comes from.
Source = Literal["build", "image", "config"]  # built from this checkout | --to SERVICE=IMAGE | the compose config
ENGINES = {"mysql": "mysql", "postgres": "postgres", "redis": "redis"}  # service -> engine kind


@dataclass(frozen=True)
class ImageRef:
    reference: str  # the name a person reads (tag); for a container, the name it was created with
    id: str = ""  # sha256:...; "" when it is not on the engine yet (to be built or pulled)
    size: int = 0  # bytes, when known

    def short(self) -> str:
        return self.id.removeprefix("sha256:")[:12] if self.id else "(not built yet)"


@dataclass(frozen=True)
class ServiceFacts:
    service: str
    now: ImageRef
    target: ImageRef
    source: Source


@dataclass(frozen=True)
class EngineFacts:
    service: str
    now_version: str  # what the running server says (SHOW server_version, SELECT VERSION(), INFO server)
    target_version: str  # what the target image's server binary says; "" when unknown (image not here)


@dataclass(frozen=True)
class DiskFacts:
    backup_bytes: int  # estimate of the pre-upgrade set
    image_bytes: int  # estimate of the images to build or pull
    free_bytes: int  # free where the engine keeps images
    backup_free_bytes: int  # free where the set goes (often the same disk)
    same_disk: bool = True


@dataclass(frozen=True)
class Facts:
    project: str
    env: str
    services: tuple[ServiceFacts, ...]
    engines: tuple[EngineFacts, ...] = ()
    migrations: tuple[str, ...] | None = None  # None: not known (no backend, or the one-shot failed)
    migrations_error: str = ""
    disk: DiskFacts | None = None
    source_mounted: bool = False  # dev: ./backend is mounted over the image's code


@dataclass(frozen=True)
class ServiceChange:
    service: str
    now: ImageRef
    target: ImageRef
    source: Source

    @property
    def changes(self) -> bool:
        # A build's result is unknown until it ran: it counts as a change (unchanged ids are reported after).
        return self.source == "build" or self.now.id != self.target.id

    def action(self) -> str:
        if self.source == "build":
            return "rebuild from this checkout"
        if not self.changes:
            return "unchanged"
        if not self.target.id:
            return "pull (or build locally) then replace"
        return "replace"


@dataclass(frozen=True)
class EngineChange:
    service: str
    now: str
    target: str
    kind: Literal["same", "minor", "major", "downgrade", "flavour", "unknown"]
    how: str
    blocks: bool


@dataclass(frozen=True)
class Plan:
    project: str
    env: str
    services: tuple[ServiceChange, ...]
    engines: tuple[EngineChange, ...]
    migrations: tuple[str, ...] | None
    migrations_note: str
    disk_needed: int
    disk_free: int
    blockers: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> list[ServiceChange]:
        return [s for s in self.services if s.changes]

    @property
    def replaced_images(self) -> list[ServiceChange]:
        """The services whose image the upgrade swaps under the configured name (and can swap back)."""
        return [s for s in self.changed if s.source in ("build", "image")]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- --to --------------------------------------------------------------------------------------------------------


def parse_to(values: Sequence[str], buildable: Iterable[str]) -> dict[str, str]:
    """`--to SERVICE=IMAGE` (repeatable) -> {service: image}; only the stack's own (built) services take one."""
    buildable = sorted(set(buildable))
    chosen: dict[str, str] = {}
    for value in values:
        service, sep, image = value.partition("=")
        service, image = service.strip(), image.strip()
        if not sep or not service or not image:
            raise UsageError(f"--to takes SERVICE=IMAGE (e.g. --to backend=registry.example/enlaight-backend:1.4), "
                             f"not {value!r}")  # fmt: skip
        if service not in buildable:
            raise UsageError(f"--to {service}=...: only the stack's own images can be given ({', '.join(buildable)}); "
                             "for a database or a third-party image set its *_IMAGE variable in .env and run "
                             "`invoke upgrade`")  # fmt: skip
        if service in chosen:
            raise UsageError(f"--to names {service} twice")
        if any(c.isspace() for c in image):
            raise UsageError(f"--to {service}=: {image!r} is not an image reference")
        chosen[service] = image
    return chosen


# -- parsing what the engine said ---------------------------------------------------------------------------------

_MIGRATION_LINE = re.compile(r"^([A-Za-z_][\w]*\.\d{4}_\w+)\s*$")


def parse_migrate_plan(output: str) -> tuple[str, ...]:
    """Django's `migrate --plan` output -> the migrations it would apply (app.NNNN_name), in order."""
    return tuple(m.group(1) for line in output.splitlines() if (m := _MIGRATION_LINE.match(line.rstrip())))


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, ...]:
    """The first dotted version in a server's answer: `postgres (PostgreSQL) 15.20 (Debian ...)` -> (15, 20)."""
    found = _VERSION.search(text or "")
    return tuple(int(p) for p in found.groups() if p is not None) if found else ()


def redis_version(info: str) -> str:
    """`redis_version:7.0.15` out of `INFO server`."""
    found = re.search(r"^redis_version:(\S+)", info, re.MULTILINE)
    return found.group(1) if found else ""


def major(service: str, version: tuple[int, ...]) -> tuple[int, ...]:
    """The part of a version whose change needs more than a restart on the same data. PostgreSQL and Redis
    number majors with the first number; MySQL/MariaDB releases are major.minor (8.0 -> 8.4, 10.6 -> 10.11)."""
    if not version:
        return ()
    return version[:2] if service == "mysql" else version[:1]


def _flavour(text: str) -> str:
    return "MariaDB" if "mariadb" in text.lower() else "MySQL"


def engine_change(facts: EngineFacts) -> EngineChange:
    now, target = parse_version(facts.now_version), parse_version(facts.target_version)
    name = {"mysql": "MySQL", "postgres": "PostgreSQL", "redis": "Redis"}.get(facts.service, facts.service)
    shown_now, shown_target = ".".join(map(str, now)) or "?", ".".join(map(str, target)) or "?"

    def change(kind, how, blocks=False) -> EngineChange:
        return EngineChange(facts.service, shown_now, shown_target, kind, how, blocks)

    if not target:
        return change("unknown", f"{name}: the target image is not on the engine yet; its version is checked "
                                 "after it is pulled")  # fmt: skip
    if facts.service == "mysql" and _flavour(facts.now_version) != _flavour(facts.target_version):
        flavours = f"{_flavour(facts.now_version)} -> {_flavour(facts.target_version)}"
        return change("flavour", f"{name}: {flavours} is not an upgrade: dump with `invoke backup`, switch, then "
                                 "`invoke restore`", True)  # fmt: skip
    if major(facts.service, now) == major(facts.service, target):
        same = f"{name} {shown_now} -> {shown_target}: same major version, the new server reads the data as it is"
        return change("same" if now == target else "minor", same)
    if target < now:
        return change("downgrade", f"{name} {shown_now} -> {shown_target} is a downgrade: a server cannot read a "
                                   "newer major's data; restore a set taken on that version instead", True)  # fmt: skip
    if facts.service == "redis":
        return change("major", f"Redis {shown_now} -> {shown_target}: newer Redis loads older RDB/AOF files as they "
                               "are")  # fmt: skip
    if facts.service == "postgres":
        return change("major", f"PostgreSQL {shown_now} -> {shown_target}: a major-version change, crossed by dump "
                               "and restore into a fresh volume; the old volume is kept as a copy")  # fmt: skip
    return change("major", f"{name} {shown_now} -> {shown_target} is a major-version change: `invoke upgrade` does not "
                           "cross it yet - take a set (`invoke backup`), move the old volume aside, start the new "
                           "version and `invoke restore` the set", True)  # fmt: skip


def postgres_hop(plan: Plan) -> EngineChange | None:
    """The PostgreSQL major change the upgrade crosses by dump and restore, if the plan has one."""
    return next((e for e in plan.engines if e.service == "postgres" and e.kind == "major"), None)


# -- the plan ----------------------------------------------------------------------------------------------------


def make_plan(facts: Facts) -> Plan:
    services = tuple(ServiceChange(s.service, s.now, s.target, s.source) for s in facts.services)
    engines = tuple(engine_change(e) for e in facts.engines)
    blockers = [e.how for e in engines if e.blocks]
    notes: list[str] = []
    needed = free = 0
    if facts.disk is not None:
        d = facts.disk
        needed = d.backup_bytes + d.image_bytes
        if d.same_disk:
            free = d.free_bytes
            if needed > free:
                blockers.append(f"disk: the backup and the new images need about {_size(needed)}, "
                                f"{_size(free)} is free: `invoke prune --images`, or `invoke backup.list` and remove "
                                "old sets")  # fmt: skip
        else:
            free = min(d.free_bytes, d.backup_free_bytes)
            if d.backup_bytes > d.backup_free_bytes:
                blockers.append(f"disk: the backup needs about {_size(d.backup_bytes)}, {_size(d.backup_free_bytes)} "
                                "is free in the backup directory")  # fmt: skip
            if d.image_bytes > d.free_bytes:
                blockers.append(f"disk: the new images need about {_size(d.image_bytes)}, {_size(d.free_bytes)} is "
                                "free where the engine keeps images")  # fmt: skip
    migrations_note = ""
    if facts.migrations is None:
        migrations_note = facts.migrations_error or "backend is not running: no migrations checked"
    if facts.source_mounted:
        notes.append("dev mounts ./backend over the backend image: the checkout's source runs whatever the image")
    if not any(s.changes for s in services):
        notes.append("every service already runs its target image: nothing to upgrade")
    notes.append("n8n migrates its own schema when it starts; Superset's `superset-init` runs `superset db upgrade`")
    return Plan(facts.project, facts.env, services, engines, facts.migrations, migrations_note, needed, free,
                tuple(blockers), tuple(notes))  # fmt: skip


def plan_lines(plan: Plan) -> list[str]:
    """The plan for a person, one line per fact."""
    lines = [f"upgrade plan for project {plan.project} ({plan.env})"]
    for s in plan.services:
        lines.append(f"  {s.service}: {s.now.reference} {s.now.short()} -> {s.target.reference} {s.target.short()} "
                     f"({s.action()})")  # fmt: skip
    if plan.migrations is None:
        lines.append(f"  migrations: unknown ({plan.migrations_note})")
    elif plan.migrations:
        lines.append(f"  migrations to apply ({len(plan.migrations)}): {', '.join(plan.migrations)}")
    else:
        lines.append("  migrations to apply: none")
    for e in plan.engines:
        lines.append(f"  engine {e.how}")
    if plan.disk_needed or plan.disk_free:
        lines.append(f"  disk: about {_size(plan.disk_needed)} needed (backup + images), {_size(plan.disk_free)} free")
    lines += [f"  note: {n}" for n in plan.notes]
    lines += [f"  BLOCKED: {b}" for b in plan.blockers]
    return lines


def rollback_tag(reference: str, stamp: str) -> str:
    """`enlaight/backend:prod` -> `enlaight/backend:rollback-<stamp>`: the previous image, kept under its own
    repository (a digest reference loses its digest: the tag names the image id it was given)."""
    name = reference.split("@", 1)[0]
    repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return f"{repository}:rollback-{stamp}"


# -- history -----------------------------------------------------------------------------------------------------


def history_rows(records: Sequence[Mapping[str, Any]], project: str) -> list[tuple[str, ...]]:
    """One row per upgrade of `project`, newest last: when, outcome, what changed, the set to roll back to."""
    rows = []
    for r in records:
        if r.get("project") != project:
            continue
        after = r.get("to") or {}
        changed = ", ".join(f"{svc} {_short(before.get('id', ''))}->{_short(after.get(svc, {}).get('id', ''))}"
                            for svc, before in sorted(r.get("from", {}).items()))  # fmt: skip
        rows.append((str(r.get("at", "")), str(r.get("env", "")), str(r.get("outcome", "")), changed or "-",
                     ", ".join(r.get("migrations") or []) or "-", str(r.get("set") or "-"),
                     str(r.get("cause") or "")))  # fmt: skip
    return rows


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12] or "?"
