"""Get every image a start needs onto the engine: already there, pulled, or built locally (`enlaight.images`).

- `auto` (default): an image that is missing is pulled; when no registry answers (an air-gapped host, CI), the
  registry-free recipe of `images.local` builds it instead, for that image alone, saying so and why. A tag the
  registry does not know is a mistake to report, not a reason to build something else.
- `registry`: never builds locally (Compose pulls as usual).
- `local`: never pulls; every missing image with a local recipe is built.

The deciding functions are pure (they read the merged config and classify `docker pull`'s answer) and are
unit-tested on captured engine answers; `ensure_images` does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .compose import Compose
from .errors import ToolkitError
from .runner import Result, run

Log = Callable[[str], object]
PullFailure = Literal["unreachable", "unknown-image", "other"]

# `${MYSQL_IMAGE:-mysql:8.4.3}` -> MYSQL_IMAGE: the variable a person sets to choose another image.
_VARIABLE = re.compile(r"^\$\{(\w+)")
LOCAL_PREFIX = "enlaight-local/"


@dataclass(frozen=True)
class NeededImage:
    service: str
    reference: str  # as Compose will use it, after interpolation
    variable: str | None  # the env variable selecting it, when there is one
    role: Literal["image", "base"]  # a service's own image, or a base its Dockerfile builds FROM

    def describe(self) -> str:
        what = "base" if self.role == "base" else "image"
        return f"{self.service}: {what} {self.reference}"


def needed_images(
    config: Mapping[str, Any],
    raw_config: Mapping[str, Any],
    services: Sequence[str],
    *,
    build: bool,
    present: Callable[[str], bool],
) -> list[NeededImage]:
    """The images `up` (and `build` when asked) will need for `services`, one entry per reference.

    A built service needs its Dockerfile bases (its `*_IMAGE` build args) only when its own image will be
    built: `--build`, or the image is not there yet. A service that runs an image another selected service
    builds (superset runs what superset-init builds) needs nothing of its own.
    """
    all_services = config.get("services", {})
    raw_services = raw_config.get("services", {})
    built_here = {all_services[name].get("image") for name in services if "build" in all_services.get(name, {})}
    needed: dict[str, NeededImage] = {}
    for name in services:
        service, raw = all_services.get(name, {}), raw_services.get(name, {})
        if "build" in service:
            if build or not present(service.get("image", "")):
                raw_args = (raw.get("build") or {}).get("args") or {}
                for arg, reference in sorted((service["build"].get("args") or {}).items()):
                    if arg.endswith("_IMAGE") and reference:
                        variable = _variable(raw_args.get(arg)) or arg
                        needed.setdefault(reference, NeededImage(name, reference, variable, "base"))
        elif service.get("image") and service["image"] not in built_here:
            needed.setdefault(
                service["image"], NeededImage(name, service["image"], _variable(raw.get("image")), "image")
            )
    return list(needed.values())


def _variable(raw_value: Any) -> str | None:
    match = _VARIABLE.match(str(raw_value or ""))
    return match.group(1) if match else None


_UNREACHABLE = (
    "no such host", "dial tcp", "i/o timeout", "connection refused", "network is unreachable",
    "tls handshake timeout", "temporary failure in name resolution", "server misbehaving",
    "client.timeout exceeded", "connection reset by peer", "no route to host",
)  # fmt: skip
_UNKNOWN_IMAGE = ("manifest unknown", "not found", "repository does not exist", "pull access denied")


def classify_pull_failure(output: str) -> PullFailure:
    """Why `docker pull` failed: no registry answers, the registry does not know the image, or something else.

    Reachability is tested first: Docker Hub says "pull access denied ... may require docker login" only when it
    answered, and a DNS failure can mention the missing manifest's URL.
    """
    lowered = output.lower()
    if any(needle in lowered for needle in _UNREACHABLE):
        return "unreachable"
    if any(needle in lowered for needle in _UNKNOWN_IMAGE):
        return "unknown-image"
    return "other"


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class Plan:
    """What to do about the missing images: which local recipes to build, and why each one."""

    build: dict[str, str]  # local image name -> the reason, for the one line that says so


def plan_missing(
    missing: Iterable[NeededImage],
    policy: str,
    pull: Callable[[str], tuple[bool, str]],
    recipes: Mapping[str, str],
) -> Plan:
    """Decide, image by image; raise one clear line for what cannot be had. `recipes`: variable -> local name."""
    to_build: dict[str, str] = {}
    for image in missing:
        if policy == "registry":
            continue  # Compose pulls it, and reports a failure in its own words
        reason = "policy local"
        if policy == "auto" and not image.reference.startswith(LOCAL_PREFIX):
            pulled, output = pull(image.reference)
            if pulled:
                continue
            kind = classify_pull_failure(output)
            if kind != "unreachable":
                fix = f"check {image.variable} in .env" if image.variable else "check the compose file"
                what = "does not exist in its registry" if kind == "unknown-image" else "cannot be pulled"
                raise ToolkitError(f"{image.describe()} {what} ({last_line(output)}) - {fix}")
            reason = "registry unreachable"
        local = recipes.get(image.variable or "")
        if local is None:
            choose = f"set {image.variable} in .env to an image this host has" if image.variable else "pull it"
            raise ToolkitError(
                f"{image.describe()} is not on this engine and cannot be pulled ({reason}), and there is no "
                f"local recipe for it - {choose}"
            )
        to_build.setdefault(local, f"{image.describe()} is not on this engine ({reason})")
    return Plan(to_build)


# ------------------------------------------------------------------------------------------------ engine I/O


def image_present(reference: str) -> bool:
    return bool(reference) and _docker("image", "inspect", "--format", "{{.Id}}", reference).returncode == 0


def pull_image(reference: str) -> tuple[bool, str]:
    result = _docker("pull", "--quiet", reference)
    return result.returncode == 0, (result.stderr or result.stdout or "")


def _docker(*args: str) -> Result:
    return run(["docker", *args], check=False)


def ensure_images(compose: Compose, services: Sequence[str], *, build: bool, log: Log) -> None:
    """Make every image `services` need available under the stack's policy; rebuilds the config if it changed."""
    from . import local_images  # its recipes are only read when something is missing

    settings = compose.settings
    needed = needed_images(compose.config, {}, services, build=build, present=image_present)
    if all(image_present(image.reference) for image in needed):
        return  # the usual case: no second `compose config` (for the variable names) is needed
    needed = needed_images(compose.config, compose.raw_config, services, build=build, present=image_present)
    missing = [image for image in needed if not image_present(image.reference)]
    recipes = {image.env_key: image.name for image in local_images.IMAGES if image.env_key}
    plan = plan_missing(missing, settings.images, pull_image, recipes)
    if not plan.build:
        return
    for name, why in plan.build.items():
        log(f"{why}: building it locally from Debian packages (`invoke images.local -s {name}`)")
    local_images.build_local_images(
        images_dir=settings.images_dir,
        ca_bundle=local_images.default_ca_bundle(),
        env_file=settings.local_images_env_file,
        only=list(plan.build),
        log=log,
    )
    compose.reload()
