"""Build registry-less ("local") equivalents of the stack's third-party images.

Where no container registry is reachable nothing can be pulled, so every image the stack runs has to
be built here, from Debian packages only:

1. ``enlaight-local/debian:bookworm``: ``debootstrap --variant=minbase`` into a temporary directory,
   streamed with ``tar`` into ``docker import``.
2. Every other image: ``docker build`` of ``images/<name>/Dockerfile`` on top of that base (or of the
   local python image), each with an entrypoint that honours the official image's contract.

Each image carries the label ``org.enlaight.local-image.hash``: a digest of its recipe (its folder
under ``images/``, the hashes of the images it is built from and the CA bundle). An image whose tag
already carries the expected hash is reused, so a second run builds nothing.

A CA bundle (for TLS-intercepting proxies) is copied into the base image's root filesystem while it
is still a temporary directory -- never into the repository -- and SSL_CERT_FILE, PIP_CERT,
REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS point at it in every image built on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from enlaight_ops.errors import LocalImagesError

Log = Callable[[str], object]

HASH_LABEL = "org.enlaight.local-image.hash"
NAME_LABEL = "org.enlaight.local-image.name"
IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"

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
)


def default_ca_bundle() -> Path | None:
    """The host's CA bundle when it has one: trusting it costs nothing, and without it pip and npm fail behind a
    TLS-intercepting proxy with messages that never mention TLS."""
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


# What a person waits for on a cold build (measured on 2 cores); the others take seconds.
SLOW_IMAGES = {"n8n": "several minutes: npm installs ~1.8 GB", "superset": "a few minutes: pip installs ~1 GB"}


# --------------------------------------------------------------------------------------------------
# Pure logic: build order, hashes, apt sources, env file.
# --------------------------------------------------------------------------------------------------


def resolve_names(images: Sequence[LocalImage], only: Iterable[str] | None) -> list[str]:
    """Names of the images `only` asks for (names, tags or env keys); all images when None."""
    if only is None:
        return [image.name for image in images]
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
    for image in build_order(images):
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


# --------------------------------------------------------------------------------------------------
# Docker / debootstrap plumbing.
# --------------------------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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


def _run_logged(argv: Sequence[str], what: str, log: Log, env: Mapping[str, str] | None = None) -> None:
    """Run a long command with its output in a log file, its current step shown live; on failure show the tail.

    The output goes to a file, not the terminal, because builds print thousands of lines; the step and the
    elapsed time say it is moving, the tail explains a failure, and the file keeps the rest.
    """
    from .progress import build_progress

    fd, name = tempfile.mkstemp(prefix="enlaight-images-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "w") as out, build_progress(what, log) as progress:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                    errors="replace")  # fmt: skip
        except OSError as exc:
            raise LocalImagesError(f"{what}: cannot run {argv[0]}: {exc}") from exc
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            out.write(line)
            progress.line(line)
        returncode = proc.wait()
    if returncode != 0:
        tail = _tail(log_path)
        log(tail)
        hint = tls_hint(tail)
        raise LocalImagesError(
            f"{what} failed (exit {returncode}); full output in {log_path}" + (f" - {hint}" if hint else "")
        )
    log_path.unlink()


def _docker_env() -> dict[str, str]:
    """Environment for `docker build`: the classic builder when the buildx plugin is missing.

    Without buildx, a `DOCKER_BUILDKIT=1` inherited from the user's shell would make every build fail.
    """
    env = dict(os.environ)
    has_buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    if not has_buildx:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def image_hash_label(tag: str) -> str | None:
    """The hash label of a local image, or None if the tag does not exist (or has no label)."""
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{HASH_LABEL}" }}}}', tag],
        capture_output=True,
        text=True,
        check=False,
    )
    value = proc.stdout.strip()
    if proc.returncode != 0 or value in ("", "<no value>"):
        return None
    return value


def _image_id(tag: str) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def _remove_replaced(old_id: str | None, tag: str, log: Log) -> None:
    """Drop the image a rebuild replaced, so repeated rebuilds do not pile up untagged images.

    No --force: if a container or another image still uses it, Docker refuses and it stays.
    """
    if old_id is None or old_id == _image_id(tag):
        return
    proc = subprocess.run(["docker", "image", "rm", old_id], capture_output=True, check=False)
    if proc.returncode == 0:
        log(f"images: removed the replaced image {old_id[:19]}")


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything debootstrap left mounted (proc, sys) below `root` if it was interrupted.

    Deleting the tree with /proc still mounted inside would walk into the host's /proc.
    """
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _remove_rootfs(tmp: Path, log: Log) -> None:
    _unmount_below(tmp)
    prefix = str(tmp.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        if any(line.split()[1].startswith(prefix) for line in mounts):
            log(f"images: WARNING: {tmp} still has mounts below it; not deleting it")
            return
    shutil.rmtree(tmp, ignore_errors=True)


def _empty_dir(path: Path, keep: Callable[[Path], bool] = lambda _p: False) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if keep(child):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _prepare_rootfs(root: Path, overlay: Path, sources_list: str, ca_bundle: Path | None) -> None:
    """Turn a fresh debootstrap tree into an image root: container apt/dpkg settings, the CA, no caches."""
    if overlay.is_dir():
        shutil.copytree(overlay, root, symlinks=True, dirs_exist_ok=True)
    (root / "etc/apt/sources.list").write_text(sources_list)
    if ca_bundle is not None:
        target = root / CA_PATH_IN_IMAGE.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_bundle, target)
        target.chmod(0o644)
    # debootstrap copies the host's name resolution files; Docker mounts its own at run time.
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    # What the dpkg excludes (images/debian/rootfs) keep out of later installs, and apt's caches.
    _empty_dir(root / "var/lib/apt/lists", keep=lambda p: p.name in ("lock", "partial"))
    _empty_dir(root / "var/cache/apt", keep=lambda p: p.name == "archives")
    _empty_dir(root / "var/cache/apt/archives", keep=lambda p: p.name in ("lock", "partial"))
    _empty_dir(root / "usr/share/man")
    _empty_dir(root / "usr/share/info")
    _empty_dir(root / "usr/share/locale", keep=lambda p: p.name == "locale.alias")
    for doc in (root / "usr/share/doc").glob("*"):
        if doc.is_dir() and not doc.is_symlink():
            _empty_dir(doc, keep=lambda p: p.name == "copyright")
    (root / "var/log/bootstrap.log").unlink(missing_ok=True)


