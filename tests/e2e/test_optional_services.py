"""n8n joins the e2e run when its image exists here; otherwise it skips and says why (Superset: test_superset.py)."""

from __future__ import annotations

import pytest
import requests

from .conftest import Stack, image_available


def test_n8n_starts_healthy_on_postgres(dev_stack: Stack):
    if not image_available("N8N_IMAGE", "n8nio/n8n:1.123.81", dev_stack):
        pytest.skip("no n8n image on this engine (no registry here): `invoke images.local -s n8n` builds one")
    dev_stack.invoke("env")
    dev_stack.invoke("start", "-s", "n8n")
    response = requests.get(dev_stack.url("N8N_PORT", "/healthz"), timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"
