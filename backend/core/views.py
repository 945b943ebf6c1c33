"""Read-only JSON API, health/readiness probes and a few test helpers.

Plain Django views returning JsonResponse. List endpoints accept ?limit=&offset=
and answer {"count": N, "limit": L, "offset": O, "results": [...]}.
"""

import contextlib
import json
import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import connections
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import superset, version
from .models import Agent, ChatSession, Client, ExpertiseArea, KnowledgeBaseLink, Project

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


# --- helpers -----------------------------------------------------------------


def _iso(value):
    return value.isoformat() if value is not None else None


def _base(obj) -> dict:
    return {
        "id": str(obj.id),
        "created_at": _iso(obj.created_at),
        "updated_at": _iso(obj.updated_at),
    }


def _int_param(request: HttpRequest, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.GET.get(name, "")
    try:
        value = int(raw) if raw != "" else default
    except ValueError:
        value = default
    value = max(value, 0)
    if maximum is not None:
        value = min(value, maximum)
    return value


def _paginated(request: HttpRequest, queryset, serialize) -> JsonResponse:
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT) or DEFAULT_LIMIT
    offset = _int_param(request, "offset", 0)
    count = queryset.count()
    results = [serialize(obj) for obj in queryset[offset : offset + limit]]
    return JsonResponse({"count": count, "limit": limit, "offset": offset, "results": results})


# --- serializers ---------------------------------------------------------------


def serialize_client(client: Client) -> dict:
    return {**_base(client), "name": client.name}


def serialize_expertise_area(area: ExpertiseArea) -> dict:
    return {**_base(area), "name": area.name, "description": area.description}


def serialize_agent(agent: Agent) -> dict:
    area = agent.expertise_area
    return {
        **_base(agent),
        "name": agent.name,
        "description": agent.description,
        "url_n8n": agent.url_n8n,
        "expertise_area": {"id": str(area.id), "name": area.name} if area else None,
    }


def serialize_kb_link(link: KnowledgeBaseLink) -> dict:
    return {
        **_base(link),
        "external_id": link.external_id,
        "name": link.name,
        "project": str(link.project_id),
    }


def serialize_project(project: Project) -> dict:
    return {
        **_base(project),
        "name": project.name,
        "client": {"id": str(project.client_id), "name": project.client.name},
        "agents": [{"id": str(a.id), "name": a.name} for a in project.agents.all()],
        "users": [u.pk for u in project.users.all()],
        "knowledge_bases": [
            {"id": str(kb.id), "external_id": kb.external_id, "name": kb.name}
            for kb in project.knowledge_bases.all()
        ],
        # Superset: the dashboard's id (None when the project has none) and its embedded UUID ("" when none).
        "superset_dashboard_id": project.superset_dashboard_id,
        "superset_embedded_id": project.superset_embedded_id,
    }


def serialize_chat_session(session: ChatSession) -> dict:
    return {
        **_base(session),
        "session_key": session.session_key,
        "agent": {"id": str(session.agent_id), "name": session.agent.name},
        "user": {"id": session.user_id, "username": session.user.get_username()},
        "data": session.data,
    }


# --- API index and lists -----------------------------------------------------------

API_LISTS = {
    "clients": "core:clients",
    "projects": "core:projects",
    "agents": "core:agents",
    "expertise_areas": "core:expertise-areas",
    "knowledge_bases": "core:knowledge-bases",
    "chat_sessions": "core:chat-sessions",
}


@require_GET
def api_index(request: HttpRequest) -> JsonResponse:
    endpoints = {key: reverse(name) for key, name in API_LISTS.items()}
    endpoints.update(
        {
            "health": reverse("core:health"),
            "ready": reverse("core:ready"),
            "version": reverse("core:version"),
        }
    )
    return JsonResponse({"name": "enlaight", "version": version.VERSION, "endpoints": endpoints})


@require_GET
def clients(request: HttpRequest) -> JsonResponse:
    return _paginated(request, Client.objects.all(), serialize_client)


@require_GET
def expertise_areas(request: HttpRequest) -> JsonResponse:
    return _paginated(request, ExpertiseArea.objects.all(), serialize_expertise_area)


@require_GET
def agents(request: HttpRequest) -> JsonResponse:
    queryset = Agent.objects.select_related("expertise_area")
    return _paginated(request, queryset, serialize_agent)


@require_GET
def projects(request: HttpRequest) -> JsonResponse:
    queryset = Project.objects.select_related("client").prefetch_related(
        "agents", "users", "knowledge_bases"
    )
    return _paginated(request, queryset, serialize_project)


