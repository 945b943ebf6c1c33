"""Superset configuration for the Enlaight stack: metadata in MySQL, cache in Redis, secrets from env."""

import os
from urllib.parse import quote


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set: add it to .env (run `invoke env`)")
    return value


SECRET_KEY = _required("SUPERSET_SECRET_KEY")

_db_user = quote(_required("SUPERSET_DB_USER"), safe="")
_db_password = quote(_required("SUPERSET_DB_PASSWORD"), safe="")
_db_host = os.environ.get("MYSQL_HOST", "mysql")
_db_port = os.environ.get("MYSQL_PORT", "3306")
_db_name = _required("SUPERSET_DB_NAME")
SQLALCHEMY_DATABASE_URI = f"mysql+pymysql://{_db_user}:{_db_password}@{_db_host}:{_db_port}/{_db_name}?charset=utf8mb4"

_redis_host = os.environ.get("REDIS_HOST", "redis")
_redis_port = os.environ.get("REDIS_PORT", "6379")
# Database 2: the backend's Django cache uses database 1, so the two never evict each other's keys.
_redis_url = f"redis://{_redis_host}:{_redis_port}/2"
CACHE_CONFIG = {
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "superset_",
    "CACHE_REDIS_URL": _redis_url,
}
DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "superset_data_"}
RESULTS_BACKEND_USE_MSGPACK = True

# Dashboards are embedded in the Enlaight frontend through guest tokens.
FEATURE_FLAGS = {"EMBEDDED_SUPERSET": True}
WTF_CSRF_ENABLED = True
