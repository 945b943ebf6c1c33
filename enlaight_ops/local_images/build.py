"""Building the registry-free images: debootstrap and `docker import` for the Debian base, `docker build` for the
rest, a lock so two builds never race, and the env file of what was built."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import LocalImagesError
from ..runner import run
from .recipes import (
    BASE_PATH,
    CA_ENV_VARS,
    CA_PATH_IN_IMAGE,
    HASH_LABEL,
    IMAGES,
    NAME_LABEL,
    ROOTFS_RECIPE_VERSION,
    SLOW_IMAGES,
    SUITE,
    VARIANT,
    LocalImage,
    Log,
    build_order,
    ca_digest,
    compute_hashes,
    env_mapping,
    host_mirrors,
    image_sources_list,
    resolve_names,
    tls_hint,
    write_env_file,
)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_logged(argv: Sequence[str], what: str, log: Log, env: Mapping[str, str] | None = None) -> None:
    """Run a long command with its output in a log file, its current step shown live; on failure show the tail.

    The output goes to a file, not the terminal, because builds print thousands of lines; the step and the
    elapsed time say it is moving, the tail explains a failure, and the file keeps the rest.
    """
    from ..progress import build_progress

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
    if not run(["docker", "buildx", "version"], check=False).ok:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def image_hash_label(tag: str) -> str | None:
    """The hash label of a local image, or None if the tag does not exist (or has no label)."""
    result = run(["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{HASH_LABEL}" }}}}', tag],
                 check=False)  # fmt: skip
    value = result.stdout.strip()
    if not result.ok or value in ("", "<no value>"):
        return None
    return value


def _image_id(tag: str) -> str | None:
    result = run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], check=False)
    return (result.stdout.strip() or None) if result.ok else None


def _remove_replaced(old_id: str | None, tag: str, log: Log) -> None:
    """Drop the image a rebuild replaced, so repeated rebuilds do not pile up untagged images.

    No --force: if a container or another image still uses it, Docker refuses and it stays.
    """
    if old_id is None or old_id == _image_id(tag):
        return
    if run(["docker", "image", "rm", old_id], check=False).ok:
        log(f"images: removed the replaced image {old_id[:19]}")


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything debootstrap left mounted (proc, sys) below `root` if it was interrupted.

    Deleting the tree with /proc still mounted inside would walk into the host's /proc.
    """
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        run(["umount", "-l", target], check=False)


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
    image: LocalImage, image_hash: str, ca_bundle: Path | None, mirrors: tuple[str, str], images_dir: Path, log: Log
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
        _prepare_rootfs(root, images_dir / "debian" / "rootfs", image_sources_list(main, security), ca_bundle)

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


def _build_dockerfile(
    image: LocalImage, image_hash: str, force: bool, docker_env: Mapping[str, str], images_dir: Path, log: Log
) -> None:
    context = images_dir / image.name
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
    images_dir: Path,
    ca_bundle: Path | None,
    env_file: Path,
    only: list[str] | None = None,
    force: bool = False,
    log: Log = print,
) -> dict[str, str]:
    """Build (or reuse) the local images from the recipes in `images_dir`, write `env_file` and return its env
    key -> tag mapping.

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
        return _build_locked(images_dir, ca_bundle=ca_bundle, env_file=env_file, only=only, force=force, log=log)


def _build_locked(
    images_dir: Path, *, ca_bundle: Path | None, env_file: Path, only: list[str] | None, force: bool, log: Log
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
    hashes = compute_hashes(IMAGES, images_dir, ca_digest(ca_bundle), debian_extra)
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
            _build_debian(image, wanted, ca_bundle, mirrors, images_dir, log)
        else:
            _build_dockerfile(image, wanted, forced, docker_env, images_dir, log)
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
