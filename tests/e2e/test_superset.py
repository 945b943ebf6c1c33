"""`invoke seed`'s Superset step on the whole real stack: idempotent, charts with data, an embedded dashboard whose
guest tokens (from the backend) Superset accepts, and a token forged with Superset's public default secret refused.

The whole stack (`invoke start`), not a subset: `invoke seed` runs every step, so the second run can show that
nothing at all is created. Needs Superset's and n8n's images (local ones from `invoke images.local`, or pulled);
without them the module skips and says which. The tests run in order on one stack of their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from dotenv import dotenv_values

from .conftest import Stack, _make_stack, image_available

DASHBOARD = "Enlaight analytics"
CHARTS = ("Sessions over time", "Sessions by agent", "Agents by expertise area")
FIRST_SAMPLE_PROJECT = "Patient Helpdesk"
PUBLIC_DEFAULT_SECRET = "test-guest-secret-change-me"  # noqa: S105 - Superset's published default, must be refused

pytestmark = [pytest.mark.superset, pytest.mark.n8n]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images_env) -> Iterator[Stack]:
    stack = _make_stack(tmp_path_factory, local_images_env, "superset")
    for variable, default, name in (
        ("SUPERSET_IMAGE", "apache/superset:4.1.2", "superset"),
        ("N8N_IMAGE", "n8nio/n8n:1.123.81", "n8n"),
    ):
        if not image_available(variable, default, stack):
            pytest.skip(f"no {name} image on this engine: `invoke images.local -s {name}` builds the local one")
    try:
        stack.invoke("env")
        stack.invoke("start", "--build")
        yield stack
    finally:
        stack.teardown()


@pytest.fixture(scope="module")
def admin(stack: Stack) -> requests.Session:
    """Superset's API as its admin from .env, on the published port."""
    env = {k: v or "" for k, v in dotenv_values(stack.root / ".env").items()}
    session = requests.Session()
    login = session.post(
        stack.url("SUPERSET_PORT", "/api/v1/security/login"),
        json={"username": env["SUPERSET_ADMIN_USERNAME"], "password": env["SUPERSET_ADMIN_PASSWORD"],
              "provider": "db", "refresh": False},
        timeout=30,
    )  # fmt: skip
    assert login.status_code == 200, login.text
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return session


def listed(stack: Stack, admin: requests.Session, kind: str, column: str) -> dict[str, int]:
    response = admin.get(stack.url("SUPERSET_PORT", f"/api/v1/{kind}/?q=(page_size:100)"), timeout=30)
    assert response.status_code == 200, response.text
    return {row[column]: row["id"] for row in response.json()["result"]}


def superset_seconds(output: str) -> float:
    """The time `invoke seed` reports for the superset step (its summary line ends with it)."""
    return float(re.search(r"superset: [^\n]*\((\d+\.\d)s\)$", output, re.MULTILINE).group(1))


def test_seed_twice_second_run_creates_nothing(stack: Stack):
    first = stack.invoke("seed", "--strict")
    output = first.stdout + first.stderr
    for item in (
        "database 'Enlaight (read-only)'", "dataset 'enlaight_chat_sessions'", f"dashboard '{DASHBOARD}'",
        *(f"chart '{chart}'" for chart in CHARTS), f"embedding of dashboard '{DASHBOARD}'",
    ):  # fmt: skip
        assert f"superset: created {item}" in output, output
    assert "Superset dashboard" in output and FIRST_SAMPLE_PROJECT in output  # recorded on the sample project

    second = stack.invoke("seed", "--strict")
    again = second.stdout + second.stderr
    assert "created" not in again.replace("nothing to create", ""), again
    assert "superset: nothing to create" in again and "everything was already there" in again
    print(*(line for line in (output + again).splitlines() if "superset:" in line), sep="\n")
    print(f"superset step: first run {superset_seconds(output)}s, second run {superset_seconds(again)}s")


def test_superset_lists_the_charts_and_the_dashboard(stack: Stack, admin: requests.Session):
    assert set(listed(stack, admin, "chart", "slice_name")) >= set(CHARTS)
    dashboards = listed(stack, admin, "dashboard", "dashboard_title")
    assert DASHBOARD in dashboards
    charts = admin.get(stack.url("SUPERSET_PORT", f"/api/v1/dashboard/{dashboards[DASHBOARD]}/charts"), timeout=30)
    assert charts.status_code == 200, charts.text
    assert {chart["slice_name"] for chart in charts.json()["result"]} == set(CHARTS)


def test_a_chart_returns_the_seeded_sessions(stack: Stack, admin: requests.Session):
    chart_id = listed(stack, admin, "chart", "slice_name")["Sessions by agent"]
    response = admin.get(stack.url("SUPERSET_PORT", f"/api/v1/chart/{chart_id}/data/"), timeout=60)
    assert response.status_code == 200, response.text
    rows = response.json()["result"][0]["data"]
    sessions = requests.get(stack.url("BACKEND_PORT", "/api/chat-sessions/?limit=500"), timeout=30).json()
    assert sessions["count"] > 0
    assert {row["agent_name"]: row["sessions"] for row in rows} == Counter(
        session["agent"]["name"] for session in sessions["results"]
    )


def guest_token(stack: Stack) -> dict:
    projects = requests.get(stack.url("BACKEND_PORT", "/api/projects/?limit=500"), timeout=30).json()["results"]
    project = next(p for p in projects if p["name"] == FIRST_SAMPLE_PROJECT)
    response = requests.post(
        stack.url("BACKEND_PORT", f"/api/projects/{project['id']}/dashboard/guest-token/"), timeout=60
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dashboard"] == {
        "embedded_id": project["superset_embedded_id"],
        "dashboard_id": project["superset_dashboard_id"],
    }
    return answer


def as_guest(stack: Stack, token: str, dashboard_id: int) -> requests.Response:
    url = stack.url("SUPERSET_PORT", f"/api/v1/dashboard/{dashboard_id}")
    return requests.get(url, headers={"X-GuestToken": token}, timeout=30)


def test_a_guest_token_from_the_backend_opens_the_embedded_dashboard(stack: Stack, admin: requests.Session):
    answer = guest_token(stack)
    dashboard_id = answer["dashboard"]["dashboard_id"]
    assert dashboard_id == listed(stack, admin, "dashboard", "dashboard_title")[DASHBOARD]
    embedded = admin.get(stack.url("SUPERSET_PORT", f"/api/v1/dashboard/{dashboard_id}/embedded"), timeout=30)
    assert embedded.json()["result"]["uuid"] == answer["dashboard"]["embedded_id"]

    response = as_guest(stack, answer["token"], dashboard_id)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["dashboard_title"] == DASHBOARD
    assert requests.get(stack.url("SUPERSET_PORT", f"/api/v1/dashboard/{dashboard_id}"), timeout=30).status_code in (
        401,
        403,
    )  # and nothing without a token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_signed_with_the_public_default_secret_is_refused(stack: Stack):
    """The backend's own token, claims unchanged, signed again with Superset's published default secret."""
    answer = guest_token(stack)
    header, claims, _signature = answer["token"].split(".")
    signing_input = f"{header}.{claims}".encode()
    forged_signature = hmac.new(PUBLIC_DEFAULT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    forged = f"{header}.{claims}.{_b64(forged_signature)}"
    assert json.loads(base64.urlsafe_b64decode(header + "==")).get("alg") == "HS256"
    response = as_guest(stack, forged, answer["dashboard"]["dashboard_id"])
    assert response.status_code in (401, 403), response.text
