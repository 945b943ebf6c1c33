"""The registry-free images as data and pure rules: which images, built from what, in which order, under which
hash, into which env file; where Debian's packages come from. Unit-tested without Docker (build.py does the I/O).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalImagesError

Log = Callable[[str], object]

HASH_LABEL = "org.enlaight.local-image.hash"
NAME_LABEL = "org.enlaight.local-image.name"

SUITE = "bookworm"
VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Bump when _prepare_rootfs changes what ends up in the base image: the hash cannot see Python code.
ROOTFS_RECIPE_VERSION = "1"

# Debian's system bundle: what `--trust-host-ca` copies in (it holds an intercepting proxy's CA too).
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_PATH_IN_IMAGE = "/usr/local/share/enlaight/ca-bundle.crt"
CA_ENV_VARS = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Keys of the env file, in the order the README lists the image variables.
ENV_KEYS = (
    "MYSQL_IMAGE", "POSTGRES_IMAGE", "REDIS_IMAGE", "SMTP_IMAGE", "NGINX_IMAGE", "PYTHON_IMAGE", "NODE_IMAGE",
    "N8N_IMAGE", "SUPERSET_IMAGE",
)  # fmt: skip


@dataclass(frozen=True)
class LocalImage:
    name: str  # folder under images/, also the name `only` accepts
    tag: str
    env_key: str | None  # compose / Dockerfile variable this image stands in for
    bases: tuple[tuple[str, str], ...] = ()  # (Dockerfile ARG, name of the local image it names)
    default: bool = True  # built by a plain `images.local`; False: only when asked for by name


IMAGES: tuple[LocalImage, ...] = (
    LocalImage("debian", "enlaight-local/debian:bookworm", None),
    LocalImage("python", "enlaight-local/python:3.11", "PYTHON_IMAGE", (("BASE_IMAGE", "debian"),)),
    LocalImage("mysql", "enlaight-local/mysql:mariadb-10.11", "MYSQL_IMAGE", (("BASE_IMAGE", "debian"),)),
    LocalImage("postgres", "enlaight-local/postgres:15", "POSTGRES_IMAGE", (("BASE_IMAGE", "debian"),)),
    LocalImage("redis", "enlaight-local/redis:7.0", "REDIS_IMAGE", (("BASE_IMAGE", "debian"),)),
    LocalImage("nginx", "enlaight-local/nginx:1.22", "NGINX_IMAGE", (("BASE_IMAGE", "debian"),)),
    LocalImage("smtp-sink", "enlaight-local/smtp-sink:1", "SMTP_IMAGE", (("BASE_IMAGE", "python"),)),
    LocalImage("node", "enlaight-local/node:22", "NODE_IMAGE", (("BASE_IMAGE", "debian"), ("FETCH_IMAGE", "python"))),
    # n8n from npm: the slowest image (minutes, ~1.8 GB), built by default because n8n is part of every stack.
    LocalImage("n8n", "enlaight-local/n8n:1.123.81", "N8N_IMAGE", (("BASE_IMAGE", "node"),)),
    LocalImage("superset", "enlaight-local/superset:4.1.2", "SUPERSET_IMAGE", (("BASE_IMAGE", "python"),)),
    # A registry for Swarm (nodes pull from it): tests and air-gapped hosts ask for it, the stack does not run it.
    LocalImage("registry", "enlaight-local/registry:2.8", None, (("BASE_IMAGE", "debian"),), default=False),
)


def default_ca_bundle() -> Path | None:
    """The host's CA bundle when it has one: trusting it costs nothing, and without it pip and npm fail behind a
    TLS-intercepting proxy with messages that never mention TLS."""
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


# What a person waits for on a cold build (measured on 2 cores); the others take seconds.
SLOW_IMAGES = {"n8n": "3-4 minutes: npm installs ~1.8 GB", "superset": "a few minutes: pip installs ~1 GB"}


# --------------------------------------------------------------------------------------------------
# Pure logic: build order, hashes, apt sources, env file.
# --------------------------------------------------------------------------------------------------


def resolve_names(images: Sequence[LocalImage], only: Iterable[str] | None) -> list[str]:
    """Names of the images `only` asks for (names, tags or env keys); the default images when None."""
    if only is None:
        return [image.name for image in images if image.default]
    aliases = {alias: image.name for image in images for alias in (image.name, image.tag, image.env_key) if alias}
    only = list(only)
    unknown = [item for item in only if item not in aliases]
    if unknown:
        known = ", ".join(image.name for image in images)
        raise LocalImagesError(f"unknown local image(s) {', '.join(unknown)}; known: {known}")
    return [aliases[item] for item in only]


def build_order(images: Sequence[LocalImage], only: Iterable[str] | None = None) -> list[LocalImage]:
    """Images to build, bases first; `only` pulls in the images the selected ones are built from.

    The order is the declaration order wherever dependencies allow, so logs are predictable.
    """
    by_name = {image.name: image for image in images}
    wanted = resolve_names(images, only)
    needed: set[str] = set()

    def need(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise LocalImagesError(f"local images form a cycle: {' -> '.join((*chain, name))}")
        if name not in by_name:
            raise LocalImagesError(f"local image {chain[-1]!r} is built from unknown image {name!r}")
        needed.add(name)
        for _arg, base in by_name[name].bases:
            need(base, (*chain, name))

    for name in wanted:
        need(name, ())

    ordered: list[LocalImage] = []
    done: set[str] = set()
    while len(ordered) < len(needed):
        for image in images:
            if image.name in needed and image.name not in done and all(b in done for _a, b in image.bases):
                ordered.append(image)
                done.add(image.name)
                break
    return ordered


def tree_digest(root: Path) -> str:
    """sha256 over every file below `root`: relative path, executable bit and content.

    The executable bit counts because entrypoints stop working without it; byte-code caches do not.
    """
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in root.rglob("*")
        if (path.is_file() or path.is_symlink()) and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            kind, data = "l", os.readlink(path).encode()
        else:
            kind, data = ("x" if os.access(path, os.X_OK) else "f"), path.read_bytes()
        digest.update(f"{rel}\0{kind}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def ca_digest(ca_bundle: Path | None) -> str:
    """Digest of the CA bundle, or "none": a new or removed bundle must rebuild every image."""
    if ca_bundle is None:
        return "none"
    return hashlib.sha256(ca_bundle.read_bytes()).hexdigest()


def recipe_hash(
    dir_digest: str, base_hashes: Mapping[str, str], ca: str, extra: Mapping[str, str] | None = None
) -> str:
    """The label value: one sha256 over everything that decides what an image contains."""
    lines = [f"dir={dir_digest}", f"ca={ca}"]
    lines += [f"base:{arg}={value}" for arg, value in sorted(base_hashes.items())]
    lines += [f"extra:{key}={value}" for key, value in sorted((extra or {}).items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def compute_hashes(
    images: Sequence[LocalImage],
    images_dir: Path,
    ca: str,
    debian_extra: Mapping[str, str],
) -> dict[str, str]:
    """Hash of every image, bases before dependants (a base's hash is part of its dependants')."""
    hashes: dict[str, str] = {}
    for image in build_order(images, [image.name for image in images]):  # every image, not just the defaults
        folder = images_dir / image.name
        dir_digest = tree_digest(folder) if folder.is_dir() else "absent"
        bases = {arg: hashes[base] for arg, base in image.bases}
        extra = debian_extra if not image.bases else None
        hashes[image.name] = recipe_hash(dir_digest, bases, ca, extra)
    return hashes


def parse_apt_sources(text: str) -> list[tuple[str, str]]:
    """(URI, suite) pairs of the `deb` entries in a sources.list or deb822 .sources text."""
    pairs: list[tuple[str, str]] = []
    if any(line.strip().lower().startswith(("types:", "uris:")) for line in text.splitlines()):
        for paragraph in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in paragraph.splitlines():
                if line.strip().startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            pairs += [
                (uri, suite) for uri in fields.get("uris", "").split() for suite in fields.get("suites", "").split()
            ]
        return pairs
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options like [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            pairs.append((words[0], words[1]))
    return pairs


def pick_mirrors(pairs: Iterable[tuple[str, str]], suite: str = SUITE) -> tuple[str, str]:
    """The host's Debian mirror and security mirror, if it uses plain http ones; else deb.debian.org.

    Only http:// is taken: apt inside the image has no CA certificates, and Debian's archive is signed,
    so https adds nothing here.
    """
    main, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    found_main = found_security = False
    for uri, pair_suite in pairs:
        if not uri.startswith("http://"):
            continue
        if pair_suite == suite and not found_main:
            main, found_main = uri.rstrip("/"), True
        elif pair_suite == f"{suite}-security" and not found_security:
            security, found_security = uri.rstrip("/"), True
    return main, security


def host_mirrors(apt_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """pick_mirrors over the host's apt configuration (missing or unreadable files are skipped)."""
    files = [apt_dir / "sources.list"]
    files += sorted((apt_dir / "sources.list.d").glob("*.list")) + sorted(
        (apt_dir / "sources.list.d").glob("*.sources")
    )
    pairs: list[tuple[str, str]] = []
    for path in files:
        try:
            pairs += parse_apt_sources(path.read_text(errors="replace"))
        except OSError:
            continue
    return pick_mirrors(pairs)


