"""The image policy on captured engine answers: present, pullable, unreachable -> local, unknown tag -> clear error."""

from __future__ import annotations

import pytest

from enlaight_ops.errors import ToolkitError
from enlaight_ops.image_policy import NeededImage, classify_pull_failure, needed_images, plan_missing

# What `docker pull` printed on real engines (Docker 20.10 / 28).
NO_REGISTRY = (
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io '
    "on 10.255.255.53:53: no such host"
)
UNKNOWN_TAG = "Error response from daemon: manifest for mysql:8.4.33 not found: manifest unknown: manifest unknown"
UNKNOWN_REPO = (
    "Error response from daemon: pull access denied for enlaight/nope, repository does not exist or may require "
    "'docker login': denied: requested access to the resource is denied"
)
RECIPES = {"MYSQL_IMAGE": "mysql", "PYTHON_IMAGE": "python", "SUPERSET_IMAGE": "superset"}

CONFIG = {
    "services": {
        "backend": {
            "build": {"args": {"PYTHON_IMAGE": "python:3.11.11-slim-bookworm"}},
            "image": "enlaight/backend:dev",
        },
        "mysql": {"image": "mysql:8.4.3"},
        "superset-init": {
            "build": {"args": {"SUPERSET_IMAGE": "apache/superset:4.1.2"}},
            "image": "enlaight/superset:4",
        },
        "superset": {"image": "enlaight/superset:4"},
        "smtp": {"image": "rnwood/smtp4dev:3.6.1"},
    }
}
RAW = {
    "services": {
        "backend": {"build": {"args": {"PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.11.11-slim-bookworm}"}}},
        "mysql": {"image": "${MYSQL_IMAGE:-mysql:8.4.3}"},
        "superset-init": {"build": {"args": {"SUPERSET_IMAGE": "${SUPERSET_IMAGE:-apache/superset:4.1.2}"}}},
        "superset": {"image": "enlaight/superset:4"},
        "smtp": {"image": "${SMTP_IMAGE:-rnwood/smtp4dev:3.6.1}"},
    }
}


def test_classify_pull_failures():
    assert classify_pull_failure(NO_REGISTRY) == "unreachable"
    assert classify_pull_failure(UNKNOWN_TAG) == "unknown-image"
    assert classify_pull_failure(UNKNOWN_REPO) == "unknown-image"
    assert classify_pull_failure("Error response from daemon: toomanyrequests: rate limit") == "other"


def test_needed_images_names_the_variable_and_skips_images_built_by_another_service():
    needed = needed_images(CONFIG, RAW, list(CONFIG["services"]), build=False, present=lambda ref: False)
    assert {(n.service, n.reference, n.variable, n.role) for n in needed} == {
        ("backend", "python:3.11.11-slim-bookworm", "PYTHON_IMAGE", "base"),
        ("mysql", "mysql:8.4.3", "MYSQL_IMAGE", "image"),
        ("superset-init", "apache/superset:4.1.2", "SUPERSET_IMAGE", "base"),
        ("smtp", "rnwood/smtp4dev:3.6.1", "SMTP_IMAGE", "image"),
    }


def test_bases_are_needed_only_when_the_service_image_will_be_built():
    built = {"enlaight/backend:dev", "enlaight/superset:4"}
    needed = needed_images(CONFIG, RAW, ["backend"], build=False, present=lambda ref: ref in built)
    assert needed == []
    rebuild = needed_images(CONFIG, RAW, ["backend"], build=True, present=lambda ref: ref in built)
    assert [n.reference for n in rebuild] == ["python:3.11.11-slim-bookworm"]


def image(reference: str, variable: str | None = "MYSQL_IMAGE") -> NeededImage:
    return NeededImage("mysql", reference, variable, "image")


def test_auto_pulls_what_a_registry_has():
    pulls: list[str] = []

    def pull(ref: str) -> tuple[bool, str]:
        pulls.append(ref)
        return True, ""

    assert plan_missing([image("mysql:8.4.3")], "auto", pull, RECIPES).build == {}
    assert pulls == ["mysql:8.4.3"]


def test_auto_builds_locally_when_no_registry_answers_and_says_why():
    plan = plan_missing([image("mysql:8.4.3")], "auto", lambda ref: (False, NO_REGISTRY), RECIPES)
    assert plan.build == {"mysql": "mysql: image mysql:8.4.3 is not on this engine (registry unreachable)"}


def test_auto_refuses_a_tag_the_registry_does_not_know():
    with pytest.raises(ToolkitError) as caught:
        plan_missing([image("mysql:8.4.33")], "auto", lambda ref: (False, UNKNOWN_TAG), RECIPES)
    message = str(caught.value)
    assert "does not exist in its registry" in message and "check MYSQL_IMAGE in .env" in message


def test_a_local_tag_is_built_not_pulled():
    def pull(ref: str) -> tuple[bool, str]:
        raise AssertionError("a local tag is never pulled")

    plan = plan_missing([image("enlaight-local/mysql:mariadb-10.11")], "auto", pull, RECIPES)
    assert list(plan.build) == ["mysql"]


def test_registry_never_builds_and_local_never_pulls():
    def pull(ref: str) -> tuple[bool, str]:
        raise AssertionError("policy local never pulls")

    assert plan_missing([image("mysql:8.4.3")], "registry", pull, RECIPES).build == {}
    assert list(plan_missing([image("mysql:8.4.3")], "local", pull, RECIPES).build) == ["mysql"]


def test_no_recipe_and_no_registry_is_one_clear_line():
    with pytest.raises(ToolkitError) as caught:
        plan_missing([image("example/thing:1", "THING_IMAGE")], "auto", lambda ref: (False, NO_REGISTRY), RECIPES)
    assert "no local recipe" in str(caught.value) and "set THING_IMAGE in .env" in str(caught.value)
