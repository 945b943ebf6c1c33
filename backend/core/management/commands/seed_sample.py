"""Seed the backend with an admin and deterministic sample data; run it again and nothing changes.

    python manage.py seed_sample [--reset] [--json]
    python manage.py seed_sample --knowledge-base HASH_ID NAME [--json]

The admin comes from SEED_ADMIN_EMAIL / SEED_ADMIN_PASSWORD (generated into .env by `invoke env`; the toolkit
passes them with `docker compose exec -e NAME`, so the password never appears on a command line). Without them
the admin is skipped with a warning.

Sample rows have fixed primary keys (uuid5 of a fixed namespace and a key), fixed names and, for users, addresses in
the reserved domain SAMPLE_EMAIL_DOMAIN. That is what makes the command idempotent and what `--reset` relies on: it
deletes exactly those rows (and what cascades from them) and nothing a person created, then seeds again.

`--knowledge-base HASH_ID NAME` records an n8n knowledge base (its hash_id) as a link on the first sample project;
the n8n seed step calls it after creating the sample knowledge base through n8n's create webhook.

Output: one line per object (created / updated / already there / removed), or with --json one JSON object
{"created": [...], "updated": [...], "existing": [...], "removed": [...], "warnings": [...]} for the toolkit.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models.functions import Lower

from core.models import Agent, ChatSession, Client, ExpertiseArea, KnowledgeBaseLink, Project

# Never change: every sample primary key derives from it.
SAMPLE_NAMESPACE = uuid.UUID("6f1d7c2e-3b7a-5e4e-9a51-0e1a100000ff")
SAMPLE_EMAIL_DOMAIN = "sample.enlaight.local"

CLIENTS = (
    ("acme-health", "Acme Health"),
    ("globex-logistics", "Globex Logistics"),
)
EXPERTISE_AREAS = (
    ("customer-support", "Customer Support", "Answering customers' questions and tracking their requests."),
    ("finance", "Finance", "Budgets, invoices and financial reporting."),
    ("human-resources", "Human Resources", "Hiring, onboarding and company policies."),
)
# (key, name, description, expertise area key); the chat webhook is {N8N_BASE_URL}/webhook/<key>/chat.
AGENTS = (
    ("support-assistant", "Support Assistant", "Answers support tickets from the knowledge base.", "customer-support"),
    ("finance-analyst", "Finance Analyst", "Explains invoices, budgets and reports.", "finance"),
    ("hr-helper", "HR Helper", "Answers questions about policies and onboarding.", "human-resources"),
)
# (username, first name, last name); email is <username>@SAMPLE_EMAIL_DOMAIN.
USERS = (
    ("ana.souza", "Ana", "Souza"),
    ("bruno.lima", "Bruno", "Lima"),
    ("carla.mendes", "Carla", "Mendes"),
    ("diego.rocha", "Diego", "Rocha"),
)
# (key, name, client key, agent keys, usernames). The first one receives the knowledge-base link.
PROJECTS = (
    ("patient-helpdesk", "Patient Helpdesk", "acme-health", ("support-assistant", "hr-helper"),
     ("ana.souza", "bruno.lima")),
    ("claims-analytics", "Claims Analytics", "acme-health", ("finance-analyst",), ("carla.mendes",)),
    ("fleet-operations", "Fleet Operations", "globex-logistics", ("support-assistant", "finance-analyst"),
     ("bruno.lima", "diego.rocha")),
)  # fmt: skip
# (agent key, username, first question)
CHAT_SESSIONS = (
    ("support-assistant", "ana.souza", "How do I reschedule an appointment?"),
    ("finance-analyst", "carla.mendes", "Which claims are still unpaid this month?"),
    ("support-assistant", "diego.rocha", "Where is shipment 1042?"),
)
FIRST_PROJECT = PROJECTS[0][0]


def sample_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(SAMPLE_NAMESPACE, f"{kind}:{key}")


def sample_email(username: str) -> str:
    return f"{username}@{SAMPLE_EMAIL_DOMAIN}"


def chat_session_key(agent_key: str, username: str) -> str:
    return f"sample-{agent_key}-{username}"


def agent_webhook_url(agent_key: str) -> str:
    return f"{settings.N8N_BASE_URL}/webhook/{agent_key}/chat"


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "created": self.created,
            "updated": self.updated,
            "existing": self.existing,
            "removed": self.removed,
            "warnings": self.warnings,
        }


def _ensure(report: Report, model, pk: uuid.UUID, label: str, **fields):
    """Create the row with this primary key, or bring its fields back to the sample values."""
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        obj = model.objects.create(pk=pk, **fields)
        report.created.append(label)
        return obj
    changed = [name for name, value in fields.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, fields[name])
        obj.save(update_fields=[*changed, "updated_at"])
        report.updated.append(f"{label} ({', '.join(changed)})")
    else:
        report.existing.append(label)
    return obj


def _link(report: Report, manager, obj, label: str) -> None:
    if manager.filter(pk=obj.pk).exists():
        report.existing.append(label)
    else:
        manager.add(obj)
        report.created.append(label)


def seed_admin(report: Report, email: str, password: str) -> None:
    if not email or not password:
        report.warnings.append("admin skipped: set SEED_ADMIN_EMAIL and SEED_ADMIN_PASSWORD (invoke env)")
        return
    user_model = get_user_model()
    user = user_model.objects.filter(email__iexact=email).first()
    if user is None:
        user_model.objects.create_superuser(username=email, email=email, password=password)
        report.created.append(f"admin {email}")
        return
    # An existing admin is left alone: its password may have been changed on purpose.
    report.existing.append(f"admin {email}")
    if not (user.is_superuser and user.is_staff and user.is_active):
        report.warnings.append(f"admin {email} exists but is not an active superuser; left unchanged")


def seed_sample_data(report: Report) -> None:
    clients = {
        key: _ensure(report, Client, sample_id("client", key), f"client {name}", name=name) for key, name in CLIENTS
    }
    areas = {}
    for key, name, description in EXPERTISE_AREAS:
        pk = sample_id("expertise-area", key)
        # Names are unique (case-insensitively): a person's area of the same name is used, never taken over.
        other = ExpertiseArea.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).exclude(pk=pk).first()
        if other is not None:
            report.warnings.append(f"expertise area {name} already exists (not sample data): using it as is")
            areas[key] = other
            continue
        areas[key] = _ensure(report, ExpertiseArea, pk, f"expertise area {name}", name=name, description=description)
    agents = {
        key: _ensure(
            report, Agent, sample_id("agent", key), f"agent {name}",
            name=name, description=description, url_n8n=agent_webhook_url(key), expertise_area=areas[area],
        )
        for key, name, description, area in AGENTS
    }  # fmt: skip
    user_model = get_user_model()
    users = {}
    for username, first, last in USERS:
        email = sample_email(username)
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model(username=username, email=email, first_name=first, last_name=last)
            user.set_unusable_password()  # sample people cannot log in
            user.save()
            report.created.append(f"user {email}")
        elif user.email != email:
            raise CommandError(f"user {username} exists but is not sample data ({user.email}): rename it first")
        else:
            report.existing.append(f"user {email}")
        users[username] = user
    for key, name, client, agent_keys, usernames in PROJECTS:
        project = _ensure(report, Project, sample_id("project", key), f"project {name}", name=name,
                          client=clients[client])  # fmt: skip
        for agent_key in agent_keys:
            _link(report, project.agents, agents[agent_key], f"project {name} <- agent {agents[agent_key].name}")
        for username in usernames:
            _link(report, project.users, users[username], f"project {name} <- user {username}")
    for agent_key, username, question in CHAT_SESSIONS:
        session_key = chat_session_key(agent_key, username)
        data = {"messages": [{"role": "user", "content": question}]}
        _ensure(report, ChatSession, sample_id("chat-session", session_key), f"chat session {session_key}",
                session_key=session_key, agent=agents[agent_key], user=users[username], data=data)  # fmt: skip


def reset_sample_data(report: Report) -> None:
    """Delete the sample rows (by their fixed keys) and what cascades from them; nothing else."""
    user_model = get_user_model()
    chat_keys = [chat_session_key(agent, user) for agent, user, _question in CHAT_SESSIONS]
    groups = (
        ("chat session", ChatSession, [sample_id("chat-session", key) for key in chat_keys]),
        ("project", Project, [sample_id("project", key) for key, *_rest in PROJECTS]),
        ("agent", Agent, [sample_id("agent", key) for key, *_rest in AGENTS]),
        ("expertise area", ExpertiseArea, [sample_id("expertise-area", key) for key, *_rest in EXPERTISE_AREAS]),
        ("client", Client, [sample_id("client", key) for key, _name in CLIENTS]),
    )  # fmt: skip
    for label, model, pks in groups:
        for obj in model.objects.filter(pk__in=pks):
            report.removed.append(f"{label} {obj}")
            obj.delete()
    sample_users = user_model.objects.filter(
        username__in=[u for u, *_rest in USERS], email__in=[sample_email(u) for u, *_rest in USERS]
    )
    for user in sample_users:
        report.removed.append(f"user {user.email}")
        user.delete()


def link_knowledge_base(report: Report, hash_id: str, name: str) -> None:
    project = Project.objects.filter(pk=sample_id("project", FIRST_PROJECT)).first()
    if project is None:
        raise CommandError("the sample project is missing: run `seed_sample` (the backend seed step) first")
    # One sample link per knowledge-base name: a re-created knowledge base (new hash_id) updates it.
    _ensure(report, KnowledgeBaseLink, sample_id("kb-link", name), f"knowledge-base link {name} on {project.name}",
            name=name, external_id=hash_id, project=project)  # fmt: skip


class Command(BaseCommand):
    help = "Create the admin (from SEED_ADMIN_*) and deterministic sample data; idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="delete the sample data first (only it)")
        parser.add_argument(
            "--knowledge-base",
            nargs=2,
            metavar=("HASH_ID", "NAME"),
            help="record an n8n knowledge base as a link on the first sample project, and nothing else",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON report instead of lines"
        )

    def handle(self, *args, reset=False, knowledge_base=None, as_json=False, **options):
        report = Report()
        with transaction.atomic():
            if knowledge_base:
                if reset:
                    raise CommandError("--reset and --knowledge-base do not go together")
                hash_id, name = (value.strip() for value in knowledge_base)
                if not hash_id or not name:
                    raise CommandError("--knowledge-base needs a non-empty HASH_ID and NAME")
                link_knowledge_base(report, hash_id, name)
            else:
                if reset:
                    reset_sample_data(report)
                seed_admin(
                    report, os.environ.get("SEED_ADMIN_EMAIL", "").strip(), os.environ.get("SEED_ADMIN_PASSWORD", "")
                )
                seed_sample_data(report)
        write_report(self, report, as_json=as_json)


def write_report(
    command: BaseCommand, report: Report, *, as_json: bool, unchanged: str = "the sample data is already there"
) -> None:
    """Print a report: one JSON object (--json, what the toolkit parses) or one line per item."""
    if as_json:
        command.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
        return
    for title, items in (("removed", report.removed), ("created", report.created),
                         ("updated", report.updated), ("already there", report.existing)):  # fmt: skip
        for item in items:
            command.stdout.write(f"{title}: {item}")
    for warning in report.warnings:
        command.stderr.write(f"warning: {warning}")
    if not report.created and not report.updated:
        command.stdout.write(command.style.SUCCESS(f"nothing to create: {unchanged}"))
