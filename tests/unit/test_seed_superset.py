"""The Superset seed step's payloads, its by-name decisions on captured API answers, and its relay (no Docker)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from enlaight_ops.seed import superset as ss
from enlaight_ops.seed.report import SeedError, StepReport

ENV = {
    "SUPERSET_ADMIN_USERNAME": "admin",
    "SUPERSET_ADMIN_PASSWORD": "admin-secret",
    "SUPERSET_RO_DB_USER": "superset_ro",
    "SUPERSET_RO_DB_PASSWORD": "p@ss/w:rd",
    "BACKEND_DB": "enlaight",
}


def test_database_uri_quotes_credentials_and_defaults_host_and_port() -> None:
    assert ss.database_uri(ENV) == "mysql+pymysql://superset_ro:p%40ss%2Fw%3Ard@mysql:3306/enlaight"
    env = {**ENV, "MYSQL_HOST": "db.internal", "MYSQL_PORT": "3307"}
    assert ss.database_uri(env).endswith("@db.internal:3307/enlaight")
    payload = ss.database_payload(ENV)
    assert payload["database_name"] == "Enlaight (read-only)" and payload["allow_dml"] is False


def test_a_missing_read_only_user_is_named_never_its_value() -> None:
    with pytest.raises(SeedError, match="SUPERSET_RO_DB_USER, SUPERSET_RO_DB_PASSWORD not set") as raised:
        ss.database_uri({"BACKEND_DB": "enlaight", "SUPERSET_RO_DB_PASSWORD": ""})
    assert "p@ss" not in str(raised.value)


def test_dataset_sql_reads_the_core_tables() -> None:
    """The virtual datasets' SQL on the Django tables' shape (SQLite here; the SQL is plain ANSI joins)."""
    db = sqlite3.connect(":memory:")
    db.executescript("""
        CREATE TABLE core_expertisearea (id TEXT PRIMARY KEY, name TEXT, created_at TEXT, updated_at TEXT);
        CREATE TABLE core_agent (id TEXT PRIMARY KEY, name TEXT, expertise_area_id TEXT, created_at TEXT);
        CREATE TABLE core_chatsession (id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT, session_key TEXT,
                                       agent_id TEXT, user_id INTEGER, data TEXT);
        INSERT INTO core_expertisearea VALUES ('e1', 'Support', '', '');
        INSERT INTO core_agent VALUES ('a1', 'Support Assistant', 'e1', ''), ('a2', 'Loner', NULL, '');
        INSERT INTO core_chatsession VALUES ('s1', '2026-01-02 10:00:00', '', 'k1', 'a1', 7, '{}'),
                                            ('s2', '2026-01-03 11:00:00', '', 'k2', 'a1', 8, '{}');
    """)
    sessions = db.execute(ss.DATASET_SQL[ss.SESSIONS]).fetchall()
    assert sessions == [
        ("s1", "2026-01-02 10:00:00", 7, "Support Assistant", "Support"),
        ("s2", "2026-01-03 11:00:00", 8, "Support Assistant", "Support"),
    ]
    agents = sorted(db.execute(ss.DATASET_SQL[ss.AGENTS]).fetchall())
    assert agents == [("a1", "Support Assistant", "Support"), ("a2", "Loner", "(none)")]
    for sql in ss.DATASET_SQL.values():  # Superset runs a virtual dataset as one statement
        assert ";" not in sql and sql.lstrip().upper().startswith("SELECT")
    payload = ss.dataset_payload(4, ENV, ss.SESSIONS)
    assert payload == {"database": 4, "schema": "enlaight", "table_name": ss.SESSIONS,
                       "sql": ss.DATASET_SQL[ss.SESSIONS]}  # fmt: skip


def test_every_chart_reads_a_dataset_column() -> None:
    columns = {ss.SESSIONS: {"session_id", "created_at", "user_id", "agent_name", "expertise_area"},
               ss.AGENTS: {"agent_id", "agent_name", "expertise_area"}}  # fmt: skip
    assert [c.name for c in ss.CHARTS] == ["Sessions over time", "Sessions by agent", "Agents by expertise area"]
    for spec in ss.CHARTS:
        assert spec.column in columns[spec.dataset], spec.name


def test_chart_payload_saves_params_and_a_query_context() -> None:
    over_time, by_agent, _by_area = ss.CHARTS
    payload = ss.chart_payload(over_time, 12)
    assert (payload["datasource_id"], payload["datasource_type"], payload["viz_type"]) == (
        12, "table", "echarts_timeseries_line",
    )  # fmt: skip
    params, context = json.loads(payload["params"]), json.loads(payload["query_context"])
    assert params["datasource"] == "12__table" and params["x_axis"] == "created_at"
    assert params["time_grain_sqla"] == "P1D"
    assert context["datasource"] == {"id": 12, "type": "table"} and context["form_data"] == params
    (query,) = context["queries"]
    axis = query["columns"][0]
    assert (axis["columnType"], axis["sqlExpression"], axis["timeGrain"]) == ("BASE_AXIS", "created_at", "P1D")
    assert query["metrics"][0] == {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "sessions"}
    assert query["orderby"] == [[axis, True]]  # time in order

    pie = ss.query_context(by_agent, 12)
    assert pie["queries"][0]["columns"] == ["agent_name"]
    assert pie["queries"][0]["orderby"] == [[pie["queries"][0]["metrics"][0], False]]  # biggest first
    assert pie["form_data"]["groupby"] == ["agent_name"] and "metric" in pie["form_data"]


def test_dashboard_layout_places_every_chart_once() -> None:
    charts = [(31, "Sessions over time"), (32, "Sessions by agent"), (33, "Agents by expertise area")]
    layout = ss.dashboard_layout(charts)
    assert layout["GRID_ID"]["children"] == ["ROW-1", "ROW-2"]
    assert layout["ROW-1"]["children"] == ["CHART-31"] and layout["ROW-2"]["children"] == ["CHART-32", "CHART-33"]
    assert [layout[f"CHART-{i}"]["meta"]["width"] for i in (31, 32, 33)] == [12, 6, 6]
    for key, node in layout.items():  # every child exists and names its parent
        for child in node.get("children", []) if isinstance(node, dict) else []:
            assert layout[child]["parents"][-1] == key
    update = ss.dashboard_update(layout)
    assert json.loads(update["json_metadata"])["positions"] == layout
    assert ss.layout_chart_ids(update["position_json"]) == {31, 32, 33}
    assert ss.layout_chart_ids(None) == set() and ss.layout_chart_ids("{}") == set()


def test_by_name_query_is_one_exact_rison_filter() -> None:
    assert ss.by_name_query("chart", "Sessions by agent") == (
        "(filters:!((col:slice_name,opr:eq,value:'Sessions by agent')),page_size:100)"
    )
    assert "value:'it!'s!!'" in ss.by_name_query("dashboard", "it's!")


# A list answer as Superset 4.1 gives it (trimmed): the server's filter matched, the name is checked again.
CHART_LIST = {
    "count": 2,
    "ids": [7, 9],
    "result": [
        {"id": 7, "slice_name": "Sessions over time", "viz_type": "echarts_timeseries_line"},
        {"id": 9, "slice_name": "Sessions over time (copy)", "viz_type": "echarts_timeseries_line"},
    ],
}


def test_named_keeps_exact_names_only() -> None:
    assert [row["id"] for row in ss.named(CHART_LIST, "chart", "Sessions over time")] == [7]
    assert ss.named({"count": 0, "result": []}, "chart", "Sessions over time") == []


class FakeApi:
    """Answers from a dict of (method, path) -> answer; records every call."""

    def __init__(self, answers: dict[tuple[str, str], dict]):
        self.answers, self.calls = answers, []

    def call(self, method: str, path: str, **kwargs: Any) -> dict:
        self.calls.append((method, path, kwargs))
        return self.answers[method, path]


def test_ensure_an_existing_name_creates_nothing() -> None:
    api, report = FakeApi({("GET", "/api/v1/chart/"): CHART_LIST}), StepReport("superset")
    assert ss.ensure(api, report, "chart", "Sessions over time", lambda: pytest.fail("must not build")) == 7
    assert [c[0] for c in api.calls] == ["GET"]
    assert api.calls[0][2]["params"]["q"] == ss.by_name_query("chart", "Sessions over time")
    assert report.existing == ["chart 'Sessions over time'"] and not report.changed


def test_ensure_a_missing_name_creates_it() -> None:
    api = FakeApi({("GET", "/api/v1/chart/"): {"count": 0, "result": []}, ("POST", "/api/v1/chart/"): {"id": 41}})
    report = StepReport("superset")
    assert ss.ensure(api, report, "chart", "Sessions by agent", lambda: {"slice_name": "Sessions by agent"}) == 41
    assert api.calls[1][2]["json"] == {"slice_name": "Sessions by agent"} and api.calls[1][2]["expect"] == (201,)
    assert report.created == ["chart 'Sessions by agent'"]


def test_embedding_decisions_and_domains() -> None:
    assert ss.embedding_change(None, []) == "created"
    current = {"uuid": "5c1c9f0e-0000-4000-8000-000000000001", "allowed_domains": ["http://a", "http://b"]}
    assert ss.embedding_change(current, ["http://b", "http://a"]) is None
    assert ss.embedding_change(current, []) == "updated"
    assert ss.allowed_domains({"SUPERSET_CORS_ORIGINS": " http://a , ,http://b"}) == ["http://a", "http://b"]
    assert ss.allowed_domains({}) == []


class FakeSuperset:
    """Superset's API as the step uses it, over in-memory objects: enough to run the step twice and reset."""

    def __init__(self):
        self.objects: dict[str, dict[int, dict]] = {kind: {} for kind in ss.NAME_COLUMNS}
        self.embedded: dict[int, dict] = {}
        self.next_id, self.calls = 1, []

    def login(self, env):
        pass

    def call(self, method: str, path: str, *, expect=(200,), json: Any = None, params: Any = None) -> dict:
        self.calls.append((method, path))
        kind, _, rest = path.removeprefix("/api/v1/").partition("/")
        rows = self.objects.get(kind, {})
        if rest.endswith("embedded"):
            dashboard = int(rest.split("/")[0])
            if method == "POST":
                self.embedded[dashboard] = {"uuid": f"uuid-{dashboard}", "allowed_domains": json["allowed_domains"]}
            return {"result": self.embedded.get(dashboard)} if dashboard in self.embedded else {"message": "Not found"}
        if method == "GET" and not rest:
            name = re.search(r"value:'(.*)'\)", params["q"]).group(1)
            return {"result": [row for row in rows.values() if row[ss.NAME_COLUMNS[kind]] == name]}
        if method == "POST":
            self.next_id += 1
            rows[self.next_id] = {"id": self.next_id, **json}
            return {"id": self.next_id, "result": json}
        if method == "PUT":
            rows[int(rest)].update(json)
            return {"id": int(rest), "result": json}
        if method == "DELETE":
            del rows[int(rest)]
            self.embedded.pop(int(rest), None)
            return {"message": "OK"}
        return {"result": rows[int(rest)]}


