"""Container healthcheck: GET the liveness endpoint; on failure print one line and exit 1.

    python /app/healthcheck.py [URL]

Standard library only (it runs before and without Django) and no proxy: the URL is the container's own loopback.
Silent on success; on failure one line such as
`healthcheck: GET /api/health/ failed: connection refused`, which Docker keeps in the container's health log.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request

URL = "http://127.0.0.1:8000/api/health/"
TIMEOUT = 4.0  # seconds; below the compose healthcheck's own 5 s timeout


def _reason(exc: BaseException, timeout: float) -> str:
    """Why the request failed, in a few words."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, BaseException):
            return _reason(exc.reason, timeout)
        return " ".join(str(exc.reason).split()) or "URL error"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def check(url: str = URL, timeout: float = TIMEOUT) -> str | None:
    """None when the URL answers 200, else the one-line reason it did not."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            response.read(4096)
            status = response.status
    except Exception as exc:  # noqa: BLE001 - any failure is reported as one line
        return _reason(exc, timeout)
    return None if status == 200 else f"HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else URL
    reason = check(url)
    if reason is None:
        return 0
    print(f"healthcheck: GET {urllib.parse.urlsplit(url).path or '/'} failed: {reason}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
