"""Superset configuration for the Enlaight stack: everything comes from the environment (compose passes it).

Metadata in MySQL, cache and query results in Redis, secrets from .env, dashboards embedded in the Enlaight
front end through guest tokens.
"""

import os
from urllib.parse import quote

from cachelib.redis import RedisCache

# Superset takes every upper-case name of this module as a setting: helpers are lower-case.

# Superset's built-in GUEST_TOKEN_JWT_SECRET: published in its source, so anyone could sign guest tokens with it.
_public_guest_token_default = "test-guest-secret-change-me"  # noqa: S105 - the value we refuse, not a secret


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: add it to .env (run `invoke env`)")
    return value


def _origins(value: str) -> list[str]:
    """A comma- or space-separated list of origins, e.g. "http://localhost:8080,https://app.example.com"."""
    return [origin.strip().rstrip("/") for origin in value.replace(",", " ").split() if origin.strip()]


def _guest_token_secret() -> str:
    value = _required("GUEST_TOKEN_JWT_SECRET")
    if value == _public_guest_token_default:
        raise RuntimeError("GUEST_TOKEN_JWT_SECRET is Superset's public default: set a random value in .env")
    return value


SECRET_KEY = _required("SUPERSET_SECRET_KEY")

# -- metadata database (MySQL) ----------------------------------------------------------------------------------
_db_user = quote(_required("SUPERSET_DB_USER"), safe="")
_db_password = quote(_required("SUPERSET_DB_PASSWORD"), safe="")
_db_host = os.environ.get("MYSQL_HOST", "mysql")
_db_port = os.environ.get("MYSQL_PORT", "3306")
_db_name = _required("SUPERSET_DB_NAME")
SQLALCHEMY_DATABASE_URI = f"mysql+pymysql://{_db_user}:{_db_password}@{_db_host}:{_db_port}/{_db_name}?charset=utf8mb4"

# Superset's MySQL engine spec imports MySQLdb (mysqlclient, a C extension) to name the column types of every
# query result, so SQL Lab, datasets and charts on a MySQL connection (the backend's data) fail without it.
# Neither image needs a compiler for it: PyMySQL stands in, unless the image has mysqlclient.
try:
    import MySQLdb  # noqa: F401
except ImportError:
    import pymysql

    pymysql.install_as_MySQLdb()

# -- Redis: cache and query results ----------------------------------------------------------------------------
# Each has its own database number; the backend's Django cache uses database 1, so none evicts another's keys.
_redis_host = os.environ.get("REDIS_HOST", "redis")
_redis_port = int(os.environ.get("REDIS_PORT", "6379"))
_cache_redis_db = 2
_results_redis_db = 3

CACHE_CONFIG = {
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "superset_",
    "CACHE_REDIS_URL": f"redis://{_redis_host}:{_redis_port}/{_cache_redis_db}",
}
DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "superset_data_"}
# SQL Lab's results of asynchronous queries.
RESULTS_BACKEND = RedisCache(
    host=_redis_host, port=_redis_port, db=_results_redis_db, key_prefix="superset_results_", default_timeout=86400
)
RESULTS_BACKEND_USE_MSGPACK = True
# Login rate limits (Flask-Limiter) counted in Redis, shared by every gunicorn worker, instead of in memory.
RATELIMIT_STORAGE_URI = f"redis://{_redis_host}:{_redis_port}/{_cache_redis_db}"

# -- embedding in the Enlaight front end -------------------------------------------------------------------------
FEATURE_FLAGS = {"EMBEDDED_SUPERSET": True}
WTF_CSRF_ENABLED = True

# The front end's origins (SUPERSET_CORS_ORIGINS): they may call Superset's API and frame its dashboards.
_frontend_origins = _origins(os.environ.get("SUPERSET_CORS_ORIGINS", "http://localhost:8080"))

ENABLE_CORS = True  # needs flask-cors (installed by superset/Dockerfile)
CORS_OPTIONS = {
    "origins": _frontend_origins,
    "supports_credentials": True,
    "allow_headers": ["*"],
    "resources": [r"/api/*"],
}

# Superset's default Talisman policy plus frame-ancestors: the front end's origins may frame Superset's pages.
# X-Frame-Options goes (it can say only SAMEORIGIN or DENY, and SAMEORIGIN would forbid the front end's frame).
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:", "https://apachesuperset.gateway.scarf.sh", "https://static.scarf.sh/"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'", "https://api.mapbox.com", "https://events.mapbox.com"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'", *_frontend_origins],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "frame_options": None,
    "force_https": False,
    "session_cookie_secure": False,
}

# Guest tokens (the backend asks for one per embedded dashboard) are signed with this secret: required, and
# never Superset's public default, or anyone could forge a token for any dashboard.
GUEST_TOKEN_JWT_SECRET = _guest_token_secret()
# Gamma: Superset's role for people who look at dashboards and charts (no admin, no SQL Lab, no database of its
# own); a guest token further limits the guest to the dashboards it names, and a guest owns nothing to change.
GUEST_ROLE_NAME = "Gamma"
