"""Django settings for the Enlaight backend.

Every deployment-specific value comes from the environment (names in env.sample).
Nothing secret has a default: the process refuses to start without SECRET_KEY.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():  # unset, or blank in .env: the default
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0 (or true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it in the environment (see env.sample); "
        "the backend refuses to start without it."
    )

DEBUG = env_bool("DEBUG", False)

# Loopback names are always accepted so that in-container healthchecks
# (http://127.0.0.1:8000/api/health/) work whatever ALLOWED_HOSTS says.
ALLOWED_HOSTS = list(dict.fromkeys(env_list("ALLOWED_HOSTS") + ["127.0.0.1", "localhost"]))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Behind a proxy that terminates TLS (production): trust its X-Forwarded-Proto, send cookies over HTTPS only and
# ask browsers for HTTPS from then on (HSTS). Each can be set on its own; all follow BEHIND_TLS_PROXY by default.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", BEHIND_TLS_PROXY)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "enlaight.urls"
WSGI_APPLICATION = "enlaight.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# MySQL (or MariaDB) through PyMySQL. DJANGO_DB_ENGINE=sqlite exists only to run
# the test-suite without a MySQL server.

DB_ENGINE = env_str("DJANGO_DB_ENGINE", "mysql").lower()

if DB_ENGINE == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
        }
    }
elif DB_ENGINE == "mysql":
    import pymysql

    pymysql.install_as_MySQLdb()

    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": env_str("MYSQL_HOST", "mysql"),
            "PORT": env_int("MYSQL_PORT", 3306),
            "NAME": env_str("BACKEND_DB"),
            "USER": env_str("BACKEND_DB_USER"),
            "PASSWORD": os.environ.get("BACKEND_DB_PASSWORD", ""),
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "charset": "utf8mb4",
                "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5),
                "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            },
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
else:
    raise ImproperlyConfigured(f"DJANGO_DB_ENGINE must be 'mysql' or 'sqlite', got {DB_ENGINE!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (Redis) ----------------------------------------------------------

REDIS_HOST = env_str("REDIS_HOST", "redis")
REDIS_PORT = env_int("REDIS_PORT", 6379)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/1",
        "KEY_PREFIX": "enlaight",
        "OPTIONS": {
            # Passed to redis-py's connection pool: never hang on a dead Redis.
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        },
    }
}

# --- Email (SMTP) -----------------------------------------------------------

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "smtp")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "enlaight@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- n8n (knowledge bases, agents' chat webhooks) ---------------------------

N8N_BASE_URL = env_str("N8N_BASE_URL", "http://n8n:5678").rstrip("/")
N8N_KB_KEY = os.environ.get("N8N_KB_KEY", "")
N8N_TIMEOUT = env_float("N8N_TIMEOUT", 30.0)

# --- Superset (embedded dashboards: guest tokens) -----------------------------
# SUPERSET_URL is how the backend reaches Superset (the stack's own service); SUPERSET_PUBLIC_URL is what the
# browser loads the embedded dashboard from. The admin account signs guest tokens; its password is only ever
# sent to SUPERSET_URL's login endpoint, never logged nor returned.

SUPERSET_URL = env_str("SUPERSET_URL", "http://superset:8088").rstrip("/")
SUPERSET_PUBLIC_URL = env_str("SUPERSET_PUBLIC_URL", "http://localhost:8088").rstrip("/")
SUPERSET_ADMIN_USERNAME = env_str("SUPERSET_ADMIN_USERNAME", "admin")
SUPERSET_ADMIN_PASSWORD = os.environ.get("SUPERSET_ADMIN_PASSWORD", "")
SUPERSET_TIMEOUT = env_float("SUPERSET_TIMEOUT", 10.0)

# --- Auth, i18n -------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
# Outside /app on purpose: the dev container bind-mounts ./backend over /app.

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT") or "/var/lib/enlaight/static"

# --- System checks ----------------------------------------------------------
# models.W044: MariaDB (local registry-less images only) cannot index expressions,
# so ExpertiseArea's Lower(name) unique constraint is skipped there; the plain
# unique index on `name` under the case-insensitive utf8mb4_unicode_ci collation
# still enforces case-insensitive uniqueness on MariaDB.
SILENCED_SYSTEM_CHECKS = ["models.W044"]

# --- Logging: everything to stdout ------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}
