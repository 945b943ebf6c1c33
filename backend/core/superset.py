"""Guest tokens for Superset's embedded dashboards, through Superset's REST API (standard-library HTTP only).

One guest token takes three calls on one cookie session (Superset ties its CSRF token to the session cookie):

1. POST {SUPERSET_URL}/api/v1/security/login        {"username", "password", "provider": "db", "refresh": false}
                                                     -> {"access_token": ...}
2. GET  {SUPERSET_URL}/api/v1/security/csrf_token/  (Authorization: Bearer) -> {"result": <csrf token>}
3. POST {SUPERSET_URL}/api/v1/security/guest_token/ (Bearer, X-CSRFToken, Referer)
        {"user": {...}, "resources": [{"type": "dashboard", "id": <embedded UUID>}], "rls": []} -> {"token": ...}

Failures raise SupersetError with a one-line message that never contains the admin password.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

GUEST_USER = {"username": "enlaight-guest", "first_name": "Enlaight", "last_name": "Guest"}
MAX_BODY = 1024 * 1024  # bytes read from any Superset answer


class SupersetError(Exception):
    """Superset is unreachable or refused; the message is one line and safe to show (no password in it)."""


class SupersetNotConfigured(SupersetError):
    """The backend lacks a setting it needs to talk to Superset."""


def _one_line(text: str, secrets: tuple[str, ...], limit: int = 300) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _superset_message(body: bytes) -> str:
    """Superset's own explanation from an error body ({"message": ...} or {"msg": ...}), if there is one."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("message", "msg", "errors", "error"):
            if data.get(key):
                value = data[key]
                return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return ""


class _Session:
    """One cookie jar, one base URL, one timeout; every answer decoded as a JSON object."""

    def __init__(self, base_url: str, timeout: float, secrets: tuple[str, ...]):
        self.base_url = base_url
        self.timeout = timeout
        self.secrets = secrets
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(
        self,
        what: str,
        method: str,
        path: str,
        payload: dict | None = None,
        *,
        bearer: str | None = None,
        csrf: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if csrf:
            headers["X-CSRFToken"] = csrf
            # Flask-WTF checks the Referer of CSRF-protected requests made over HTTPS.
            headers["Referer"] = f"{self.base_url}/"
        url = f"{self.base_url}{path}"  # base_url's scheme is http(s), checked by guest_token()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_BODY)
        except urllib.error.HTTPError as exc:
            try:
                detail = _superset_message(exc.read(MAX_BODY) if exc.fp else b"")
            except (OSError, http.client.HTTPException):
                detail = ""
            hint = ""
            if exc.code == 401 and path.endswith("/login"):
                hint = " (check SUPERSET_ADMIN_USERNAME and SUPERSET_ADMIN_PASSWORD)"
            reason = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
            raise self.error(f"Superset refused to {what}: {reason}{hint}") from None
        except TimeoutError:
            raise self.error(f"Superset did not answer within {self.timeout:g}s ({what}) at {self.base_url}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self.error(
                    f"Superset did not answer within {self.timeout:g}s ({what}) at {self.base_url}"
                ) from None
            raise self.error(f"Superset is unreachable at {self.base_url} ({what}): {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = str(exc) or type(exc).__name__
            raise self.error(f"Superset is unreachable at {self.base_url} ({what}): {reason}") from None
        try:
            answer = json.loads(body.decode("utf-8"))
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self.error(f"Superset answered with something other than a JSON object ({what})")
        return answer

    def error(self, message: str) -> SupersetError:
        return SupersetError(_one_line(message, self.secrets))

    def field(self, answer: dict[str, Any], key: str, what: str) -> str:
        value = answer.get(key)
        if not isinstance(value, str) or not value:
            raise self.error(f"Superset answered without a {key} ({what})")
        return value


def guest_token(embedded_id: str) -> str:
    """A guest token that lets a browser show the embedded dashboard `embedded_id` (read-only, short-lived)."""
    username = settings.SUPERSET_ADMIN_USERNAME
    password = settings.SUPERSET_ADMIN_PASSWORD
    if not username or not password:
        raise SupersetNotConfigured(
            "Superset is not configured: set SUPERSET_ADMIN_USERNAME and SUPERSET_ADMIN_PASSWORD for the backend"
        )
    base_url = settings.SUPERSET_URL
    if not base_url.startswith(("http://", "https://")):
        raise SupersetNotConfigured(f"SUPERSET_URL must be an http:// or https:// URL, got {base_url!r}")
    session = _Session(base_url, settings.SUPERSET_TIMEOUT, secrets=(password,))

    what = f"log in as {username}"
    login = session.call(
        what,
        "POST",
        "/api/v1/security/login",
        {"username": username, "password": password, "provider": "db", "refresh": False},
    )
    access_token = session.field(login, "access_token", what)

    what = "give a CSRF token"
    csrf = session.field(session.call(what, "GET", "/api/v1/security/csrf_token/", bearer=access_token), "result", what)

    what = f"create a guest token for embedded dashboard {embedded_id}"
    answer = session.call(
        what,
        "POST",
        "/api/v1/security/guest_token/",
        {"user": GUEST_USER, "resources": [{"type": "dashboard", "id": embedded_id}], "rls": []},
        bearer=access_token,
        csrf=csrf,
    )
    return session.field(answer, "token", what)
