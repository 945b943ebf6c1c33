"""`invoke prune` removes this project's leftovers and never anything of another project or of no project."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def inventory(project: str) -> dict[str, set[str]]:
    label = f"label=com.docker.compose.project={project}"
    return {
        "containers": set(_docker("ps", "-aq", "--filter", label).split()),
        "volumes": set(_docker("volume", "ls", "-q", "--filter", label).split()),
        "networks": set(_docker("network", "ls", "-q", "--filter", label).split()),
        "images": set(_docker("image", "ls", "-q", "--filter", label).split()),
    }


@pytest.fixture
def projects(fixture_project):
    """Ours (started, then stopped), another compose project (stopped too) and an unlabelled volume."""
    ours = fixture_project("prune")
    other = fixture_project("prune")
    assert ours.invoke("start", "--build", "--no-wait", "-s", "app", "-s", "job").returncode == 0
    subprocess.run(["docker", "wait", f"{ours.project}-job-1"], capture_output=True, check=False)
    assert ours.invoke("stop").returncode == 0
    assert other.compose("up", "--build", "--detach", extra_env={"IMAGE_TAG": "other"}).returncode == 0
    other.compose("stop", "--timeout", "1")
    unlabelled = f"enlaight-e2e-unlabelled-{uuid.uuid4().hex[:8]}"
    _docker("volume", "create", unlabelled)
    try:
        yield ours, other, unlabelled
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", unlabelled], capture_output=True, check=False)
        subprocess.run(["docker", "image", "rm", "-f", "enlaight-prune-fixture:ours", "enlaight-prune-fixture:other"],
                       capture_output=True, check=False)  # fmt: skip


def test_prune_never_touches_what_is_not_ours(projects):
    ours, other, unlabelled = projects
    before_ours, before_other = inventory(ours.project), inventory(other.project)
    assert before_ours["containers"] and before_ours["volumes"] and before_ours["images"]

    # A dry run with every flag lists, and removes nothing.
    dry = ours.invoke("prune", "--dry-run", "--images", "--build-cache", "--volumes")
    assert dry.returncode == 0, dry.stderr
    assert "would be reclaimed" in dry.stderr and f"{ours.project}_data" in dry.stdout
    assert inventory(ours.project) == before_ours

    # Volumes without a confirmation (no terminal, no --yes): refused, nothing removed at all.
    refused = ours.invoke("prune", "--volumes")
    assert refused.returncode != 0 and "not confirmed" in refused.stderr
    assert inventory(ours.project) == before_ours

    # Default: stopped containers and networks go; volumes and images stay.
    default = ours.invoke("prune")
    assert default.returncode == 0, default.stderr
    after = inventory(ours.project)
    assert not after["containers"] and not after["networks"]
    assert after["volumes"] == before_ours["volumes"] and after["images"] == before_ours["images"]

    # Every flag, confirmed: our images and volumes go too.
    everything = ours.invoke("prune", "--images", "--build-cache", "--volumes", "--yes")
    assert everything.returncode == 0, everything.stderr
    assert "reclaimed" in everything.stderr
    assert inventory(ours.project) == {"containers": set(), "volumes": set(), "networks": set(), "images": set()}

    # The other project and the unlabelled volume are exactly as they were.
    assert inventory(other.project) == before_other
    assert json.loads(_docker("volume", "inspect", unlabelled))[0]["Name"] == unlabelled
