"""The `invoke upgrade` task. tasks.py hands in its own helpers (the error-handling decorator, settings, the
question and the --timeout parser), so this module never imports tasks.py back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ui

HELP = {
    "to": "SERVICE=IMAGE: run this ready image for one of the stack's own services (backend, frontend); "
    "repeatable. Without it the stack's own images are rebuilt from this checkout (`git pull`, then upgrade)",
    "plan": "only show what would change (images, migrations, engine versions, disk); changes nothing",
    "yes": "do not ask before upgrading",
    "history": "list past upgrades of this project: when, from and to which images, the set, the outcome",
    "timeout": "seconds the new version gets to be healthy (default enlaight.wait_timeout); a rollback waits at least "
    "enlaight.wait_timeout",
}


def upgrade_task(stack_task: Callable[..., Any], settings_of: Callable[..., Any], confirm: Callable[[str], bool],
                 seconds_of: Callable[..., float]) -> Any:  # fmt: skip
    @stack_task(iterable=["to"], help=HELP, auto_shortflags=False)  # -h is --help everywhere
    def upgrade(c, to=None, plan=False, yes=False, history=False, timeout=None, prod=False):
        """Upgrade the running stack: plan, verified backup, new images, migrations, wait for healthy; rolls back
        to the previous images and data by itself when anything fails."""
        from ..compose import Compose
        from . import history as upgrade_history
        from .plan import history_rows, parse_to
        from .probe import buildable
        from .run import upgrade as run_upgrade

        settings = settings_of(c, prod)
        if history:
            rows = history_rows(upgrade_history.read(settings.backup_dir), settings.project)
            if not rows:
                ui.info(f"no upgrade of project {settings.project} recorded in "
                        f"{upgrade_history.history_path(settings.backup_dir)}")  # fmt: skip
                return
            ui.table(f"upgrades of {settings.project}",
                     ["when", "env", "outcome", "images (from->to)", "migrations", "set", "cause"], rows)  # fmt: skip
            return
        seconds = seconds_of(timeout, settings)
        ui.info(settings.describe())
        compose = Compose(settings)
        targets = parse_to(to or [], buildable(compose.config))
        run_upgrade(compose, to=targets, timeout=seconds, plan_only=plan,
                    confirm=lambda question: yes or confirm(question))  # fmt: skip

    return upgrade
