"""Enlaight stack tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

Thin by design: each task parses its flags, calls the enlaight_ops package and turns its errors into one clear
line and an exit code. Development (base + override) is the default; `--prod` or `enlaight.env: prod` (in
invoke.yaml, or INVOKE_ENLAIGHT_ENV=prod) selects production (base + prod overlay).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, task

from enlaight_ops import envfile, ui
from enlaight_ops.compose import Compose
from enlaight_ops.errors import CommandFailed, ToolkitError, UsageError
from enlaight_ops.settings import DEFAULTS, LOCAL_IMAGES_ENV_FILE, StackSettings, load_settings

# The stack is the directory holding this file, so a copy of the project (a test run) drives its own files.
STACK_ROOT = Path(__file__).resolve().parent
SERVICE_HELP = "a service of the stack; repeat for several (-s backend -s frontend)"


PROD_HELP = "act on production (base + docker-compose.prod.yml) instead of development"


def stack_task(*, help: dict[str, str] | None = None, **task_options: Any) -> Callable[..., Any]:
    """@task with the toolkit's error handling and, for a task with `prod`, the one shared `--prod` help."""

    def decorate(func: Callable[..., Any]) -> Any:
        helps = dict(help or {})
        if "prod" in inspect.signature(func).parameters:
            helps.setdefault("prod", PROD_HELP)
        return task(help=helps, **task_options)(toolkit_task(func))

    return decorate