@require_GET
def knowledge_bases(request: HttpRequest) -> JsonResponse:
    queryset = KnowledgeBaseLink.objects.all()
    project = request.GET.get("project")
    if project:
        try:
            queryset = queryset.filter(project_id=uuid.UUID(project))
        except ValueError:
            return JsonResponse({"error": "project must be a UUID"}, status=400)
    return _paginated(request, queryset, serialize_kb_link)


@require_GET
def chat_sessions(request: HttpRequest) -> JsonResponse:
    queryset = ChatSession.objects.select_related("agent", "user")
    return _paginated(request, queryset, serialize_chat_session)


# --- Superset dashboards -------------------------------------------------------------


@csrf_exempt
@never_cache
@require_POST
def project_dashboard_guest_token(request: HttpRequest, project_id: uuid.UUID) -> JsonResponse:
    """A Superset guest token for the project's embedded dashboard, for the front end's embedded SDK.

    Who may call it: whoever may call the rest of this API, i.e. anyone who reaches the backend, since no view
    here authenticates yet. The token only lets its holder view this one dashboard, read-only, until Superset's
    GUEST_TOKEN_JWT_EXP_SECONDS pass. When the API gains authentication, this view must require a user of the
    project (project.users), like the other project data.

    200 {"token", "dashboard": {"embedded_id", "dashboard_id"}, "superset_url"}; 404 unknown project or no
    embedded dashboard; 502 Superset unreachable or refusing; 503 Superset credentials not configured.
    Errors: {"error": "<one line>"}.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return JsonResponse({"error": f"project {project_id} not found"}, status=404)
    if not project.superset_embedded_id:
        return JsonResponse({"error": f"project {project.name} has no embedded Superset dashboard"}, status=404)
    try:
        token = superset.guest_token(project.superset_embedded_id)
    except superset.SupersetNotConfigured as exc:
        logger.warning("guest token for project %s: %s", project.pk, exc)
        return JsonResponse({"error": str(exc)}, status=503)
    except superset.SupersetError as exc:
        logger.warning("guest token for project %s: %s", project.pk, exc)
        return JsonResponse({"error": str(exc)}, status=502)
    return JsonResponse(
        {
            "token": token,
            "dashboard": {
                "embedded_id": project.superset_embedded_id,
                "dashboard_id": project.superset_dashboard_id,
            },
            "superset_url": settings.SUPERSET_PUBLIC_URL,
        }
    )


@require_GET
def api_version(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"version": version.VERSION})


# --- health ------------------------------------------------------------------------


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 200 else text[:197] + "..."


def check_mysql() -> str | None:
    """Return None when the database answers SELECT 1, else a short error string."""
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        if not conn.in_atomic_block:
            with contextlib.suppress(Exception):
                conn.close()  # drop a broken connection; the next request reconnects
        return _short_error(exc)
    return None


def check_redis() -> str | None:
    """Return None when a probe key round-trips through the Redis cache."""
    key = f"health:probe:{uuid.uuid4().hex}"
    value = str(time.time())
    try:
        cache.set(key, value, timeout=10)
        got = cache.get(key)
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        return _short_error(exc)
    if got != value:
        return "probe value did not round-trip through the cache"
    return None


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: MySQL and Redis, checked separately."""
    checks: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, probe in (("mysql", check_mysql), ("redis", check_redis)):
        error = probe()
        if error is None:
            checks[name] = "ok"
        else:
            checks[name] = "error"
            errors[name] = error
            logger.warning("readiness check %s failed: %s", name, error)
    if errors:
        return JsonResponse({"status": "error", "checks": checks, "errors": errors}, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


@csrf_exempt
@never_cache
@require_POST
def health_email(request: HttpRequest) -> JsonResponse:
    """Send a test email through the configured SMTP server (DEBUG only).

    Optional JSON (or form) body: {"to": "a@b.c" | ["a@b.c", ...], "subject": "...", "body": "..."}.
    """
    if not settings.DEBUG:
        raise Http404("Not available when DEBUG is off.")
    if request.content_type == "application/json":
        try:
            payload = json.loads(request.body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return JsonResponse({"sent": False, "error": f"invalid JSON body: {exc}"}, status=400)
    else:
        payload = request.POST.dict()  # form fields, or nothing at all

    to = payload.get("to") or "test@example.com"
    recipients = [to] if isinstance(to, str) else [str(r) for r in to]
    subject = str(payload.get("subject") or "Enlaight test email")
    body = str(payload.get("body") or "This is a test email sent by the Enlaight backend.")
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - report SMTP failures to the caller
        logger.warning("test email failed: %s", exc)
        return JsonResponse({"sent": False, "error": _short_error(exc)}, status=502)
    return JsonResponse(
        {
            "sent": True,
            "to": recipients,
            "subject": subject,
            "from": settings.DEFAULT_FROM_EMAIL,
        }
    )
