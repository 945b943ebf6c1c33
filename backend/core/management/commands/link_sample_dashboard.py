"""Record a Superset dashboard on the first sample project; run it again with the same values and nothing changes.

    python manage.py link_sample_dashboard --dashboard-id N --embedded-id UUID [--json]

The first sample project is the first entry of `seed_sample.PROJECTS` (the order `seed_sample` creates them in, not
the alphabetical order of the API): "Patient Helpdesk", found by its fixed primary key
`sample_id("project", "patient-helpdesk")`. It is the same project `seed_sample --knowledge-base` links to. The
command sets its `superset_dashboard_id` (Superset's numeric dashboard id) and `superset_embedded_id` (the UUID
Superset gives the dashboard when embedding is enabled on it; stored in its canonical lowercase form) and touches
nothing else.

Output: one line, or with --json the JSON report `seed_sample --json` prints,
{"created": [...], "updated": [...], "existing": [...], "removed": [], "warnings": []}:
  created  - the project had no dashboard, now it has this one;
  updated  - it had another dashboard id and/or embedded UUID (the changed fields are named);
  existing - it already has exactly this dashboard (nothing written).
Errors (no sample project, a bad UUID) are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.models import Project

from .seed_sample import FIRST_PROJECT, PROJECTS, Report, sample_id, write_report

FIRST_PROJECT_NAME = PROJECTS[0][1]


def link_dashboard(report: Report, dashboard_id: int, embedded_id: str) -> Project:
    """Set the dashboard on the first sample project and say what changed in `report`."""
    project = Project.objects.select_for_update().filter(pk=sample_id("project", FIRST_PROJECT)).first()
    if project is None:
        raise CommandError(
            f"the sample project {FIRST_PROJECT_NAME} is missing: "
            "create the sample data first with `invoke seed --only backend`"
        )
    label = f"Superset dashboard {dashboard_id} (embedded {embedded_id}) on project {project.name}"
    wanted = {"superset_dashboard_id": dashboard_id, "superset_embedded_id": embedded_id}
    changed = [name for name, value in wanted.items() if getattr(project, name) != value]
    if not changed:
        report.existing.append(label)
        return project
    had_none = project.superset_dashboard_id is None and not project.superset_embedded_id
    for name in changed:
        setattr(project, name, wanted[name])
    project.save(update_fields=[*changed, "updated_at"])
    if had_none:
        report.created.append(label)
    else:
        report.updated.append(f"{label} ({', '.join(changed)})")
    return project


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise CommandError(f"--dashboard-id must be a positive integer (Superset's dashboard id), got {raw!r}")
    return value


def _embedded_uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise CommandError(
            f"--embedded-id must be the UUID Superset shows under the dashboard's Embed settings, got {raw!r}"
        ) from None


class Command(BaseCommand):
    help = "Record a Superset dashboard (id and embedded UUID) on the first sample project; idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--dashboard-id", required=True, help="Superset's numeric dashboard id")
        parser.add_argument("--embedded-id", required=True, help="the UUID of the dashboard's embedded configuration")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print one JSON report instead of lines"
        )

    def handle(self, *args, dashboard_id, embedded_id, as_json=False, **options):
        dashboard = _positive_int(str(dashboard_id))
        embedded = _embedded_uuid(str(embedded_id))
        report = Report()
        with transaction.atomic():
            link_dashboard(report, dashboard, embedded)
        write_report(self, report, as_json=as_json, unchanged="the sample project already has this dashboard")