def toolkit_task(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the toolkit's errors (and Ctrl-C) into one line on stderr and a non-zero exit, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CommandFailed as exc:
            # Probing the engine and Compose costs ~0.2 s, so it happens when a command failed, not before every
            # task: a missing prerequisite is then named as the cause (exit 3) instead of Compose's own words.
            cause = _missing_prerequisite(args[0], kwargs.get("prod", False)) if args else None
            ui.error(str(cause or exc))
            raise Exit(code=(cause or exc).exit_code) from None
        except ToolkitError as exc:
            ui.error(str(exc))
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            ui.error("interrupted")
            raise Exit(code=130) from None

    return wrapper


def _settings(c: Any, prod: bool) -> StackSettings:
    return load_settings(dict(c.config.get("enlaight", {})), prod=prod, root=STACK_ROOT)


def _stack(c: Any, prod: bool, *, announce: bool = True) -> Compose:
    """The stack a task acts on (prerequisites are probed if a command fails: see toolkit_task)."""
    settings = _settings(c, prod)
    if announce:
        ui.info(settings.describe())
    return Compose(settings)


def _missing_prerequisite(c: Any, prod: bool) -> ToolkitError | None:
    from enlaight_ops import doctor

    try:
        doctor.require(_settings(c, prod))
    except ToolkitError as missing:
        return missing
    return None


def _ensure_env_file(settings: StackSettings) -> None:
    if not settings.primary_env_file.exists():
        ui.info(f"{settings.primary_env_file.name} is missing: creating it from env.sample")
        _sync_env(settings)


def _sync_env(settings: StackSettings) -> None:
    report = envfile.sync_env_file(settings.sample_file, settings.primary_env_file)
    name = settings.primary_env_file.name
    if report.created:
        ui.success(f"created {name} (mode 0600)")
    if report.added:
        ui.success(f"added to {name}: {', '.join(report.added)}")
    if report.generated:
        ui.success(f"generated secrets: {', '.join(report.generated)}")
    if not report.changed:
        ui.success(f"{name} already has every key of env.sample; nothing changed")
    for key in report.needs_value:
        ui.warn(f"{key} still holds a placeholder: set it in {name}")


# -- tasks ------------------------------------------------------------------------------------------------------


@stack_task(help={"check": "only report drift: missing, blank, placeholder and unread keys"})
def env(c, check=False, prod=False):
    """Create or complete .env from env.sample (secrets generated, values kept); --check reports drift instead."""
    settings = _settings(c, prod)
    if not check:
        _sync_env(settings)
        return
    if not settings.primary_env_file.is_file():
        raise UsageError(f"{settings.primary_env_file.name} does not exist: run `invoke env`")
    report = envfile.check_env_files(settings.primary_env_file, settings.sample_file, settings.compose_files)
    for line in report.warnings(settings.env):
        ui.warn(line)
    problems = report.problems(settings.env)
    for line in problems:
        ui.error(line)
    if problems:
        raise UsageError(f"{len(problems)} problem(s) in {settings.primary_env_file.name}: run `invoke env`, then set "
                         "the values it reports")  # fmt: skip
    ui.success(f"{settings.primary_env_file.name} matches env.sample for {settings.env}")


@stack_task(
    iterable=["service"],
    help={
        "service": SERVICE_HELP,
        "no_cache": "build without the layer cache",
        "pull": "also try to pull newer base images",
        "push": "then tag and push the production images Swarm nodes pull to enlaight.registry (implies --prod)",
    },
)
def build(c, service=None, no_cache=False, pull=False, push=False, prod=False):
    """Build the stack's own images (backend, frontend, superset); --push sends them to enlaight.registry."""
    compose = _stack(c, prod or push)
    _ensure_env_file(compose.settings)
    services = compose.validate_services(service or [])
    args = ["build"] + (["--no-cache"] if no_cache else []) + (["--pull"] if pull else [])
    compose.run(*args, *services)
    if push:
        from enlaight_ops.swarm.deploy import push_images

        push_images(compose, str(c.config.get("enlaight", {}).get("registry", "")), services, ui.success)


@stack_task(
    iterable=["service"],
    help={
        "service": SERVICE_HELP + "; their dependencies start too",
        "build": "build images before starting",
        "no_wait": "return as soon as containers are created, without waiting for healthy",
        "timeout": "seconds to wait for every service to be healthy (default: enlaight.wait_timeout)",
    },
)
def start(c, service=None, build=False, no_wait=False, timeout=None, prod=False):
    """Start the stack (or some services) and wait until every one is healthy; say why when one is not."""
    settings = _settings(c, prod)
    seconds = _seconds(timeout, settings)
    ui.info(settings.describe())
    _ensure_env_file(settings)
    from enlaight_ops import lifecycle

    lifecycle.start(Compose(settings), service or [], build=build, wait=not no_wait, timeout=seconds)


@stack_task(
    iterable=["service"],
    help={
        "service": SERVICE_HELP,
        "timeout": "seconds to wait (default: enlaight.wait_timeout)",
        "json": "print the final states as JSON",
    },
)
def wait(c, service=None, timeout=None, json_=False, prod=False):
    """Wait until the running stack (or some services) is healthy; exit non-zero with diagnostics if not."""
    from enlaight_ops import lifecycle

    seconds = _seconds(timeout, _settings(c, prod))  # bad input is reported before anything runs
    compose = _stack(c, prod, announce=not json_)
    services = compose.validate_services(service or [])
    try:
        verdict = lifecycle.wait(compose, services, timeout=seconds)
    finally:
        if json_:
            print(json.dumps([c.as_dict() for c in compose.states()], indent=2))
    return verdict


@stack_task(iterable=["service"], help={"service": SERVICE_HELP})
def stop(c, service=None, prod=False):
    """Stop containers, keeping them and every volume (start again with `invoke start`)."""
    compose = _stack(c, prod)
    compose.run("stop", *compose.validate_services(service or []))


@stack_task(
    help={
        "volumes": "also delete the stack's named volumes: ALL DATA of this project (asks first)",
        "yes": "do not ask before deleting volumes",
    }
)
def down(c, volumes=False, yes=False, prod=False):
    """Remove the stack's containers and networks; volumes (data) stay unless --volumes."""
    compose = _stack(c, prod)
    args = ["down", "--remove-orphans"]
    if volumes:
        project = compose.settings.project
        ui.warn(f"--volumes deletes every named volume of project {project}: all its databases and files")
        if not yes and not _confirm(f"delete the volumes of {project}?"):
            raise UsageError("not confirmed: nothing was removed (pass --yes to skip the question)")
        args.append("--volumes")
    compose.run(*args)


@stack_task(iterable=["service"], help={"service": SERVICE_HELP})
def restart(c, service=None, prod=False):
    """Restart services (all when none is given) and wait until they are healthy again."""
    from enlaight_ops import lifecycle

    compose = _stack(c, prod)
    services = compose.validate_services(service or [])
    compose.run("restart", *services)
    lifecycle.wait(compose, services, timeout=compose.settings.wait_timeout)


@stack_task(help={"json": "print machine-readable JSON instead of a table"})
def ps(c, json_=False, prod=False):
    """Show every container of the stack: state, health, exit code."""
    compose = _stack(c, prod, announce=not json_)
    # Straight from the engine (one `docker ps`, ~25 ms), not `compose ps`, which parses every compose file first.
    containers = compose.states()
    if json_:
        print(json.dumps([c.as_dict() for c in containers], indent=2))
        return
    ui.table(
        f"project {compose.settings.project}",
        ["service", "state", "health", "exit", "status"],
        [(c.service, c.state, c.health or "-", c.exit_code, c.status) for c in containers],
    )


@stack_task(
    iterable=["service"],
    help={
        "service": SERVICE_HELP,
        "follow": "keep printing new lines",
        "tail": "number of lines to show from the end of each log",
        "since": "only lines since a time (2026-01-02T15:04:05) or a duration (10m)",
    },
)
def logs(c, service=None, follow=False, tail=None, since=None, prod=False):
    """Print service logs."""
    compose = _stack(c, prod)
    args = ["logs", "--no-log-prefix"] if service and len(service) == 1 else ["logs"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    if since:
        args += ["--since", since]
    compose.run(*args, *compose.validate_services(service or []))


@stack_task(help={"service": "the service to open a shell in"})
def shell(c, service, prod=False):
    """Open a shell inside a running service's container."""
    compose = _stack(c, prod)
    compose.validate_services([service])
    compose.run("exec", *_tty_flag(), service, "sh")


@stack_task()
def manage(c, prod=False):
    """Run Django's manage.py in the backend: invoke manage -- migrate --plan"""
    args = _remainder_args(c)
    if not args:
        raise UsageError("no manage.py command given: put it after --, e.g. `invoke manage -- showmigrations`")
    compose = _stack(c, prod)
    compose.run("exec", *_tty_flag(), "backend", "python", "manage.py", *args)


@stack_task(help={"json": "print the checks as JSON"})
def doctor(c, json_=False, prod=False):
    """Check the host, the engine, Compose, ports, .env and the compose config; a fix for each problem."""
    from enlaight_ops import doctor as doctor_checks

    settings = _settings(c, prod)
    if not json_:
        ui.info(settings.describe())
    compose = Compose(settings)
    checks = doctor_checks.run_checks(settings, lambda: compose.config)
    if json_:
        print(doctor_checks.as_json(checks))
    else:
        ui.table("doctor", ["check", "result", "detail", "fix"], [(c.name, c.verdict, c.detail, c.fix) for c in checks])
    failures = doctor_checks.failed(checks)
    if failures:
        raise ToolkitError(f"{len(failures)} check(s) failed: {', '.join(c.name for c in failures)}")


@stack_task(
    help={
        "dry_run": "list exactly what would be removed, remove nothing",
        "images": "also remove images this project built that no remaining container uses",
        "build_cache": "also remove this project's untagged leftover images from earlier builds",
        "volumes": "also remove this project's volumes: ALL ITS DATA (shows sizes, asks first)",
        "yes": "do not ask before removing volumes",
    }
)
def prune(c, dry_run=False, images=False, build_cache=False, volumes=False, yes=False, prod=False):
    """Remove this stack's stopped containers and unused networks (and, asked, images, leftovers, volumes)."""
    project = _stack(c, prod).settings.project
    from enlaight_ops import prune as pruning

    pruning.run(project, dry_run=dry_run, images=images, dangling=build_cache, volumes=volumes,
                confirm=lambda question: yes or _confirm(question))  # fmt: skip


def _seconds(value: str | None, settings: StackSettings) -> float:
    """--timeout, or enlaight.wait_timeout when it is not given."""
    if value is None:
        return settings.wait_timeout
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UsageError(f"--timeout must be a number of seconds above 0, not {value!r}")
    return seconds


def _whole_number(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]+", str(value)) or int(value) < 1:
        raise UsageError(f"{flag} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _remainder_args(c: Any) -> list[str]:
    """The words after `--`, as typed: invoke joins them into one string, losing the shell's quoting."""
    if "--" in sys.argv:
        return sys.argv[sys.argv.index("--") + 1 :]
    return shlex.split(c.remainder or "")


def _tty_flag() -> list[str]:
    # Without a terminal (CI, pipes) a TTY cannot be allocated: -T keeps stdin/stdout as plain streams.
    return [] if ui.is_interactive() else ["-T"]


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


# -- seed -----------------------------------------------------------------------------------------------------


@stack_task(
    iterable=["only"],
    # No short flags: -s means --service in every other task, and must not silently mean --strict here.
    auto_shortflags=False,
    help={
        "only": "run only this step (backend, n8n); repeatable, steps keep their order",
        "reset": "delete the sample data (only it) and seed again; asks first",
        "strict": "fail, before changing anything, when a step's service is not running (default: skip it)",
        "yes": "do not ask before --reset",
    },
)
def seed(c, only=None, reset=False, strict=False, yes=False, prod=False):
    """Seed the running stack: admin and sample data, Superset's sample dashboard, n8n's knowledge-base workflows;
    a second run creates nothing."""
    from enlaight_ops import seed as seeding

    compose = _stack(c, prod)
    steps = seeding.select_steps(only or None)
    if reset:
        ui.warn(seeding.reset_warning(steps))
        if not yes and not _confirm("reset the sample data?"):
            raise UsageError("not confirmed: nothing was reset (pass --yes to skip the question)")
    styles = {"created": ui.success, "updated": ui.success, "removed": ui.warn, "warning": ui.warn}
    reports = seeding.run_seed(
        compose,
        steps,
        reset=reset,
        strict=strict,
        info=ui.info,
        report_line=lambda kind, text: styles.get(kind, ui.info)(text),
    )
    ran = [r for r in reports if not r.skipped]
    if ran and not any(r.changed for r in ran):
        ui.success("nothing to create: everything was already there")


# -- backup and restore -----------------------------------------------------------------------------------------


def _backup_dir(settings: StackSettings, to: str | None) -> Path:
    return settings.path(to) if to else settings.backup_dir


@stack_task(
    iterable=["service"],
    help={
        "service": "back up only this service's data (mysql, postgres, redis, n8n, superset); repeatable",
        "to": "directory for the set (default: enlaight.backup_dir, backups/ in the project)",
        "keep": "afterwards keep only the newest N sets (the newest verified set always stays)",
    },
)
def backup_create(c, service=None, to=None, keep=None, prod=False):
    """Back up every database and state volume into one timestamped, checksummed set (atomic: all or nothing)."""
    from enlaight_ops.backup import create_backup

    keep_sets = _whole_number(keep, "--keep")  # bad input is reported before anything runs
    compose = _stack(c, prod)
    create_backup(compose, services=service or [], directory=_backup_dir(compose.settings, to),
                  tools_image=compose.settings.tools_image, keep=keep_sets)  # fmt: skip


@stack_task(help={"to": "the backup directory (default: enlaight.backup_dir)"})
def backup_list(c, to=None, prod=False):
    """List backup sets: time, size, components, and whether a restore drill verified them."""
    from enlaight_ops.backup import show_sets

    show_sets(_backup_dir(_settings(c, prod), to))


@stack_task(
    help={
        "backup_set": "the set's name (see backup.list), its path, or `latest`",
        "to": "the backup directory (default: enlaight.backup_dir)",
    },
)
def backup_verify(c, backup_set, to=None, prod=False):
    """Check a set's checksums, restore it into a throwaway project and compare counts; mark it verified."""
    from enlaight_ops.backup import resolve_set, verify_set

    compose = _stack(c, prod)
    set_dir = resolve_set(_backup_dir(compose.settings, to), backup_set, compose.settings.env)
    verify_set(compose, set_dir, tools_image=compose.settings.tools_image)


@stack_task(
    iterable=["service"],
    help={
        "backup_set": "the set's name (see backup.list), its path, or `latest`",
        "service": "restore only this service's data; repeatable (the others stay untouched)",
        "yes": "do not ask before replacing data",
        "to": "the backup directory (default: enlaight.backup_dir)",
        "no_safety_set": "do not back up what is replaced first (then a failed restore cannot roll back)",
        "from_other_env": "allow a set taken from another environment (dev into prod)",
    },
)
def restore(c, backup_set, service=None, yes=False, to=None, no_safety_set=False, from_other_env=False, prod=False):
    """Restore a backup set: checks it, asks, keeps a safety set, restores, rolls back by itself on failure."""
    from enlaight_ops.backup import SAFETY_DIR, resolve_set, restore_set

    compose = _stack(c, prod)
    directory = _backup_dir(compose.settings, to)
    set_dir = resolve_set(directory, backup_set, compose.settings.env)
    restore_set(compose, set_dir, services=service or [], tools_image=compose.settings.tools_image,
                confirm=lambda question: yes or _confirm(question), from_other_env=from_other_env,
                safety_dir=None if no_safety_set else directory / SAFETY_DIR)  # fmt: skip


backup = Collection("backup")
backup.add_task(backup_create, name="create", default=True)
backup.add_task(backup_list, name="list")
backup.add_task(backup_verify, name="verify")
backup.add_task(restore, name="restore")


# -- images ---------------------------------------------------------------------------------------------------


@stack_task(
    iterable=["service"],
    help={
        "service": "build only these local images (e.g. -s mysql); repeatable",
        "force": "rebuild even when an image is up to date",
        "trust_host_ca": "trust this host's CA bundle inside the images (default when it has one; TLS-intercepting "
        "proxies need it); --no-trust-host-ca builds without it",
        "ca_bundle": "a CA bundle file to trust inside the images instead of the host's",
        "env_file": "where to write the image overrides (default: local-images.env beside tasks.py)",
    },
)
def images_local(c, service=None, force=False, trust_host_ca=True, ca_bundle=None, env_file=None):
    """Build registry-free local equivalents of every third-party image and point the stack at them."""
    from enlaight_ops import local_images

    settings = _settings(c, prod=False)
    from enlaight_ops import doctor

    doctor.require(settings, "docker CLI", "engine")
    bundle = Path(ca_bundle) if ca_bundle else (local_images.default_ca_bundle() if trust_host_ca else None)
    if bundle is not None and not bundle.is_file():
        raise UsageError(f"CA bundle {bundle} does not exist: pass --ca-bundle PATH")
    target = Path(env_file) if env_file else settings.root / LOCAL_IMAGES_ENV_FILE
    images = local_images.build_local_images(
        images_dir=settings.images_dir,
        ca_bundle=bundle,
        env_file=target,
        only=service or None,
        force=force,
        log=ui.info,
    )
    ui.success(f"wrote {target} ({len(images)} images); tasks load {LOCAL_IMAGES_ENV_FILE} after .env")


images = Collection("images")
images.add_task(images_local, name="local")

namespace = Collection(
    env, build, start, wait, stop, down, restart, ps, logs, shell, manage, doctor, prune, seed, images, backup, restore
)
namespace.configure({"enlaight": dict(DEFAULTS)})

# -- upgrade ----------------------------------------------------------------------------------------------------
from enlaight_ops.upgrade.tasks import upgrade_task  # noqa: E402 - takes the helpers defined above

upgrade = upgrade_task(stack_task, _settings, _confirm, _seconds)
namespace.add_task(upgrade)

# -- swarm ------------------------------------------------------------------------------------------------------
from enlaight_ops.swarm.tasks import swarm_collection  # noqa: E402 - takes the helpers defined above

namespace.add_collection(swarm_collection(stack_task, _settings, _ensure_env_file, _confirm))
