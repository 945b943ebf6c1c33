"""Superset step: a read-only connection to the backend's database, datasets, charts and an embedded dashboard.

Everything goes through Superset's REST API, idempotently by name, and is spoken from inside the running superset
container (like the n8n step speaks to n8n), so nothing depends on Superset's port being published: one
`docker compose exec` runs a small relay (its image always has python) that forwards each request `requests` makes
to 127.0.0.1:8088 and keeps Superset's session cookie, which its CSRF token is tied to. Secrets travel on stdin.
The dashboard is then recorded on the backend's first sample project by the backend's own command.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .backend import MANAGE
from .base import SeedContext
from .report import SeedError, StepReport, parse_command_report

SUPERSET = "http://127.0.0.1:8088"  # seen from inside the superset container
HTTP_TIMEOUT = 120  # seconds: creating a dataset runs its query once

DATABASE = "Enlaight (read-only)"
DASHBOARD = "Enlaight analytics"
SESSIONS, AGENTS = "enlaight_chat_sessions", "enlaight_agents"
# The Django app `core`'s tables in the backend's database (UUID keys; an agent's expertise area may be empty).
DATASET_SQL = {
    SESSIONS: "SELECT s.id AS session_id, s.created_at, s.user_id, a.name AS agent_name,\n"
    "       COALESCE(e.name, '(none)') AS expertise_area\n"
    "FROM core_chatsession s\n"
    "JOIN core_agent a ON a.id = s.agent_id\n"
    "LEFT JOIN core_expertisearea e ON e.id = a.expertise_area_id",
    AGENTS: "SELECT a.id AS agent_id, a.name AS agent_name, COALESCE(e.name, '(none)') AS expertise_area\n"
    "FROM core_agent a\n"
    "LEFT JOIN core_expertisearea e ON e.id = a.expertise_area_id",
}
# What each kind is called in the API, and the column its name is in.
NAME_COLUMNS = {"database": "database_name", "dataset": "table_name", "chart": "slice_name",
                "dashboard": "dashboard_title"}  # fmt: skip


@dataclass(frozen=True)
class ChartSpec:
    name: str
    dataset: str
    viz_type: str  # a time series (x axis) or a pie (group by)
    column: str
    metric: str  # the label of COUNT(*): what is counted
    time_grain: str | None = None  # ISO duration for a time axis


CHARTS = (
    ChartSpec("Sessions over time", SESSIONS, "echarts_timeseries_line", "created_at", "sessions", "P1D"),
    ChartSpec("Sessions by agent", SESSIONS, "pie", "agent_name", "sessions"),
    ChartSpec("Agents by expertise area", AGENTS, "echarts_timeseries_bar", "expertise_area", "agents"),
)
DASHBOARD_ROWS = ((0,), (1, 2))  # chart indexes per dashboard row: the time series alone, then the two others


class SupersetStep:
    name = "superset"
    services = ("superset", "backend")

    def run(self, ctx: SeedContext, *, reset: bool) -> StepReport:
        report = StepReport(self.name)
        with superset_api(ctx) as api:
            api.login(ctx.env)
            if reset:
                remove_seeded(api, report)
            database = ensure(api, report, "database", DATABASE, lambda: database_payload(ctx.env))
            datasets = {
                name: ensure(api, report, "dataset", name, lambda name=name: dataset_payload(database, ctx.env, name))
                for name in DATASET_SQL
            }
            dashboard = ensure(api, report, "dashboard", DASHBOARD, lambda: {"dashboard_title": DASHBOARD})
            charts = [
                ensure(api, report, "chart", spec.name, lambda spec=spec: chart_payload(spec, datasets[spec.dataset]))
                for spec in CHARTS
            ]
            ensure_layout(api, report, dashboard, charts)
            embedded = ensure_embedded(api, report, dashboard, allowed_domains(ctx.env))
        link_dashboard(ctx, report, dashboard, embedded)
        return report


# -- the API, through the superset container -------------------------------------------------------------------

# Runs inside the superset container: one JSON request per stdin line, one JSON answer per stdout line
# ({"status", "headers", "body"}; status 0 = no connection). Its cookie jar keeps Superset's session cookie.
_RELAY = """
import json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
for line in sys.stdin:
    r = json.loads(line)
    body = None if r["body"] is None else r["body"].encode()
    request = urllib.request.Request(r["url"], body, r["headers"], method=r["method"])
    try:
        try:
            res = opener.open(request, timeout=r["timeout"])
        except urllib.error.HTTPError as err:
            res = err
        with res:
            out = {"status": res.status, "headers": dict(res.headers), "body": res.read().decode(errors="replace")}
    except Exception as exc:
        out = {"status": 0, "headers": {}, "body": str(exc)}
    print(json.dumps(out), flush=True)