def _import_changes(image_hash: str, ca_bundle: Path | None) -> list[str]:
    """`docker import --change` instructions: what a Dockerfile would say on top of the tarball."""
    changes = [
        f"ENV PATH={BASE_PATH}",
        "ENV LANG=C.UTF-8",
        'CMD ["bash"]',
        f"LABEL {HASH_LABEL}={image_hash} {NAME_LABEL}=debian",
    ]
    if ca_bundle is not None:
        changes += [f"ENV {var}={CA_PATH_IN_IMAGE}" for var in CA_ENV_VARS]
    return [arg for change in changes for arg in ("--change", change)]


def _build_debian(
    image: LocalImage, image_hash: str, ca_bundle: Path | None, mirrors: tuple[str, str], log: Log
) -> None:
    if shutil.which("debootstrap") is None:
        raise LocalImagesError("debootstrap is not installed: run `apt-get install debootstrap` and retry")
    if os.geteuid() != 0:
        raise LocalImagesError("building the Debian base image needs root (debootstrap creates device files)")
    main, security = mirrors
    tmp = Path(tempfile.mkdtemp(prefix="enlaight-debian-"))
    root = tmp / "rootfs"
    try:
        started = time.monotonic()
        log(f"images: debian: debootstrap --variant={VARIANT} {SUITE} from {main} ...")
        _run_logged(["debootstrap", f"--variant={VARIANT}", SUITE, str(root), main], "debootstrap", log)
        log(f"images: debian: debootstrap done in {time.monotonic() - started:.1f}s")
        _prepare_rootfs(root, IMAGES_DIR / "debian" / "rootfs", image_sources_list(main, security), ca_bundle)

        started = time.monotonic()
        # Streamed: the tarball never touches the disk. --numeric-owner keeps the tree's own uids.
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if tar.stdout is None:  # cannot happen with stdout=PIPE; narrows the type
            raise LocalImagesError("tar produced no output stream")
        imp = subprocess.Popen(
            ["docker", "import", *_import_changes(image_hash, ca_bundle), "-", image.tag],
            stdin=tar.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        tar.stdout.close()  # so tar gets SIGPIPE if docker import dies
        _out, imp_err = imp.communicate()
        tar_err = tar.stderr.read() if tar.stderr else b""
        tar_rc = tar.wait()
        if tar_rc != 0 or imp.returncode != 0:
            reason = (imp_err or tar_err).decode(errors="replace").strip()
            raise LocalImagesError(f"importing the Debian root filesystem failed: {reason or 'no message'}")
        log(f"images: debian: docker import done in {time.monotonic() - started:.1f}s")
    finally:
        _remove_rootfs(tmp, log)


def _build_dockerfile(image: LocalImage, image_hash: str, force: bool, docker_env: Mapping[str, str], log: Log) -> None:
    context = IMAGES_DIR / image.name
    if not (context / "Dockerfile").is_file():
        raise LocalImagesError(f"missing {context / 'Dockerfile'}")
    tags = {known.name: known.tag for known in IMAGES}
    argv = [
        "docker",
        "build",
        "--tag",
        image.tag,
        "--label",
        f"{HASH_LABEL}={image_hash}",
        "--label",
        f"{NAME_LABEL}={image.name}",
    ]
    for arg, base in image.bases:
        argv += ["--build-arg", f"{arg}={tags[base]}"]
    # RUN steps only download packages: the host's network is enough, and the build then does not
    # depend on the engine's default bridge (docker0), which is missing on some engines.
    argv += ["--network", "host"]
    if force:
        argv.append("--no-cache")  # a forced rebuild should also pick up new Debian package versions
    if docker_env.get("DOCKER_BUILDKIT") == "0":
        argv.append("--force-rm")  # classic builder: leave no intermediate containers behind on failure
    argv += ["--file", str(context / "Dockerfile"), str(context)]
    _run_logged(argv, f"docker build of {image.tag}", log, env=docker_env)


# --------------------------------------------------------------------------------------------------
# Entry point.
# --------------------------------------------------------------------------------------------------


LOCK_FILE = Path(tempfile.gettempdir()) / "enlaight-local-images.lock"


def build_local_images(
    *,
    ca_bundle: Path | None,
    env_file: Path,
    only: list[str] | None = None,
    force: bool = False,
    log: Log = print,
) -> dict[str, str]:
    """Build (or reuse) the local images, write `env_file` and return its env key -> tag mapping.

    `only` limits the run to some images (names like "mysql", tags or env keys); the images they are
    built from are included but only rebuilt if out of date. `force` rebuilds the selected images
    without Docker's layer cache even when they are up to date.
    """
    # Two runs at once (two terminals, `start` beside `images.local`, parallel tests) would build the same tags
    # over each other: the second waits, then finds the images up to date.
    with open(LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"images: another build of local images is running; waiting for it ({LOCK_FILE})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(ca_bundle=ca_bundle, env_file=env_file, only=only, force=force, log=log)


def _build_locked(
    *, ca_bundle: Path | None, env_file: Path, only: list[str] | None, force: bool, log: Log
) -> dict[str, str]:
    total_started = time.monotonic()
    if ca_bundle is not None and not ca_bundle.is_file():
        raise LocalImagesError(f"CA bundle {ca_bundle} does not exist")
    docker_env = _docker_env()

    mirrors = host_mirrors()
    debian_extra = {
        "suite": SUITE,
        "variant": VARIANT,
        "mirror": mirrors[0],
        "security": mirrors[1],
        "recipe": ROOTFS_RECIPE_VERSION,
    }
    hashes = compute_hashes(IMAGES, IMAGES_DIR, ca_digest(ca_bundle), debian_extra)
    selected = set(resolve_names(IMAGES, only))  # `force` applies to these, not to the bases they pull in

    for image in build_order(IMAGES, only):
        wanted = hashes[image.name]
        forced = force and image.name in selected
        if not forced and image_hash_label(image.tag) == wanted:
            log(f"images: {image.name}: up to date ({image.tag})")
            continue
        started = time.monotonic()
        old_id = _image_id(image.tag)
        log(f"images: {image.name}: building {image.tag} ..." + (f" (a first build takes {SLOW_IMAGES[image.name]})"
            if image.name in SLOW_IMAGES else ""))  # fmt: skip
        if image.name == "debian":
            _build_debian(image, wanted, ca_bundle, mirrors, log)
        else:
            _build_dockerfile(image, wanted, forced, docker_env, log)
        log(f"images: {image.name}: built {image.tag} in {time.monotonic() - started:.1f}s")
        _remove_replaced(old_id, image.tag, log)

    # Only images that now carry their expected hash go into the env file: a stale or missing one
    # would make compose run something other than what this checkout describes.
    available = [image.name for image in IMAGES if image_hash_label(image.tag) == hashes[image.name]]
    mapping = env_mapping(IMAGES, available)
    missing = [image.name for image in IMAGES if image.env_key and image.name not in available]
    if missing and only is None:
        log(f"images: not built: {', '.join(missing)}")
    write_env_file(env_file, mapping)
    log(f"images: wrote {env_file} ({len(mapping)} images); total {time.monotonic() - total_started:.1f}s")
    return mapping
