import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

BACKEND_DIR = Path(__file__).resolve().parents[2]


def run_settings(env_overrides: dict, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY"}}
    env.update({"DJANGO_SETTINGS_MODULE": "enlaight.settings", "DJANGO_DB_ENGINE": "sqlite"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class SettingsTests(SimpleTestCase):
    def test_refuses_to_start_without_secret_key(self):
        proc = run_settings({}, "print('started')")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("SECRET_KEY is not set", proc.stderr)
        self.assertNotIn("started", proc.stdout)

    def test_env_parsing(self):
        code = (
            "from django.conf import settings as s; "
            "print(s.DEBUG, s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, "
            "s.CACHES['default']['LOCATION'], s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, "
            "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['OPTIONS']['charset'], "
            "s.DATABASES['default']['NAME'])"
        )
        proc = run_settings(
            {
                "SECRET_KEY": "x",
                "DJANGO_DB_ENGINE": "mysql",
                "DEBUG": "1",
                "ALLOWED_HOSTS": "example.com, api.example.com",
                "CSRF_TRUSTED_ORIGINS": "https://example.com",
                "REDIS_HOST": "cache.internal",
                "REDIS_PORT": "6380",
                "EMAIL_HOST": "mail.internal",
                "EMAIL_PORT": "2525",
                "EMAIL_USE_TLS": "1",
                "BACKEND_DB": "enl",
            },
            code,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(
            proc.stdout.strip(),
            "True ['example.com', 'api.example.com', '127.0.0.1', 'localhost'] "
            "['https://example.com'] redis://cache.internal:6380/1 mail.internal 2525 True "
            "django.db.backends.mysql utf8mb4 enl",
        )

    def test_behind_a_tls_proxy_cookies_are_secure_and_hsts_is_on(self):
        code = (
            "from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
            "getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
        )
        plain = run_settings({"SECRET_KEY": "x"}, code)
        self.assertEqual(plain.stdout.split(), ["False", "False", "0", "None"], plain.stderr)
        tls = run_settings({"SECRET_KEY": "x", "BEHIND_TLS_PROXY": "1"}, code)
        self.assertIn("True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https')", tls.stdout, tls.stderr)
        own = run_settings({"SECRET_KEY": "x", "BEHIND_TLS_PROXY": "1", "SECURE_HSTS_SECONDS": "60"}, code)
        self.assertIn("True True 60", own.stdout, own.stderr)

    def test_bad_boolean_is_rejected(self):
        proc = run_settings({"SECRET_KEY": "x", "DEBUG": "maybe"}, "")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("DEBUG must be 1/0", proc.stderr)

    def test_static_root_outside_app(self):
        self.assertFalse(str(settings.STATIC_ROOT).startswith(str(BACKEND_DIR)))