def image_sources_list(main: str, security: str, suite: str = SUITE) -> str:
    """The base image's /etc/apt/sources.list: release, point updates and security updates."""
    return f"deb {main} {suite} main\ndeb {main} {suite}-updates main\ndeb {security} {suite}-security main\n"


def env_mapping(images: Sequence[LocalImage], available: Iterable[str]) -> dict[str, str]:
    """env key -> tag for the images in `available` (names), in the spec's key order."""
    names = set(available)
    by_key = {image.env_key: image.tag for image in images if image.env_key and image.name in names}
    return {key: by_key[key] for key in ENV_KEYS if key in by_key}


def env_file_text(mapping: Mapping[str, str]) -> str:
    header = (
        "# Written by `invoke images.local` (enlaight_ops.local_images): registry-less local images.\n"
        "# Use with e.g. `docker compose --env-file .env --env-file local-images.env ...`.\n"
    )
    return header + "".join(f"{key}={value}\n" for key, value in mapping.items())


def write_env_file(path: Path, mapping: Mapping[str, str]) -> None:
    """Write atomically: a half-written file would silently point compose at official images."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(env_file_text(mapping))
    tmp.replace(path)


# pip hides a TLS failure behind "(from versions: none)"; npm and curl name it.
_TLS_SYMPTOMS = (
    "(from versions: none)", "certificate verify failed", "unable to get local issuer certificate",
    "self signed certificate", "self_signed_cert_in_chain", "unable_to_get_issuer_cert", "sslerror",
)  # fmt: skip
TLS_HINT = (
    "this looks like TLS interception (a proxy re-signing HTTPS): trust its CA with --ca-bundle PATH, or install "
    f"it into {HOST_CA_BUNDLE} (trusted by default)"
)


def tls_hint(output: str) -> str | None:
    lowered = output.lower()
    return TLS_HINT if any(symptom in lowered for symptom in _TLS_SYMPTOMS) else None