@pytest.fixture
def fake_superset(monkeypatch):
    fake, links = FakeSuperset(), []
    monkeypatch.setattr(ss, "superset_api", lambda _ctx: _Yield(fake))

    def link(ctx, report, dashboard_id, embedded_id):
        links.append((dashboard_id, embedded_id))

    monkeypatch.setattr(ss, "link_dashboard", link)
    fake.links = links
    return fake


class _Yield:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


def test_a_second_run_creates_nothing_and_reset_removes_only_its_names(fake_superset) -> None:
    ctx = SimpleNamespace(env=ENV)
    mine = fake_superset.objects["chart"]
    first = ss.SupersetStep().run(ctx, reset=False)
    assert first.created == [
        "database 'Enlaight (read-only)'", "dataset 'enlaight_chat_sessions'", "dataset 'enlaight_agents'",
        "dashboard 'Enlaight analytics'", "chart 'Sessions over time'", "chart 'Sessions by agent'",
        "chart 'Agents by expertise area'", "layout of dashboard 'Enlaight analytics' (3 charts)",
        "embedding of dashboard 'Enlaight analytics' (uuid-5; domains: any)",
    ]  # fmt: skip
    dashboard = fake_superset.objects["dashboard"][5]
    assert ss.layout_chart_ids(dashboard["position_json"]) == set(mine)
    sessions_dataset = next(
        d["id"] for d in fake_superset.objects["dataset"].values() if d["table_name"] == ss.SESSIONS
    )
    assert json.loads(mine[6]["query_context"])["datasource"]["id"] == sessions_dataset

    calls = len(fake_superset.calls)
    second = ss.SupersetStep().run(ctx, reset=False)
    assert not second.changed and len(second.existing) == len(first.created)
    assert all(method == "GET" for method, _path in fake_superset.calls[calls:])
    assert fake_superset.links == [(5, "uuid-5"), (5, "uuid-5")]

    mine[99] = {"id": 99, "slice_name": "A person's chart"}
    reset = ss.SupersetStep().run(ctx, reset=True)
    assert len(reset.removed) == 7 and len(reset.created) == len(first.created)
    assert "A person's chart" in {row["slice_name"] for row in mine.values()}
    assert fake_superset.links[-1] != (5, "uuid-5")  # the new dashboard is recorded on the project


