"""Project <-> Superset dashboard: the fields, link_sample_dashboard, and the guest-token endpoint.

Superset is faked at the HTTP level only: a local HTTP server speaking the three endpoints the backend calls
(or a closed port, or a patched opener), so the real urllib client, cookies and headers are exercised.
"""

import json
import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from unittest import mock

from django.core.management import CommandError, call_command
from django.test import TestCase, override_settings

from core.management.commands import seed_sample as seed
from core.models import Project

from .factories import make_world

EMBEDDED = "3f0b8f5e-2c1d-4e8a-9b7c-1a2b3c4d5e6f"
PASSWORD = "Sup3rset-Adm1n-pw"  # noqa: S105 - a test value


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeSuperset:
    """Superset's login, csrf_token and guest_token endpoints, strict about what a real one checks."""

    def __init__(self, *, password: str = PASSWORD, guest_status: int = 200, echo_password: bool = False):
        self.password = password
        self.guest_status = guest_status
        self.echo_password = echo_password
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})  # fmt: skip
                return body

            def do_POST(self):
                body = self._record()
                if self.path == "/api/v1/security/login":
                    if body != {"username": "admin", "password": fake.password, "provider": "db", "refresh": False}:
                        message = "Not authorized"
                        if fake.echo_password:  # a badly behaved server echoing what it got
                            message += f" for {body.get('password')}"
                        return self._answer(401, {"message": message})
                    return self._answer(200, {"access_token": "access-1"})
                if self.path == "/api/v1/security/guest_token/":
                    ok = (
                        self.headers.get("Authorization") == "Bearer access-1"
                        and self.headers.get("X-CSRFToken") == "csrf-1"
                        and "session=s-1" in (self.headers.get("Cookie") or "")
                        and self.headers.get("Referer")
                    )
                    if not ok:
                        return self._answer(400, {"message": "The CSRF token is missing."})
                    if fake.guest_status != 200:
                        return self._answer(fake.guest_status, {"message": "Guest token refused"})
                    return self._answer(200, {"token": f"guest-for-{body['resources'][0]['id']}"})
                return self._answer(404, {"message": "Not found"})

            def do_GET(self):
                self._record()
                if self.path == "/api/v1/security/csrf_token/":
                    if self.headers.get("Authorization") != "Bearer access-1":
                        return self._answer(401, {"msg": "Missing Authorization Header"})
                    return self._answer(200, {"result": "csrf-1"}, {"Set-Cookie": "session=s-1; HttpOnly; Path=/"})
                return self._answer(404, {"message": "Not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def superset_settings(url: str, password: str = PASSWORD):
    return override_settings(
        SUPERSET_URL=url,
        SUPERSET_PUBLIC_URL="http://dashboards.example.test:8088",
        SUPERSET_ADMIN_USERNAME="admin",
        SUPERSET_ADMIN_PASSWORD=password,
        SUPERSET_TIMEOUT=5.0,
    )


class ProjectDashboardFieldsTests(TestCase):
    def test_projects_api_exposes_the_dashboard(self):
        project = make_world()["project"]
        data = self.client.get("/api/projects/").json()["results"][0]
        self.assertIsNone(data["superset_dashboard_id"])
        self.assertEqual(data["superset_embedded_id"], "")
        Project.objects.filter(pk=project.pk).update(superset_dashboard_id=7, superset_embedded_id=EMBEDDED)
        data = self.client.get("/api/projects/").json()["results"][0]
        self.assertEqual(data["superset_dashboard_id"], 7)
        self.assertEqual(data["superset_embedded_id"], EMBEDDED)


def run_link(*args: str) -> dict:
    out = StringIO()
    call_command("link_sample_dashboard", "--json", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def seed_sample_data() -> None:
    with mock.patch.dict(os.environ, {"SEED_ADMIN_EMAIL": "", "SEED_ADMIN_PASSWORD": ""}):
        call_command("seed_sample", "--json", stdout=StringIO(), stderr=StringIO())


class LinkSampleDashboardTests(TestCase):
    def test_links_the_first_sample_project_once(self):
        seed_sample_data()
        report = run_link("--dashboard-id", "12", "--embedded-id", EMBEDDED)
        label = f"Superset dashboard 12 (embedded {EMBEDDED}) on project Patient Helpdesk"
        self.assertEqual(report, {"created": [label], "updated": [], "existing": [], "removed": [], "warnings": []})
        project = Project.objects.get(pk=seed.sample_id("project", seed.FIRST_PROJECT))
        self.assertEqual(project.name, "Patient Helpdesk")
        self.assertEqual((project.superset_dashboard_id, project.superset_embedded_id), (12, EMBEDDED))
        self.assertEqual(Project.objects.exclude(superset_dashboard_id=None).count(), 1)

        again = run_link("--dashboard-id", "12", "--embedded-id", EMBEDDED.upper())
        self.assertEqual(again, {"created": [], "updated": [], "existing": [label], "removed": [], "warnings": []})

    def test_another_dashboard_updates_the_link(self):
        seed_sample_data()
        run_link("--dashboard-id", "12", "--embedded-id", EMBEDDED)
        other = str(uuid.uuid4())
        report = run_link("--dashboard-id", "12", "--embedded-id", other)
        self.assertEqual(len(report["updated"]), 1)
        self.assertIn("(superset_embedded_id)", report["updated"][0])
        self.assertEqual(Project.objects.get(superset_dashboard_id=12).superset_embedded_id, other)

    def test_seed_sample_leaves_the_dashboard_alone(self):
        seed_sample_data()
        run_link("--dashboard-id", "12", "--embedded-id", EMBEDDED)
        seed_sample_data()
        self.assertEqual(Project.objects.get(superset_dashboard_id=12).superset_embedded_id, EMBEDDED)

    def test_human_output(self):
        seed_sample_data()
        out = StringIO()
        call_command("link_sample_dashboard", "--dashboard-id", "3", "--embedded-id", EMBEDDED, stdout=out)
        self.assertIn("created: Superset dashboard 3", out.getvalue())
        out = StringIO()
        call_command("link_sample_dashboard", "--dashboard-id", "3", "--embedded-id", EMBEDDED, stdout=out)
        self.assertIn("nothing to create", out.getvalue())

    def test_without_sample_data_says_to_seed_the_backend(self):
        with self.assertRaisesMessage(CommandError, "invoke seed --only backend"):
            run_link("--dashboard-id", "12", "--embedded-id", EMBEDDED)

    def test_bad_values_are_refused_in_one_line(self):
        seed_sample_data()
        with self.assertRaisesMessage(CommandError, "--embedded-id must be the UUID"):
            run_link("--dashboard-id", "12", "--embedded-id", "not-a-uuid")
        with self.assertRaisesMessage(CommandError, "--dashboard-id must be a positive integer"):
            run_link("--dashboard-id", "0", "--embedded-id", EMBEDDED)
        self.assertFalse(Project.objects.exclude(superset_dashboard_id=None).exists())


class GuestTokenTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.project = make_world()["project"]
        cls.project.superset_dashboard_id = 12
        cls.project.superset_embedded_id = EMBEDDED
        cls.project.save()

    def url(self, project_id=None):
        return f"/api/projects/{project_id or self.project.pk}/dashboard/guest-token/"

    def test_returns_a_guest_token_for_the_embedded_dashboard(self):
        with FakeSuperset() as superset, superset_settings(superset.url):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(
            response.json(),
            {
                "token": f"guest-for-{EMBEDDED}",
                "dashboard": {"embedded_id": EMBEDDED, "dashboard_id": 12},
                "superset_url": "http://dashboards.example.test:8088",
            },
        )
        self.assertEqual(
            [(r["method"], r["path"]) for r in superset.requests],
            [
                ("POST", "/api/v1/security/login"),
                ("GET", "/api/v1/security/csrf_token/"),
                ("POST", "/api/v1/security/guest_token/"),
            ],
        )
        guest = superset.requests[-1]
        self.assertEqual(
            guest["body"],
            {
                "user": {"username": "enlaight-guest", "first_name": "Enlaight", "last_name": "Guest"},
                "resources": [{"type": "dashboard", "id": EMBEDDED}],
                "rls": [],
            },
        )
        self.assertEqual(guest["headers"]["Referer"], f"{superset.url}/")
        self.assertEqual(response["Cache-Control"], "max-age=0, no-cache, no-store, must-revalidate, private")

    def test_no_csrf_token_needed_from_the_caller(self):
        client = self.client_class(enforce_csrf_checks=True)
        with FakeSuperset() as superset, superset_settings(superset.url):
            response = client.post(self.url())
        self.assertEqual(response.status_code, 200, response.content)

    def test_project_without_dashboard_is_404(self):
        Project.objects.filter(pk=self.project.pk).update(superset_dashboard_id=None, superset_embedded_id="")
        with mock.patch("core.superset.guest_token") as guest_token:
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 404)
        self.assertIn("has no embedded Superset dashboard", response.json()["error"])
        guest_token.assert_not_called()

    def test_unknown_project_is_404(self):
        response = self.client.post(self.url(uuid.uuid4()))
        self.assertEqual(response.status_code, 404)
        self.assertIn("not found", response.json()["error"])

    def test_get_is_not_allowed(self):
        self.assertEqual(self.client.get(self.url()).status_code, 405)

    def test_superset_down_is_502_in_one_line(self):
        url = f"http://127.0.0.1:{closed_port()}"
        with superset_settings(url):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 502)
        error = response.json()["error"]
        self.assertIn(f"Superset is unreachable at {url}", error)
        self.assertNotIn("\n", error)
        self.assertNotIn(PASSWORD, response.content.decode())

    def test_superset_timeout_is_502(self):
        with (
            superset_settings("http://superset.test:8088"),
            mock.patch("urllib.request.OpenerDirector.open", side_effect=TimeoutError("timed out")),
        ):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 502)
        self.assertIn("did not answer within 5s", response.json()["error"])

    def test_refused_login_is_502_without_the_password(self):
        # The fake expects another password and echoes the one it received, like a careless proxy might.
        with (
            FakeSuperset(password="the-right-one", echo_password=True) as superset,  # noqa: S106
            superset_settings(superset.url),
            self.assertLogs("core.views", "WARNING") as logs,
        ):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 502)
        body = response.content.decode()
        self.assertIn("Superset refused to log in as admin: HTTP 401", body)
        self.assertIn("SUPERSET_ADMIN_PASSWORD", body)
        self.assertNotIn(PASSWORD, body)
        self.assertNotIn(PASSWORD, "\n".join(logs.output))

    def test_refused_guest_token_is_502_with_supersets_reason(self):
        with FakeSuperset(guest_status=403) as superset, superset_settings(superset.url):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 502)
        self.assertIn("HTTP 403", response.json()["error"])
        self.assertIn("Guest token refused", response.json()["error"])

    def test_missing_password_is_503_and_calls_nothing(self):
        with (
            superset_settings("http://superset.test:8088", password=""),
            mock.patch("urllib.request.OpenerDirector.open") as opened,
        ):
            response = self.client.post(self.url())
        self.assertEqual(response.status_code, 503)
        self.assertIn("SUPERSET_ADMIN_PASSWORD", response.json()["error"])
        opened.assert_not_called()
