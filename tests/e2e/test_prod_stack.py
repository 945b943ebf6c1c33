"""The production overlay starts on a real engine with the limits docker-compose.prod.yml sets."""

from __future__ import annotations

import requests

from .conftest import Stack

GIB = 1024**3


def test_prod_starts_with_limits_and_hardening(prod_stack: Stack):
    prod_stack.invoke("env")
    # For speed: the front end and the backend (with MySQL and Redis) carry the limits and hardening checked here.
    result = prod_stack.invoke("start", "--prod", "--build", "-s", "frontend", "-s", "backend")
    assert "env prod" in result.stderr

    backend = prod_stack.container("backend", "--prod")["HostConfig"]
    assert backend["Memory"] == 1 * GIB
    assert backend["NanoCpus"] == 2 * 10**9
    assert backend["RestartPolicy"]["Name"] == "unless-stopped"
    assert "no-new-privileges:true" in backend["SecurityOpt"]
    assert backend["LogConfig"]["Config"] == {"max-file": "5", "max-size": "10m"}
    mysql = prod_stack.container("mysql", "--prod")["HostConfig"]
    assert mysql["Memory"] == 2 * GIB and mysql["NanoCpus"] == 2 * 10**9


def test_prod_serves_the_static_build_and_gunicorn(prod_stack: Stack):
    page = requests.get(prod_stack.url("FRONTEND_PORT", "/"), timeout=10)
    assert page.status_code == 200
    assert "/assets/" in page.text  # the built bundle, not the Vite dev server
    assert "@vite/client" not in page.text
    ready = requests.get(prod_stack.url("FRONTEND_PORT", "/api/health/ready/"), timeout=10)
    assert ready.status_code == 200, ready.text
    backend = prod_stack.container("backend", "--prod")
    assert "gunicorn" in " ".join(backend["Config"]["Cmd"])
    assert not [m for m in backend["Mounts"] if m["Type"] == "bind"]


def test_prod_debug_endpoints_are_off(prod_stack: Stack):
    response = requests.post(prod_stack.url("BACKEND_PORT", "/api/health/email/"), timeout=10)
    assert response.status_code == 404