"""


class ContainerAdapter(BaseAdapter):
    """requests' transport for SUPERSET: the relay above, in one `docker compose exec` for the whole step."""

    def __init__(self, ctx: SeedContext):
        super().__init__()
        self.process = ctx.compose.popen(
            "exec", "-T", "superset", "python", "-u", "-c", _RELAY,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def send(self, request: requests.PreparedRequest, **_kwargs: Any) -> requests.Response:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        # urllib does not decompress: ask for plain bodies.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        line = {"method": request.method, "url": request.url, "headers": headers, "body": body, "timeout": HTTP_TIMEOUT}
        try:
            self.process.stdin.write(json.dumps(line) + "\n")
            self.process.stdin.flush()
            answer = json.loads(self.process.stdout.readline())
        except (OSError, ValueError):
            self.process.wait(timeout=30)
            reason = self.process.stderr.read().strip()[-300:] or f"exit {self.process.returncode}"
            raise requests.ConnectionError(f"the relay in the superset container stopped: {reason}") from None
        if answer["status"] == 0:
            raise requests.ConnectionError(answer["body"], request=request)
        response = requests.Response()
        response.status_code, response.url, response.request = answer["status"], request.url, request
        response.headers = CaseInsensitiveDict(answer["headers"])
        response.raw, response.encoding = io.BytesIO(answer["body"].encode()), "utf-8"
        return response

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class SupersetApi:
    def __init__(self, session: requests.Session, mask: Callable[[str], str]):
        self.session, self.mask = session, mask

    def call(self, method: str, path: str, *, expect: Sequence[int] = (200,), **kwargs: Any) -> dict[str, Any]:
        """One API call; its JSON answer, or SeedError naming the call and Superset's reason (secrets masked)."""
        try:
            response = self.session.request(method, SUPERSET + path, **kwargs)
        except requests.RequestException as exc:
            raise SeedError(self.mask(f"{method} {path}: Superset did not answer: {exc}")) from None
        if response.status_code not in expect:
            raise SeedError(self.mask(f"{method} {path}: Superset answered HTTP {response.status_code}: "
                                      f"{response.text[:300]}"))  # fmt: skip
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise SeedError(f"{method} {path}: Superset answered something other than JSON") from None

    def login(self, env: Mapping[str, str]) -> None:
        """A bearer token for the admin from .env, then a CSRF token (tied to the session cookie) for writes."""
        username, password = env.get("SUPERSET_ADMIN_USERNAME") or "admin", env.get("SUPERSET_ADMIN_PASSWORD", "")
        if not password:
            raise SeedError("SUPERSET_ADMIN_PASSWORD is not set: run `invoke env`")
        body = {"username": username, "password": password, "provider": "db", "refresh": False}
        token = self.call("POST", "/api/v1/security/login", json=body, expect=(200, 401)).get("access_token")
        if not token:
            raise SeedError(f"Superset refused the login of {username}: check SUPERSET_ADMIN_USERNAME and "
                            "SUPERSET_ADMIN_PASSWORD in .env")  # fmt: skip
        self.session.headers["Authorization"] = f"Bearer {token}"
        csrf = self.call("GET", "/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": f"{SUPERSET}/"})


@contextmanager
def superset_api(ctx: SeedContext) -> Iterator[SupersetApi]:
    session = requests.Session()
    session.mount(SUPERSET, ContainerAdapter(ctx))
    password = ctx.env.get("SUPERSET_RO_DB_PASSWORD", "")

    def mask(text: str) -> str:  # the env files' secrets, and the read-only password as it appears in the URI
        text = ctx.compose.mask(text)
        return text.replace(quote(password, safe=""), "****") if len(password) >= 4 else text

    try:
        yield SupersetApi(session, mask)
    finally:
        session.close()


# -- what to create: pure payload builders ---------------------------------------------------------------------


def database_uri(env: Mapping[str, str]) -> str:
    missing = [key for key in ("SUPERSET_RO_DB_USER", "SUPERSET_RO_DB_PASSWORD", "BACKEND_DB") if not env.get(key)]
    if missing:
        raise SeedError(f"{', '.join(missing)} not set: run `invoke env` (the read-only user Superset reads with)")
    user, password = (quote(env[key], safe="") for key in ("SUPERSET_RO_DB_USER", "SUPERSET_RO_DB_PASSWORD"))
    host, port = env.get("MYSQL_HOST") or "mysql", env.get("MYSQL_PORT") or "3306"
    return f"mysql+pymysql://{user}:{password}@{host}:{port}/{env['BACKEND_DB']}"


