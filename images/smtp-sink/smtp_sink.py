"""Minimal SMTP sink with an HTTP view: the local stand-in for smtp4dev.

SMTP (port $SMTP_PORT, 25): EHLO/HELO, AUTH PLAIN/LOGIN (always accepted: apps configured with
credentials must not fail), MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT. Mails are kept in memory only.
HTTP (port $HTTP_PORT, 80):
  GET    /                          HTML list of received mails
  GET    /api/messages              JSON list, newest first: id, from, to (list), subject, receivedDate, ...
  GET    /api/messages/<id>         one message (same fields)
  GET    /api/messages/<id>/source  raw RFC 822 text
  DELETE /api/messages[/*]          forget all messages; DELETE /api/messages/<id> forgets one
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import socket
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
HOSTNAME = socket.gethostname()
# Other containers must reach both servers: listen on every interface of the container.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class Store:
    """Thread-safe ring buffer: the SMTP side (asyncio) writes, the HTTP side (threads) reads."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._items: deque[dict] = deque(maxlen=limit)

    def add(self, item: dict) -> None:
        with self._lock:
            self._items.append(item)

    def list(self) -> list[dict]:
        with self._lock:
            return list(reversed(self._items))

    def get(self, msg_id: str) -> dict | None:
        with self._lock:
            return next((m for m in self._items if m["id"] == msg_id), None)

    def delete(self, msg_id: str | None = None) -> None:
        with self._lock:
            if msg_id is None:
                self._items.clear()
            else:
                self._items = deque((m for m in self._items if m["id"] != msg_id), maxlen=self._items.maxlen)


STORE = Store(int(os.environ.get("SMTP_SINK_MAX_MESSAGES", "1000")))


