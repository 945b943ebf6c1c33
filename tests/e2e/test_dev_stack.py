"""The development stack, started with `invoke start` on a real engine and used over HTTP on loopback.

The tests share one stack and run in file order: start, use, restart, hot reload, tear down.
"""

from __future__ import annotations

import subprocess
import uuid

import requests

from .conftest import CORE_SERVICES, Stack, poll

# For speed: what these tests use (HTTP, mail, restart, hot reload). The whole stack, as a user starts it, is
# started by test_journey.py.
STARTED = ["-s", "frontend", "-s", "backend", "-s", "postgres", "-s", "smtp"]


def test_start_brings_every_core_service_to_healthy(dev_stack: Stack):
    dev_stack.invoke("env")
    result = dev_stack.invoke("start", "--build", *STARTED)
    assert "every service is ready" in result.stderr
    states = dev_stack.ps()
    for service in CORE_SERVICES:
        assert states[service]["state"] == "running", states[service]
        assert states[service]["health"] == "healthy", states[service]
    assert "n8n" not in states and "superset" not in states


def test_backend_is_ready_with_mysql_and_redis(dev_stack: Stack):
    response = requests.get(dev_stack.url("BACKEND_PORT", "/api/health/ready/"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"mysql": "ok", "redis": "ok"}


def test_frontend_page_loads_and_proxies_the_api(dev_stack: Stack):
    page = requests.get(dev_stack.url("FRONTEND_PORT", "/"), timeout=10)
    assert page.status_code == 200
    assert '<div id="root">' in page.text
    proxied = requests.get(dev_stack.url("FRONTEND_PORT", "/api/health/ready/"), timeout=10)
    assert proxied.status_code == 200 and proxied.json()["status"] == "ok"


def test_smtp_sink_receives_a_mail_the_backend_sends(dev_stack: Stack):
    subject = f"e2e mail {uuid.uuid4().hex[:8]}"
    sent = requests.post(dev_stack.url("BACKEND_PORT", "/api/health/email/"), json={"subject": subject}, timeout=30)
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] is True

    def delivered():
        messages = requests.get(dev_stack.url("SMTP_WEB_PORT", "/api/messages"), timeout=5).json()
        rows = messages.get("results", messages) if isinstance(messages, dict) else messages
        return [m for m in rows if m.get("subject") == subject]

    assert poll(delivered, timeout=30)


def test_ps_json_reports_state_and_health(dev_stack: Stack):
    states = dev_stack.ps()
    assert set(CORE_SERVICES) <= set(states)
    for row in states.values():
        assert {"service", "container", "state", "health", "exit_code", "status"} <= set(row)
        assert row["container"].startswith(dev_stack.project)


def test_logs_prints_backend_lines(dev_stack: Stack):
    result = dev_stack.invoke("logs", "-s", "backend", "--tail", "20")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert 0 < len(lines) <= 20


def test_an_unknown_service_is_one_clear_line(dev_stack: Stack):
    result = dev_stack.invoke("start", "-s", "nosuch", check=False)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert "nosuch" in error_lines[0] and "backend" in error_lines[0]


def test_data_survives_stop_and_start(dev_stack: Stack):
    name = f"e2e-client-{uuid.uuid4().hex[:8]}"
    dev_stack.invoke(
        "manage", "--", "shell", "-c", f"from core.models import Client; Client.objects.create(name='{name}')"
    )
    dev_stack.invoke("stop")
    assert all(row["state"] == "exited" for row in dev_stack.ps().values())
    dev_stack.invoke("start", *STARTED)
    clients = requests.get(dev_stack.url("BACKEND_PORT", "/api/clients/"), timeout=10).json()
    rows = clients.get("results", clients) if isinstance(clients, dict) else clients
    assert name in [row["name"] for row in rows]


def test_backend_hot_reloads_a_mounted_source_edit(dev_stack: Stack):
    url = dev_stack.url("BACKEND_PORT", "/api/version/")
    before = requests.get(url, timeout=10).json()["version"]
    marker = f"hot-reload-{uuid.uuid4().hex[:8]}"
    version_file = dev_stack.root / "backend" / "core" / "version.py"
    version_file.write_text(f'VERSION = "{marker}"\n')
    assert marker != before
    poll(lambda: requests.get(url, timeout=5).json()["version"] == marker, timeout=60)


def test_frontend_hot_reloads_a_mounted_source_edit(dev_stack: Stack):
    marker = f"hot-reload-{uuid.uuid4().hex[:8]}"
    source = dev_stack.root / "frontend" / "src" / "main.tsx"
    # A statement, not a comment: Vite's transform strips comments from the module it serves.
    source.write_text(source.read_text() + f'\nconsole.debug("{marker}");\n')
    url = dev_stack.url("FRONTEND_PORT", "/src/main.tsx")
    poll(lambda: marker in requests.get(url, timeout=5).text, timeout=60)


def test_down_removes_the_containers(dev_stack: Stack):
    dev_stack.invoke("down")
    assert dev_stack.ps() == {}
    left = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={dev_stack.project}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert left == []