def test_api_errors_name_the_call_and_mask_secrets() -> None:
    class Session:
        def request(self, method, url, **kwargs):
            response = requests.Response()
            response.status_code, response._content = 422, b'{"message": "cannot connect with p%40ss%2Fw%3Ard"}'
            return response

    masked = ss.SupersetApi(Session(), lambda text: text.replace("p%40ss%2Fw%3Ard", "****"))
    with pytest.raises(SeedError, match=r"POST /api/v1/database/: Superset answered HTTP 422: .*\*\*\*\*") as raised:
        masked.call("POST", "/api/v1/database/", json={})
    assert "p%40ss" not in str(raised.value)


# -- the relay, on this host's python against a local HTTP server ----------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/login":
            return self._send(200, {"ok": True}, cookie="session=abc; Path=/; HttpOnly")
        seen = {"cookie": self.headers.get("Cookie"), "encoding": self.headers.get("Accept-Encoding")}
        return self._send(200 if self.path == "/echo" else 404, seen)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(201, {"got": body, "csrf": self.headers.get("X-CSRFToken")})

    def _send(self, status, body, cookie=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_relay_keeps_the_session_cookie_and_passes_requests_through() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    # `docker compose exec -T superset python -u -c RELAY` becomes this host's python -u -c RELAY.
    compose = SimpleNamespace(popen=lambda *args, **kwargs: subprocess.Popen([sys.executable, *args[4:]], **kwargs))
    session = requests.Session()
    session.mount("http://127.0.0.1:", ss.ContainerAdapter(SimpleNamespace(compose=compose)))
    try:
        assert session.get(f"{base}/login").json() == {"ok": True}
        assert session.get(f"{base}/echo").json() == {"cookie": "session=abc", "encoding": "identity"}
        posted = session.post(f"{base}/x", json={"name": "Enlaight (read-only)"}, headers={"X-CSRFToken": "t"})
        assert posted.status_code == 201 and posted.json() == {"got": {"name": "Enlaight (read-only)"}, "csrf": "t"}
        assert session.get(f"{base}/missing").status_code == 404
        with pytest.raises(requests.ConnectionError):
            session.get("http://127.0.0.1:1/nothing-listens")
    finally:
        session.close()
        server.shutdown()


def test_a_refused_login_names_the_env_keys_not_the_password() -> None:
    class Session:
        headers: dict = {}

        def request(self, method, url, **kwargs):
            response = requests.Response()
            response.status_code, response._content = 401, b'{"message": "Not authorized"}'
            return response

    with pytest.raises(SeedError, match="refused the login of admin: check SUPERSET_ADMIN_USERNAME") as raised:
        ss.SupersetApi(Session(), str).login(ENV)
    assert ENV["SUPERSET_ADMIN_PASSWORD"] not in str(raised.value)
    with pytest.raises(SeedError, match="SUPERSET_ADMIN_PASSWORD is not set"):
        ss.SupersetApi(Session(), str).login({})
