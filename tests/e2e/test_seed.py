"""`invoke seed` on a real stack with n8n: skip when n8n is down, idempotent, --reset touches sample data only.

Needs an n8n image (the local one from `invoke images.local`, or n8nio/n8n where a registry is reachable); without
one the module skips and says so. The tests run in order on one stack of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from dotenv import dotenv_values

from .conftest import Stack, _make_stack, image_available

SAMPLE_PROJECTS = {"Patient Helpdesk", "Claims Analytics", "Fleet Operations"}
KB_WORKFLOWS = {"Knowledge base: create", "Knowledge base: list", "Knowledge base: get", "Knowledge base: delete"}
SAMPLE_KB = "Sample knowledge base"

pytestmark = pytest.mark.n8n


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images_env) -> Iterator[Stack]:
    stack = _make_stack(tmp_path_factory, local_images_env, "seed")
    if not image_available("N8N_IMAGE", "n8nio/n8n:1.123.81", stack):
        pytest.skip("no n8n image on this engine: `invoke images.local -s n8n` builds the local one")
    try:
        stack.invoke("env")
        yield stack
    finally:
        stack.teardown()


def env(stack: Stack) -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(stack.root / ".env").items()}


def kb_list(stack: Stack) -> list[dict]:
    response = requests.get(
        stack.url("N8N_PORT", "/webhook/kb/list"), headers={"key": env(stack)["N8N_KB_KEY"]}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["knowledge_bases"]


def projects(stack: Stack) -> dict[str, dict]:
    response = requests.get(stack.url("BACKEND_PORT", "/api/projects/?limit=500"), timeout=30)
    assert response.status_code == 200, response.text
    return {p["name"]: p for p in response.json()["results"]}


def test_a_step_whose_service_is_down_is_skipped_or_fails_with_strict(stack: Stack):
    stack.invoke("start", "--build", "-s", "backend")
    result = stack.invoke("seed")
    assert "n8n: skipped: service n8n is not running" in result.stdout + result.stderr
    strict = stack.invoke("seed", "--strict", check=False)
    assert strict.returncode != 0
    assert "--strict" in strict.stderr and "n8n" in strict.stderr


# For speed this module runs the backend and n8n only, so --strict names their steps; the Superset step is covered
# by test_superset.py and the whole `invoke seed` by test_journey.py.
N8N_STEPS = ("--only", "backend", "--only", "n8n")


def test_seed_twice_second_run_creates_nothing(stack: Stack):
    stack.invoke("start", "-s", "backend", "-s", "n8n")
    first = stack.invoke("seed", "--strict", *N8N_STEPS)
    output = first.stdout + first.stderr
    assert "n8n: created table enlaight_knowledge_bases" in output
    assert "n8n: created workflow Knowledge base: create" in output
    assert f"n8n: created knowledge base '{SAMPLE_KB}'" in output

    second = stack.invoke("seed", "--strict", *N8N_STEPS)
    output = second.stdout + second.stderr
    assert "created" not in output.replace("nothing to create", ""), output
    assert "backend: nothing to create" in output and "n8n: nothing to create" in output
    assert "everything was already there" in output


def test_backend_lists_sample_projects_and_the_knowledge_base_link(stack: Stack):
    by_name = projects(stack)
    assert set(by_name) >= SAMPLE_PROJECTS
    (sample_kb,) = [kb for kb in kb_list(stack) if kb["name"] == SAMPLE_KB]
    links = by_name["Patient Helpdesk"]["knowledge_bases"]
    assert [(link["external_id"], link["name"]) for link in links] == [(sample_kb["hash_id"], SAMPLE_KB)]
    agents = requests.get(stack.url("BACKEND_PORT", "/api/agents/"), timeout=30).json()["results"]
    assert agents and all(a["url_n8n"].startswith("http://n8n:5678/webhook/") for a in agents)


def test_n8n_api_lists_the_knowledge_base_workflows_active(stack: Stack):
    values = env(stack)
    login = requests.post(
        stack.url("N8N_PORT", "/rest/login"),
        json={"emailOrLdapLoginId": values["N8N_OWNER_EMAIL"], "password": values["N8N_OWNER_PASSWORD"]},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    # Passed by hand: n8n marks its auth cookie Secure, which a client keeps off plain http.
    cookies = {"n8n-auth": login.cookies["n8n-auth"]}
    response = requests.get(stack.url("N8N_PORT", "/rest/workflows"), cookies=cookies, timeout=30)
    assert response.status_code == 200, response.text
    workflows = response.json()["data"]
    active = {w["name"] for w in workflows if w["active"]}
    assert active >= KB_WORKFLOWS


def test_webhooks_need_the_key_and_work(stack: Stack):
    url = stack.url("N8N_PORT", "/webhook/kb/list")
    assert requests.get(url, headers={"key": "wrong"}, timeout=30).status_code in (401, 403)
    assert SAMPLE_KB in {kb["name"] for kb in kb_list(stack)}
    key = {"key": env(stack)["N8N_KB_KEY"]}
    missing = requests.post(stack.url("N8N_PORT", "/webhook/kb/create"), json={}, headers=key, timeout=30)
    assert missing.status_code == 400
    created = requests.post(
        stack.url("N8N_PORT", "/webhook/kb/create"), json={"name": "Mine", "description": "a, b"}, headers=key,
        timeout=30,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    hash_id = created.json()["hash_id"]
    got = requests.get(stack.url("N8N_PORT", f"/webhook/kb/get?hash_id={hash_id}"), headers=key, timeout=30)
    assert got.status_code == 200 and got.json()["description"] == "a, b"
    gone = requests.get(stack.url("N8N_PORT", "/webhook/kb/get?hash_id=nope"), headers=key, timeout=30)
    assert gone.status_code == 404


def test_reset_replaces_only_sample_data(stack: Stack):
    before = {kb["name"]: kb["hash_id"] for kb in kb_list(stack)}
    assert "Mine" in before  # made by the previous test: a person's data
    refused = stack.invoke("seed", "--reset", check=False)
    assert refused.returncode != 0 and "not confirmed" in refused.stderr

    result = stack.invoke("seed", "--reset", "--yes", "--strict", *N8N_STEPS)
    assert "backend: removed project Patient Helpdesk" in result.stdout + result.stderr
    after = {kb["name"]: kb["hash_id"] for kb in kb_list(stack)}
    assert after["Mine"] == before["Mine"]
    assert after[SAMPLE_KB] != before[SAMPLE_KB]
    links = projects(stack)["Patient Helpdesk"]["knowledge_bases"]
    assert [link["external_id"] for link in links] == [after[SAMPLE_KB]]
