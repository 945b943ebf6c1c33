"""Pure logic of enlaight_ops.local_images: order, hashes, apt sources, env file. No Docker here."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from enlaight_ops.errors import LocalImagesError
from enlaight_ops.local_images import build
from enlaight_ops.local_images import recipes as li
from enlaight_ops.local_images.recipes import IMAGES, LocalImage

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"

# ------------------------------------------------------------------ build order


def names(images: list[LocalImage]) -> list[str]:
    return [image.name for image in images]


def test_full_order_puts_every_base_before_its_dependants() -> None:
    order = names(li.build_order(IMAGES))
    assert order[0] == "debian"
    assert sorted(order) == sorted(image.name for image in IMAGES if image.default)
    for image in IMAGES:
        for _arg, base in image.bases if image.default else ():
            assert order.index(base) < order.index(image.name)


def test_only_pulls_in_bases_and_nothing_else() -> None:
    assert names(li.build_order(IMAGES, ["node"])) == ["debian", "python", "node"]
    assert names(li.build_order(IMAGES, ["redis"])) == ["debian", "redis"]


def test_only_accepts_tags_and_env_keys() -> None:
    assert names(li.build_order(IMAGES, ["enlaight-local/smtp-sink:1"])) == ["debian", "python", "smtp-sink"]
    assert names(li.build_order(IMAGES, ["MYSQL_IMAGE"])) == ["debian", "mysql"]


def test_unknown_name_is_one_clear_error() -> None:
    with pytest.raises(LocalImagesError, match="unknown local image.*nope"):
        li.build_order(IMAGES, ["nope"])


def test_cycle_is_reported() -> None:
    images = (LocalImage("a", "x/a:1", None, (("B", "b"),)), LocalImage("b", "x/b:1", None, (("A", "a"),)))
    with pytest.raises(LocalImagesError, match="cycle"):
        li.build_order(images)


def test_order_follows_declaration_when_free() -> None:
    images = (
        LocalImage("late", "x/late:1", None, (("BASE_IMAGE", "root"),)),
        LocalImage("root", "x/root:1", None),
        LocalImage("early", "x/early:1", None, (("BASE_IMAGE", "root"),)),
    )
    assert names(li.build_order(images)) == ["root", "late", "early"]


def test_image_table_matches_spec() -> None:
    tags = {image.env_key: image.tag for image in IMAGES if image.env_key}
    assert tags == {
        "MYSQL_IMAGE": "enlaight-local/mysql:mariadb-10.11",
        "POSTGRES_IMAGE": "enlaight-local/postgres:15",
        "REDIS_IMAGE": "enlaight-local/redis:7.0",
        "SMTP_IMAGE": "enlaight-local/smtp-sink:1",
        "NGINX_IMAGE": "enlaight-local/nginx:1.22",
        "PYTHON_IMAGE": "enlaight-local/python:3.11",
        "NODE_IMAGE": "enlaight-local/node:22",
        "N8N_IMAGE": "enlaight-local/n8n:1.123.81",
        "SUPERSET_IMAGE": "enlaight-local/superset:4.1.2",
    }


def test_local_superset_is_the_version_the_compose_file_pins() -> None:
    """One Superset version both ways: the official image's tag, the local tag and the PyPI release it installs."""
    compose = (IMAGES_DIR.parent / "docker-compose.yml").read_text()
    official = set(re.findall(r"\$\{SUPERSET_IMAGE:-apache/superset:([^}]+)\}", compose))
    local = next(image.tag for image in IMAGES if image.env_key == "SUPERSET_IMAGE").rsplit(":", 1)[1]
    folder = IMAGES_DIR / "superset"
    wanted = re.findall(r"^apache-superset(?:\[[^]]*\])?==(\S+)$", (folder / "requirements.in").read_text(), re.M)
    locked = re.findall(r"^apache-superset==(\S+)$", (folder / "constraints.txt").read_text(), re.M)
    assert official == {local} and wanted == [local] and locked == [local], (official, local, wanted, locked)


def test_superset_dockerfile_adds_what_the_local_image_already_has() -> None:
    """superset/Dockerfile pip-installs PyMySQL and flask-cors on either base: at the locked versions it is a no-op on
    the local image, so both images run the same versions."""
    dockerfile = (IMAGES_DIR.parent / "superset" / "Dockerfile").read_text()
    constraints = (IMAGES_DIR / "superset" / "constraints.txt").read_text()
    pins = {name.lower(): version for name, version in re.findall(r"\b([A-Za-z][\w-]*)==([\w.]+)", dockerfile)}
    locked = dict(re.findall(r"^([a-z][\w-]*)==(\S+)", constraints, re.M))
    assert pins and pins.items() <= locked.items(), pins


def test_every_dockerfile_image_has_a_folder_with_its_base_args() -> None:
    for image in IMAGES:
        if not image.bases:
            continue
        dockerfile = (IMAGES_DIR / image.name / "Dockerfile").read_text()
        for arg, _base in image.bases:
            assert f"ARG {arg}=" in dockerfile, (image.name, arg)