def parse_message(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict:
    """Summarise a mail the way smtp4dev's API does (from, to, subject, receivedDate) plus the text body."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    body = ""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            body = part.get_content()
    except (LookupError, ValueError):  # odd charsets or broken MIME must not lose the mail
        body = raw.decode("utf-8", "replace")
    return {
        "id": str(uuid.uuid4()),
        "from": str(msg.get("from", "") or mail_from),
        "to": list(rcpt_tos),
        "cc": str(msg.get("cc", "") or ""),
        "subject": str(msg.get("subject", "") or ""),
        "receivedDate": datetime.now(UTC).isoformat(),
        "mailFrom": mail_from,
        "size": len(raw),
        "body": body.replace("\r\n", "\n"),  # SMTP's CRLF is transport detail, not content
        "source": raw.decode("utf-8", "replace"),
    }


def _address(arg: str) -> str:
    """`FROM:<a@b> SIZE=1` -> `a@b`."""
    match = re.search(r"<([^>]*)>", arg)
    if match:
        return match.group(1)
    return arg.partition(":")[2].strip().split(" ")[0]


async def handle_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def reply(text: str) -> None:
        writer.write(text.encode() + b"\r\n")
        await writer.drain()

    async def read_line() -> str | None:
        line = await reader.readline()
        return None if not line else line.decode("utf-8", "replace").rstrip("\r\n")

    mail_from: str | None = None
    rcpts: list[str] = []
    await reply(f"220 {HOSTNAME} ESMTP enlaight smtp-sink")
    try:
        while (line := await read_line()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                await reply(
                    f"250-{HOSTNAME}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n"
                    f"250 SIZE {MAX_MESSAGE_BYTES}"
                )
            elif verb == "HELO":
                await reply(f"250 {HOSTNAME}")
            elif verb == "AUTH":
                mechanism, _, initial = arg.partition(" ")
                if mechanism.upper() == "LOGIN":
                    await reply("334 VXNlcm5hbWU6")
                    await read_line()
                    await reply("334 UGFzc3dvcmQ6")
                    await read_line()
                elif not initial:
                    await reply("334 ")
                    await read_line()
                await reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                mail_from, rcpts = _address(arg), []
                await reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if mail_from is None:
                    await reply("503 5.5.1 MAIL first")
                    continue
                rcpts.append(_address(arg))
                await reply("250 2.1.5 OK")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    await reply("503 5.5.1 MAIL and RCPT first")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                chunks: list[bytes] = []
                size = 0
                while True:
                    data = await reader.readline()
                    if not data or data in (b".\r\n", b".\n"):
                        break
                    if data.startswith(b"."):  # RFC 5321 dot-unstuffing
                        data = data[1:]
                    size += len(data)
                    if size <= MAX_MESSAGE_BYTES:
                        chunks.append(data)
                if size > MAX_MESSAGE_BYTES:
                    await reply("552 5.3.4 Message too big")
                else:
                    item = parse_message(b"".join(chunks), mail_from, rcpts)
                    STORE.add(item)
                    print(
                        f"received {item['id']} from={item['from']!r} to={item['to']} subject={item['subject']!r}",
                        flush=True,
                    )
                    await reply(f"250 2.0.0 OK queued as {item['id']}")
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                await reply("250 2.0.0 OK")
            elif verb == "NOOP":
                await reply("250 2.0.0 OK")
            elif verb == "VRFY":
                await reply("252 2.1.5 Cannot VRFY user, but will accept message")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                break
            elif verb == "STARTTLS":
                await reply("454 4.7.0 TLS not available")
            else:
                await reply("500 5.5.2 Command not recognized")
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass  # a client that hangs up or sends garbage only loses its own session
    finally:
        writer.close()


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>smtp-sink</title>
<style>body{{font-family:sans-serif}}td,th{{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
</head><body><h1>smtp-sink: {count} message(s)</h1>
<p>JSON: <a href="/api/messages">/api/messages</a></p>
<table><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th></tr>{rows}</table></body></html>"""


class HttpHandler(BaseHTTPRequestHandler):
    server_version = "smtp-sink/1"

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        parts = path.strip("/").split("/")
        if path == "/":
            rows = "".join(
                '<tr><td>{}</td><td>{}</td><td>{}</td><td><a href="/api/messages/{}">{}</a></td></tr>'.format(
                    *(
                        html.escape(x)
                        for x in (
                            m["receivedDate"],
                            m["from"],
                            ", ".join(m["to"]),
                            m["id"],
                            m["subject"] or "(no subject)",
                        )
                    )
                )
                for m in STORE.list()
            )
            self._send(200, PAGE.format(count=len(STORE.list()), rows=rows).encode(), "text/html; charset=utf-8")
        elif path == "/api/messages":
            self._json(200, [{k: v for k, v in m.items() if k != "source"} for m in STORE.list()])
        elif parts[:2] == ["api", "messages"] and len(parts) in (3, 4):
            item = STORE.get(parts[2])
            if item is None:
                self._json(404, {"error": "no such message"})
            elif len(parts) == 4 and parts[3] == "source":
                self._send(200, item["source"].encode(), "message/rfc822")
            elif len(parts) == 3:
                self._json(200, {k: v for k, v in item.items() if k != "source"})
            else:
                self._json(404, {"error": "not found"})
        elif path == "/healthz":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": "not found"})

    do_HEAD = do_GET

    def do_DELETE(self) -> None:  # noqa: N802
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[:2] != ["api", "messages"] or len(parts) > 3:
            self._json(404, {"error": "not found"})
            return
        STORE.delete(None if len(parts) == 2 or parts[2] == "*" else parts[2])
        self._json(200, {"deleted": True})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # healthchecks would flood the log; mails are logged when received


async def main() -> None:
    http_server = ThreadingHTTPServer((ALL_INTERFACES, int(os.environ.get("HTTP_PORT", "80"))), HttpHandler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    smtp_server = await asyncio.start_server(
        handle_smtp, ALL_INTERFACES, int(os.environ.get("SMTP_PORT", "25")), limit=1024 * 1024
    )
    print(
        f"smtp-sink: SMTP on :{os.environ.get('SMTP_PORT', '25')}, HTTP on :{os.environ.get('HTTP_PORT', '80')}",
        flush=True,
    )
    # PID 1 ignores SIGTERM unless it installs a handler: without this `docker stop` waits 10 s.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with smtp_server:
        await stop.wait()
    http_server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
