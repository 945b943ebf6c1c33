import socket
from unittest import mock

from django.core import mail
from django.db import OperationalError, connections
from django.test import TestCase, override_settings

LOCMEM_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "health"}
}


def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_cache_at(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/1",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


class LivenessTests(TestCase):
    def test_health_ok_without_touching_backends(self):
        with (
            mock.patch("core.views.check_mysql") as mysql,
            mock.patch("core.views.check_redis") as redis,
        ):
            response = self.client.get("/api/health/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok"})
        mysql.assert_not_called()
        redis.assert_not_called()
        self.assertIn("no-cache", response["Cache-Control"])


class ReadinessTests(TestCase):
    @override_settings(CACHES=LOCMEM_CACHE)
    def test_ready_ok(self):
        response = self.client.get("/api/health/ready/")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(
            response.json(), {"status": "ok", "checks": {"mysql": "ok", "redis": "ok"}}
        )

    def test_ready_503_names_redis_when_unreachable(self):
        with override_settings(CACHES=redis_cache_at(closed_port())):
            response = self.client.get("/api/health/ready/")
        self.assertEqual(response.status_code, 503)
        body = response.json()
        self.assertEqual(body["status"], "error")
        self.assertEqual(body["checks"], {"mysql": "ok", "redis": "error"})
        self.assertEqual(set(body["errors"]), {"redis"})
        self.assertIn("Connection", body["errors"]["redis"])
        self.assertLessEqual(len(body["errors"]["redis"]), 200)

    @override_settings(CACHES=LOCMEM_CACHE)
    def test_ready_503_names_mysql_when_db_fails(self):
        conn = connections["default"]
        with mock.patch.object(conn, "cursor", side_effect=OperationalError("db down")):
            response = self.client.get("/api/health/ready/")
        self.assertEqual(response.status_code, 503)
        body = response.json()
        self.assertEqual(body["checks"], {"mysql": "error", "redis": "ok"})
        self.assertEqual(body["errors"], {"mysql": "OperationalError: db down"})


class TestEmailTests(TestCase):
    def test_404_when_debug_off(self):
        response = self.client.post("/api/health/email/")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(len(mail.outbox), 0)

    @override_settings(DEBUG=True, DEFAULT_FROM_EMAIL="noreply@enlaight.test")
    def test_sends_when_debug_on(self):
        response = self.client.post(
            "/api/health/email/",
            data={"to": "ops@example.com", "subject": "e2e-123"},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["sent"], True)
        self.assertEqual(len(mail.outbox), 1)
        self.assertEqual(mail.outbox[0].subject, "e2e-123")
        self.assertEqual(mail.outbox[0].to, ["ops@example.com"])
        self.assertEqual(mail.outbox[0].from_email, "noreply@enlaight.test")

    @override_settings(DEBUG=True)
    def test_default_recipient_and_no_body(self):
        response = self.client.post("/api/health/email/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(mail.outbox[0].to, ["test@example.com"])

    @override_settings(DEBUG=True)
    def test_bad_json(self):
        response = self.client.post(
            "/api/health/email/", data="{nope", content_type="application/json"
        )
        self.assertEqual(response.status_code, 400)

    @override_settings(
        DEBUG=True,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_TIMEOUT=2,
    )
    def test_smtp_failure_reported(self):
        with override_settings(EMAIL_PORT=closed_port()):
            response = self.client.post("/api/health/email/")
        self.assertEqual(response.status_code, 502)
        self.assertEqual(response.json()["sent"], False)

    def test_get_not_allowed(self):
        with override_settings(DEBUG=True):
            self.assertEqual(self.client.get("/api/health/email/").status_code, 405)
