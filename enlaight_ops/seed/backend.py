"""Backend step: the admin from .env and the deterministic sample data, by the backend's own command.

The work is Django's (`python manage.py seed_sample`, tested with Django's runner); this step runs it in the
running backend container and reads its JSON report.
"""

from __future__ import annotations

from .base import SeedContext
from .report import StepReport, parse_command_report

ADMIN_ENV = ("SEED_ADMIN_EMAIL", "SEED_ADMIN_PASSWORD")
MANAGE = ("python", "manage.py")


def seed_sample(ctx: SeedContext, *args: str, what: str = "seed_sample") -> dict:
    result = ctx.exec("backend", *MANAGE, "seed_sample", "--json", *args, env_names=ADMIN_ENV, what=what)
    return parse_command_report(result.stdout)


class BackendStep:
    name = "backend"
    services = ("backend",)

    def run(self, ctx: SeedContext, *, reset: bool) -> StepReport:
        report = StepReport(self.name)
        report.merge(seed_sample(ctx, *(["--reset"] if reset else [])))
        return report