# ------------------------------------------------------------------ hashes


def make_tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM x\n")
    (root / "sub" / "entry.sh").write_text("#!/bin/sh\n")
    return root


def test_tree_digest_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    first = li.tree_digest(tree)
    assert li.tree_digest(tree) == first
    assert li.tree_digest(make_tree(tmp_path / "copy")) == first  # location does not matter

    (tree / "Dockerfile").write_text("FROM y\n")
    assert li.tree_digest(tree) != first


def test_tree_digest_sees_renames_and_exec_bit(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    first = li.tree_digest(tree)
    os.chmod(tree / "sub" / "entry.sh", 0o700)  # owner-executable is enough for os.access
    with_exec = li.tree_digest(tree)
    assert with_exec != first
    (tree / "sub" / "entry.sh").rename(tree / "sub" / "other.sh")
    assert li.tree_digest(tree) != with_exec


def test_tree_digest_ignores_bytecode(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    first = li.tree_digest(tree)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (tree / "stray.pyc").write_bytes(b"\0")
    assert li.tree_digest(tree) == first


def test_ca_digest(tmp_path: Path) -> None:
    assert li.ca_digest(None) == "none"
    bundle = tmp_path / "ca.crt"
    bundle.write_text("CERT A")
    first = li.ca_digest(bundle)
    bundle.write_text("CERT B")
    assert li.ca_digest(bundle) != first


def test_recipe_hash_depends_on_every_input() -> None:
    base = li.recipe_hash("dir", {"BASE_IMAGE": "b1"}, "none")
    assert li.recipe_hash("dir", {"BASE_IMAGE": "b1"}, "none") == base
    assert li.recipe_hash("dir2", {"BASE_IMAGE": "b1"}, "none") != base
    assert li.recipe_hash("dir", {"BASE_IMAGE": "b2"}, "none") != base
    assert li.recipe_hash("dir", {"BASE_IMAGE": "b1"}, "ca") != base
    assert li.recipe_hash("dir", {"BASE_IMAGE": "b1"}, "none", {"mirror": "m"}) != base


def fake_images_dir(tmp_path: Path) -> Path:
    for image in IMAGES:
        (tmp_path / image.name).mkdir()
        (tmp_path / image.name / "Dockerfile").write_text(f"# {image.name}\n")
    return tmp_path


def test_base_change_propagates_to_dependants_only(tmp_path: Path) -> None:
    images_dir = fake_images_dir(tmp_path)
    extra = {"mirror": "http://m"}
    before = li.compute_hashes(IMAGES, images_dir, "none", extra)
    assert len(set(before.values())) == len(IMAGES)

    (images_dir / "python" / "Dockerfile").write_text("# changed\n")
    after = li.compute_hashes(IMAGES, images_dir, "none", extra)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"python", "smtp-sink", "node", "n8n", "superset"}


def test_ca_and_debian_settings_change_every_hash(tmp_path: Path) -> None:
    images_dir = fake_images_dir(tmp_path)
    before = li.compute_hashes(IMAGES, images_dir, "none", {"mirror": "http://m"})
    with_ca = li.compute_hashes(IMAGES, images_dir, "abc", {"mirror": "http://m"})
    other_mirror = li.compute_hashes(IMAGES, images_dir, "none", {"mirror": "http://other"})
    for name in before:
        assert with_ca[name] != before[name]
        assert other_mirror[name] != before[name]


def test_real_images_folder_hashes_are_deterministic() -> None:
    extra = {"mirror": li.DEFAULT_MIRROR}
    assert li.compute_hashes(IMAGES, IMAGES_DIR, "none", extra) == li.compute_hashes(IMAGES, IMAGES_DIR, "none", extra)


# ------------------------------------------------------------------ apt sources


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no
"""

ONE_LINE = """\
# comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://src.example/debian bookworm main
deb https://secure.example/debian bookworm main
"""


def test_parse_deb822() -> None:
    assert li.parse_apt_sources(DEB822) == [
        ("http://deb.debian.org/debian", "bookworm"),
        ("http://deb.debian.org/debian", "bookworm-updates"),
        ("http://security.example/debian-security", "bookworm-security"),
    ]


def test_parse_one_line_format() -> None:
    assert li.parse_apt_sources(ONE_LINE) == [
        ("http://mirror.example/debian", "bookworm"),
        ("https://secure.example/debian", "bookworm"),
    ]


def test_pick_mirrors_prefers_host_http_mirrors() -> None:
    pairs = li.parse_apt_sources(DEB822)
    assert li.pick_mirrors(pairs) == ("http://deb.debian.org/debian", "http://security.example/debian-security")


def test_pick_mirrors_skips_https_and_falls_back() -> None:
    assert li.pick_mirrors([("https://secure.example/debian", "bookworm")]) == (
        li.DEFAULT_MIRROR,
        li.DEFAULT_SECURITY_MIRROR,
    )
    assert li.pick_mirrors(li.parse_apt_sources(ONE_LINE)) == (
        "http://mirror.example/debian",
        li.DEFAULT_SECURITY_MIRROR,
    )


def test_host_mirrors_reads_sources_list_d(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert li.host_mirrors(tmp_path)[0] == "http://deb.debian.org/debian"
    assert li.host_mirrors(tmp_path / "missing") == (li.DEFAULT_MIRROR, li.DEFAULT_SECURITY_MIRROR)


def test_image_sources_list() -> None:
    assert li.image_sources_list("http://m/debian", "http://s/debian-security").splitlines() == [
        "deb http://m/debian bookworm main",
        "deb http://m/debian bookworm-updates main",
        "deb http://s/debian-security bookworm-security main",
    ]


# ------------------------------------------------------------------ env file


def test_env_mapping_uses_spec_key_order_and_skips_unavailable() -> None:
    everything = li.env_mapping(IMAGES, [image.name for image in IMAGES])
    assert list(everything) == list(li.ENV_KEYS)
    partial = li.env_mapping(IMAGES, ["debian", "redis", "mysql"])
    assert partial == {"MYSQL_IMAGE": "enlaight-local/mysql:mariadb-10.11", "REDIS_IMAGE": "enlaight-local/redis:7.0"}


def test_write_env_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "local-images.env"
    mapping = li.env_mapping(IMAGES, [image.name for image in IMAGES])
    li.write_env_file(target, mapping)
    lines = [line for line in target.read_text().splitlines() if line and not line.startswith("#")]
    assert lines == [f"{key}={value}" for key, value in mapping.items()]
    assert lines[0] == "MYSQL_IMAGE=enlaight-local/mysql:mariadb-10.11"
    assert not list(target.parent.glob(".*.tmp"))  # written atomically, no leftovers


def test_import_changes_set_ca_env_only_with_a_bundle(tmp_path: Path) -> None:
    without = build._import_changes("h", None)
    assert "LABEL org.enlaight.local-image.hash=h org.enlaight.local-image.name=debian" in without
    assert not any("SSL_CERT_FILE" in arg for arg in without)
    with_ca = build._import_changes("h", tmp_path / "ca.crt")
    for var in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert f"ENV {var}={li.CA_PATH_IN_IMAGE}" in with_ca


def test_prepare_rootfs_adds_ca_and_strips_caches(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    for rel in (
        "etc/apt",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "usr/share/doc/pkg",
        "usr/share/man/man1",
        "usr/share/locale/de",
        "var/log",
    ):
        (root / rel).mkdir(parents=True)
    (root / "var/lib/apt/lists/deb.debian.org_Packages").write_text("x")
    (root / "var/cache/apt/archives/a.deb").write_text("x")
    (root / "var/cache/apt/pkgcache.bin").write_text("x")
    (root / "usr/share/doc/pkg/copyright").write_text("licence")
    (root / "usr/share/doc/pkg/changelog.gz").write_text("x")
    (root / "usr/share/man/man1/ls.1.gz").write_text("x")
    (root / "usr/share/locale/locale.alias").write_text("x")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")

    build._prepare_rootfs(root, IMAGES_DIR / "debian" / "rootfs", "deb http://m bookworm main\n", ca)

    assert (root / li.CA_PATH_IN_IMAGE.lstrip("/")).read_text() == "CERT"
    assert (root / "etc/apt/sources.list").read_text() == "deb http://m bookworm main\n"
    assert (root / "etc/resolv.conf").read_text() == ""
    assert os.access(root / "usr/sbin/policy-rc.d", os.X_OK)
    assert sorted(p.name for p in (root / "var/lib/apt/lists").iterdir()) == ["partial"]
    assert sorted(p.name for p in (root / "var/cache/apt").iterdir()) == ["archives"]
    assert sorted(p.name for p in (root / "usr/share/doc/pkg").iterdir()) == ["copyright"]
    assert not list((root / "usr/share/man").iterdir())
    assert sorted(p.name for p in (root / "usr/share/locale").iterdir()) == ["locale.alias"]


def test_a_logged_build_step_shows_its_steps_and_a_failure_names_the_tls_fix():
    """_run_logged on a stand-in command (a shell, not docker): the step lines reach the log, a failure raises one
    line with the log file and, when the tail smells of TLS interception, the fix."""
    lines: list[str] = []
    build._run_logged(["sh", "-c", "echo 'Step 1/2 : RUN one'; echo noise; echo 'Step 2/2 : RUN two'"], "demo",
                      lines.append)  # fmt: skip
    assert [line for line in lines if "step" in line] == [
        "demo: step 1/2: RUN one (0s)",
        "demo: step 2/2: RUN two (0s)",
    ]
    failing = "echo 'ERROR: Could not find a version that satisfies the requirement x (from versions: none)'; exit 1"
    with pytest.raises(LocalImagesError) as caught:
        build._run_logged(["sh", "-c", failing], "demo", lines.append)
    assert "exit 1" in str(caught.value) and "TLS" in str(caught.value) and "\n" not in str(caught.value)
