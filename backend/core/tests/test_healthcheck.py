"""backend/healthcheck.py: silent on success, one line and exit 1 on failure."""

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import healthcheck
from django.test import SimpleTestCase

from .test_health import closed_port

BACKEND_DIR = Path(__file__).resolve().parents[2]


class _Server:
    """A local server answering every GET with `status` (after `delay` seconds)."""

    def __init__(self, status: int, delay: float = 0.0):
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if delay and release.wait(delay):
                    return  # the test is over and the client gone: do not write to a closed socket
                body = b'{"status": "ok"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/health/"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class HealthcheckTests(SimpleTestCase):
    def test_ok_is_silent_and_exits_0(self):
        with _Server(200) as server:
            self.assertIsNone(healthcheck.check(server.url))

    def test_http_error_is_one_line(self):
        with _Server(503) as server:
            self.assertEqual(healthcheck.check(server.url), "HTTP 503 Service Unavailable")

    def test_timeout_is_one_line(self):
        with _Server(200, delay=5) as server:
            self.assertEqual(healthcheck.check(server.url, timeout=0.2), "no answer within 0.2s")

    def test_refused_connection_prints_one_line_and_exits_1(self):
        url = f"http://127.0.0.1:{closed_port()}/api/health/"
        proc = subprocess.run(
            [sys.executable, "healthcheck.py", url],
            cwd=BACKEND_DIR,
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "healthcheck: GET /api/health/ failed: connection refused\n")
        self.assertEqual(proc.stderr, "")

    def test_default_target_is_the_containers_own_server(self):
        self.assertEqual(healthcheck.URL, "http://127.0.0.1:8000/api/health/")
        self.assertEqual(healthcheck.TIMEOUT, 4.0)