def database_payload(env: Mapping[str, str]) -> dict[str, Any]:
    return {"database_name": DATABASE, "sqlalchemy_uri": database_uri(env), "expose_in_sqllab": True,
            "allow_dml": False}  # fmt: skip


def dataset_payload(database_id: int, env: Mapping[str, str], name: str) -> dict[str, Any]:
    """A virtual (SQL) dataset; Superset reads its columns by running the query once."""
    return {"database": database_id, "schema": env.get("BACKEND_DB"), "table_name": name, "sql": DATASET_SQL[name]}


def _metric(spec: ChartSpec) -> dict[str, Any]:
    return {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": spec.metric}


def chart_params(spec: ChartSpec, dataset_id: int) -> dict[str, Any]:
    """The chart's form data, as Superset's explore view saves it."""
    params: dict[str, Any] = {"datasource": f"{dataset_id}__table", "viz_type": spec.viz_type, "adhoc_filters": [],
                              "time_range": "No filter", "row_limit": 1000}  # fmt: skip
    if spec.viz_type == "pie":
        return params | {"groupby": [spec.column], "metric": _metric(spec), "show_legend": True, "show_labels": True}
    return params | {"x_axis": spec.column, "time_grain_sqla": spec.time_grain, "metrics": [_metric(spec)],
                     "groupby": [], "x_axis_sort_asc": True, "show_legend": False}  # fmt: skip


def query_context(spec: ChartSpec, dataset_id: int) -> dict[str, Any]:
    """The saved query behind `GET /api/v1/chart/{id}/data/`: a time axis in order, categories by count."""
    metric = _metric(spec)
    if spec.time_grain:
        column: Any = {"columnType": "BASE_AXIS", "expressionType": "SQL", "sqlExpression": spec.column,
                       "label": spec.column, "timeGrain": spec.time_grain}  # fmt: skip
        orderby = [[column, True]]
    else:
        column, orderby = spec.column, [[metric, False]]
    query = {"columns": [column], "metrics": [metric], "orderby": orderby, "filters": [],
             "extras": {"having": "", "where": ""}, "time_range": "No filter", "row_limit": 1000}  # fmt: skip
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": False, "queries": [query],
            "form_data": chart_params(spec, dataset_id), "result_format": "json", "result_type": "full"}  # fmt: skip


def chart_payload(spec: ChartSpec, dataset_id: int) -> dict[str, Any]:
    return {
        "slice_name": spec.name,
        "viz_type": spec.viz_type,
        "datasource_id": dataset_id,
        "datasource_type": "table",
        "params": json.dumps(chart_params(spec, dataset_id)),
        "query_context": json.dumps(query_context(spec, dataset_id)),
    }


def dashboard_layout(charts: Sequence[tuple[int, str]], rows: Sequence[Sequence[int]] = DASHBOARD_ROWS) -> dict:
    """Superset's position_json: a grid of rows, each row's charts sharing its 12 columns."""
    layout: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": DASHBOARD}},
    }
    for number, indexes in enumerate(rows, 1):
        row = f"ROW-{number}"
        layout["GRID_ID"]["children"].append(row)
        layout[row] = {"type": "ROW", "id": row, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}  # fmt: skip
        for index in indexes:
            chart_id, name = charts[index]
            key = f"CHART-{chart_id}"
            layout[row]["children"].append(key)
            layout[key] = {"type": "CHART", "id": key, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                           "meta": {"chartId": chart_id, "sliceName": name, "width": 12 // len(indexes),
                                    "height": 50}}  # fmt: skip
    return layout


def dashboard_update(layout: dict) -> dict[str, Any]:
    """The PUT that shows the charts: json_metadata's `positions` also makes Superset attach them to the dashboard."""
    metadata = {"positions": layout, "color_scheme": "", "label_colors": {}, "expanded_slices": {},
                "refresh_frequency": 0, "timed_refresh_immune_slices": [], "default_filters": "{}"}  # fmt: skip
    return {"position_json": json.dumps(layout), "json_metadata": json.dumps(metadata), "published": True}


def layout_chart_ids(position_json: str | None) -> set[int]:
    layout = json.loads(position_json or "{}")
    return {
        node["meta"]["chartId"]
        for node in layout.values()
        if isinstance(node, dict) and node.get("type") == "CHART" and node.get("meta", {}).get("chartId")
    }


def allowed_domains(env: Mapping[str, str]) -> list[str]:
    """Where the embedded dashboard may be framed: SUPERSET_CORS_ORIGINS (comma-separated), or anywhere ([])."""
    return [origin.strip() for origin in env.get("SUPERSET_CORS_ORIGINS", "").split(",") if origin.strip()]


def embedding_change(current: Mapping[str, Any] | None, domains: Sequence[str]) -> str | None:
    """What enabling embedding does: "created", "updated" (other domains), or None when it is already so."""
    if not current or not current.get("uuid"):
        return "created"
    return None if sorted(current.get("allowed_domains") or []) == sorted(domains) else "updated"


# -- by name: find, create, remove ----------------------------------------------------------------------------


def by_name_query(kind: str, name: str) -> str:
    """The rison `q` of a list call for one exact name."""
    quoted = "'" + name.replace("!", "!!").replace("'", "!'") + "'"
    return f"(filters:!((col:{NAME_COLUMNS[kind]},opr:eq,value:{quoted})),page_size:100)"


def named(answer: Mapping[str, Any], kind: str, name: str) -> list[dict[str, Any]]:
    """The rows of a list answer that carry exactly this name (the filter is the server's; this is the check)."""
    return [row for row in answer.get("result") or [] if row.get(NAME_COLUMNS[kind]) == name]


def find(api: SupersetApi, kind: str, name: str) -> list[dict[str, Any]]:
    return named(api.call("GET", f"/api/v1/{kind}/", params={"q": by_name_query(kind, name)}), kind, name)


def ensure(api: SupersetApi, report: StepReport, kind: str, name: str, payload: Callable[[], dict]) -> int:
    """The id of the KIND called NAME: the existing one, else one created from `payload()`."""
    existing = find(api, kind, name)
    if existing:
        report.existing.append(f"{kind} {name!r}")
        return int(existing[0]["id"])
    created = api.call("POST", f"/api/v1/{kind}/", json=payload(), expect=(201,))
    report.created.append(f"{kind} {name!r}")
    return int(created["id"])


def ensure_layout(api: SupersetApi, report: StepReport, dashboard_id: int, chart_ids: Sequence[int]) -> None:
    position_json = api.call("GET", f"/api/v1/dashboard/{dashboard_id}")["result"].get("position_json")
    label = f"layout of dashboard {DASHBOARD!r} ({len(chart_ids)} charts)"
    if layout_chart_ids(position_json) == set(chart_ids):
        report.existing.append(label)
        return
    layout = dashboard_layout([(chart_id, spec.name) for chart_id, spec in zip(chart_ids, CHARTS, strict=True)])
    api.call("PUT", f"/api/v1/dashboard/{dashboard_id}", json=dashboard_update(layout))
    (report.updated if position_json else report.created).append(label)


def ensure_embedded(api: SupersetApi, report: StepReport, dashboard_id: int, domains: list[str]) -> str:
    """The embedded UUID of the dashboard, embedding enabled (for `domains`) if it was not."""
    path = f"/api/v1/dashboard/{dashboard_id}/embedded"
    current = api.call("GET", path, expect=(200, 404)).get("result")
    change = embedding_change(current, domains)
    if change:
        current = api.call("POST", path, json={"allowed_domains": domains})["result"]
    label = f"embedding of dashboard {DASHBOARD!r} ({current['uuid']}; domains: {', '.join(domains) or 'any'})"
    {"created": report.created, "updated": report.updated, None: report.existing}[change].append(label)
    return str(current["uuid"])


def remove_seeded(api: SupersetApi, report: StepReport) -> None:
    """--reset: what this step creates, by its names (the dashboard first: a database with datasets cannot go)."""
    names = {"dashboard": [DASHBOARD], "chart": [c.name for c in CHARTS], "dataset": list(DATASET_SQL),
             "database": [DATABASE]}  # fmt: skip
    for kind, kind_names in names.items():
        for name in kind_names:
            for row in find(api, kind, name):
                api.call("DELETE", f"/api/v1/{kind}/{row['id']}")
                report.removed.append(f"{kind} {name!r} ({row['id']})")


# -- the backend -----------------------------------------------------------------------------------------------


def link_dashboard(ctx: SeedContext, report: StepReport, dashboard_id: int, embedded_id: str) -> None:
    """Record the dashboard on the backend's first sample project (the backend's own, idempotent command)."""
    result = ctx.exec("backend", *MANAGE, "link_sample_dashboard", "--json", "--dashboard-id", str(dashboard_id),
                      "--embedded-id", embedded_id, what="link_sample_dashboard")  # fmt: skip
    report.merge(parse_command_report(result.stdout))
