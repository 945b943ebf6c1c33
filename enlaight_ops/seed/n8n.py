"""n8n step: the knowledge-base table, n8n's owner, credentials and workflows, activation, the sample KB.

Everything goes through n8n's own tools inside the running containers: `psql` in postgres for the table, the `n8n`
CLI in the n8n container to import credentials and workflows (both idempotent by their fixed ids), and HTTP from
inside the n8n container (its node) for the owner account, the webhooks and activation, so nothing depends on
host ports. Secrets travel on stdin, never on a command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import backend
from .base import HttpResult, SeedContext, http_in_container
from .report import SeedError, StepReport
from .workflows import (
    KB_KEY_HEADER,
    KB_TABLE,
    KB_TABLE_SQL,
    SAMPLE_KB_DESCRIPTION,
    SAMPLE_KB_NAME,
    WORKFLOWS_DIR,
    Workflow,
    activation_plan,
    active_ids,
    credential_changes,
    credential_documents,
    credential_plan,
    load_workflows,
    parse_cli_json,
    workflow_changes,
)

N8N = "http://127.0.0.1:5678"  # seen from inside the n8n container
OWNER_ENV = ("N8N_OWNER_EMAIL", "N8N_OWNER_PASSWORD")
WEBHOOK_WAIT = 90.0  # seconds for activated webhooks to answer
REST_WAIT = 180.0  # seconds for a freshly started n8n to answer its REST API

# psql in the postgres container, as the database's owner (its env has both names), reading SQL from stdin.
_PSQL = 'exec psql -X -v ON_ERROR_STOP=1 -At -U "$POSTGRES_USER" -d "$POSTGRES_DB"'


def _cli_export(kind: str, *flags: str) -> str:
    """A shell line running `n8n export:KIND --all` into a private temporary file and printing only that file.

    n8n's CLI logs to stdout, so the export cannot go to stdout itself. "No ... found" is an empty export.
    """
    return (
        "umask 077; f=$(mktemp); "
        f'if n8n export:{kind} --all {" ".join(flags)} --output="$f" >"$f.log" 2>&1; then cat "$f"; rc=0; '
        'elif grep -qi \'no .* found\' "$f.log"; then rc=0; else cat "$f.log" >&2; rc=1; fi; '
        'rm -f "$f" "$f.log"; exit $rc'
    )


def _cli_import(kind: str) -> str:
    """A shell line importing the JSON on stdin with `n8n import:KIND` (stdin -> private temporary file).

    Success is n8n's own "Successfully imported" line: the CLI has been seen to crash on exit (SIGSEGV) after a
    complete, committed import, and re-running it would only do the same work again.
    """
    return (
        'umask 077; f=$(mktemp); cat >"$f"; '
        f'n8n import:{kind} --input="$f" >"$f.log" 2>&1; rc=$?; '
        'if [ $rc -ne 0 ] && grep -q "Successfully imported" "$f.log"; then rc=0; fi; '
        '[ $rc -eq 0 ] || cat "$f.log" >&2; rm -f "$f" "$f.log"; exit $rc'
    )


class N8nStep:
    name = "n8n"
    services = ("n8n", "postgres")

    def run(self, ctx: SeedContext, *, reset: bool) -> StepReport:
        report = StepReport(self.name)
        workflows = load_workflows(ctx.root / WORKFLOWS_DIR)
        ensure_kb_table(ctx, report)
        session = ensure_owner(ctx, report)
        ready, missing = credential_plan(workflows, ctx.env)
        ensure_credentials(ctx, report, credential_documents(ready, ctx.env))
        imported, active = ensure_workflows(ctx, report, workflows)
        to_activate, inactive = activation_plan(workflows, missing)
        for name, credential_ids in inactive.items():
            keys = sorted({key for cid in credential_ids for key in missing[cid]})
            report.warnings.append(f"workflow {name!r} imported inactive: set {', '.join(keys)} in .env, seed again")
        ensure_active(ctx, report, session, to_activate, imported, active)
        kb_workflows = [w for w in to_activate if any(" kb/" in path for path in w.webhook_paths)]
        if not kb_workflows:
            report.warnings.append("knowledge-base workflows are not active: no sample knowledge base")
            return report
        hash_id = ensure_sample_kb(ctx, report, reset=reset)
        link_sample_kb(ctx, report, hash_id)
        return report


# -- knowledge-base table --------------------------------------------------------------------------------------


def ensure_kb_table(ctx: SeedContext, report: StepReport) -> None:
    exists = ctx.exec(
        "postgres", "sh", "-c", _PSQL, input_text=f"SELECT to_regclass('public.{KB_TABLE}') IS NOT NULL;\n",
        what="psql (knowledge-base table check)",
    ).stdout.strip()  # fmt: skip
    if exists == "t":
        report.existing.append(f"table {KB_TABLE}")
        return
    ctx.exec("postgres", "sh", "-c", _PSQL, input_text=KB_TABLE_SQL, what="psql (create knowledge-base table)")
    report.created.append(f"table {KB_TABLE}")


# -- owner account ---------------------------------------------------------------------------------------------


def _rest(ctx: SeedContext, method: str, path: str, **kwargs: Any) -> HttpResult:
    return http_in_container(ctx, "n8n", method, f"{N8N}{path}", **kwargs)


def _data(result: HttpResult) -> Any:
    body = result.json()
    return body.get("data", body) if isinstance(body, dict) else body


def ensure_owner(ctx: SeedContext, report: StepReport) -> str | None:
    """Set up n8n's owner from N8N_OWNER_EMAIL / N8N_OWNER_PASSWORD unless done; return a logged-in cookie.

    Without an owner, whoever opens n8n first becomes its owner; with one, the API and the UI need its login.
    """
    email, password = (ctx.env.get(key, "").strip() for key in OWNER_ENV)
    if not email or not password:
        report.warnings.append("n8n owner not set up: set N8N_OWNER_EMAIL and N8N_OWNER_PASSWORD (invoke env)")
        return None
    settings = _wait_for_rest(ctx)
    needs_setup = bool((_data(settings).get("userManagement") or {}).get("showSetupOnFirstLoad"))
    if needs_setup:
        body = {"email": email, "firstName": "Enlaight", "lastName": "Owner", "password": password}
        result = _rest(ctx, "POST", "/rest/owner/setup", body=body)
        if result.status != 200:
            raise SeedError(
                f"n8n refused the owner account (HTTP {result.status}: {_message(result)}); n8n wants 8-64 "
                "characters with a digit and an uppercase letter: fix N8N_OWNER_PASSWORD in .env"
            )
        report.created.append(f"owner {email}")
    cookie = _login(ctx, email, password)  # once: it tells who the owner is and opens the session
    if not needs_setup:
        report.existing.append(f"owner {email}" if cookie else "owner (set up by a person)")
    if cookie is None:
        report.warnings.append(f"n8n owner {email} from .env cannot log in: activation falls back to a restart")
    return cookie


def _wait_for_rest(ctx: SeedContext, timeout: float = REST_WAIT) -> HttpResult:
    """GET /rest/settings until n8n answers it: /healthz (the healthcheck) is ok before the REST API is ready."""
    deadline = time.monotonic() + timeout
    while True:
        result = _rest(ctx, "GET", "/rest/settings")
        if result.status == 200 and result.body.lstrip().startswith("{"):
            return result
        if time.monotonic() > deadline:
            raise SeedError(
                f"n8n's REST API is not ready after {timeout:.0f}s (HTTP {result.status}: {result.body[:200]})"
            )
        time.sleep(2)


def _login(ctx: SeedContext, email: str, password: str) -> str | None:
    result = _rest(ctx, "POST", "/rest/login", body={"emailOrLdapLoginId": email, "password": password})
    if result.status != 200 or not result.cookie:
        return None
    return result.cookie.split(";", 1)[0]  # n8n-auth=<jwt>


def _message(result: HttpResult) -> str:
    try:
        body = result.json()
    except SeedError:
        return result.body[:200]
    return str(body.get("message", body) if isinstance(body, dict) else body)[:200]


# -- credentials and workflows ---------------------------------------------------------------------------------


def ensure_credentials(ctx: SeedContext, report: StepReport, desired: Sequence[Mapping[str, Any]]) -> None:
    if not desired:
        return
    exported = parse_cli_json(
        ctx.exec("n8n", "sh", "-c", _cli_export("credentials", "--decrypted"), what="n8n export:credentials").stdout
    )
    create, update, same = credential_changes(desired, exported)
    names = {str(doc["id"]): str(doc["name"]) for doc in desired}
    changed = [doc for doc in desired if doc["id"] in create or doc["id"] in update]
    if changed:
        ctx.exec("n8n", "sh", "-c", _cli_import("credentials"), input_text=json.dumps(changed),
                 what="n8n import:credentials")  # fmt: skip
    report.created += [f"credential {names[cid]}" for cid in create]
    report.updated += [f"credential {names[cid]} (from .env)" for cid in update]
    report.existing += [f"credential {names[cid]}" for cid in same]


def export_workflows(ctx: SeedContext) -> list[dict[str, Any]]:
    return parse_cli_json(ctx.exec("n8n", "sh", "-c", _cli_export("workflow"), what="n8n export:workflow").stdout)


def ensure_workflows(ctx: SeedContext, report: StepReport, workflows: Sequence[Workflow]) -> tuple[set[str], set[str]]:
    """Import new and changed workflows; return (ids imported now, ids active before the import).

    n8n's import deactivates what it imports; the others keep their state, so one export tells both.
    """
    exported = export_workflows(ctx)
    create, update, same = workflow_changes(workflows, exported)
    changed = [*create, *update]
    if changed:
        ctx.exec("n8n", "sh", "-c", _cli_import("workflow"), input_text=json.dumps([w.document for w in changed]),
                 what="n8n import:workflow")  # fmt: skip
    report.created += [f"workflow {w.name}" for w in create]
    report.updated += [f"workflow {w.name} (from {w.path.name})" for w in update]
    report.existing += [f"workflow {w.name}" for w in same]
    return {w.id for w in changed}, active_ids(exported)


def ensure_active(
    ctx: SeedContext,
    report: StepReport,
    session: str | None,
    workflows: Sequence[Workflow],
    imported: set[str],
    active: set[str],
) -> None:
    """Activate through the running n8n, so that it registers the webhooks now (the CLI's way needs a restart).

    A workflow imported in this run is (re)activated even if n8n still lists it active: the import replaced it.
    """
    pending = [w for w in workflows if w.id not in active or w.id in imported]
    report.existing += [f"workflow {w.name} active" for w in workflows if w not in pending]
    if not pending:
        return
    if session is None:
        _activate_with_restart(ctx, pending)
    else:
        for workflow in pending:
            _activate_with_api(ctx, session, workflow, reactivate=workflow.id in imported)
    report.created += [f"workflow {w.name} active" for w in pending if w.id not in active]
    report.updated += [f"workflow {w.name} active (re-activated after import)" for w in pending if w.id in active]


def _activate_with_api(ctx: SeedContext, session: str, workflow: Workflow, *, reactivate: bool) -> None:
    headers = {"cookie": session}
    if reactivate:  # drop whatever the running n8n still has registered for the replaced version
        _rest(ctx, "POST", f"/rest/workflows/{workflow.id}/deactivate", headers=headers, body={})
    current = _rest(ctx, "GET", f"/rest/workflows/{workflow.id}", headers=headers)
    if current.status != 200:
        raise SeedError(f"n8n: cannot read workflow {workflow.name!r} (HTTP {current.status}: {_message(current)})")
    version = _data(current).get("versionId")
    result = _rest(ctx, "POST", f"/rest/workflows/{workflow.id}/activate", headers=headers,
                   body={"versionId": version})  # fmt: skip
    if result.status != 200 or not _data(result).get("active"):
        raise SeedError(f"n8n did not activate {workflow.name!r} (HTTP {result.status}: {_message(result)})")


def _activate_with_restart(ctx: SeedContext, workflows: Sequence[Workflow]) -> None:
    for workflow in workflows:
        ctx.exec("n8n", "n8n", "update:workflow", f"--id={workflow.id}", "--active=true",
                 what=f"n8n update:workflow {workflow.id}")  # fmt: skip
    ctx.log("n8n: restarting n8n so that it registers the activated webhooks")
    ctx.compose.run("restart", "n8n", capture=True)


# -- sample knowledge base -------------------------------------------------------------------------------------


def _kb(ctx: SeedContext, method: str, path: str, **kwargs: Any) -> HttpResult:
    headers = {KB_KEY_HEADER: ctx.env.get("N8N_KB_KEY", "")}
    return _rest(ctx, method, f"/webhook/{path}", headers=headers, **kwargs)


def list_kbs(ctx: SeedContext, *, wait: float = WEBHOOK_WAIT) -> list[dict[str, Any]]:
    """GET kb/list, waiting for the webhook to be registered (a restart or activation takes a few seconds)."""
    deadline = time.monotonic() + wait
    while True:
        result = _kb(ctx, "GET", "kb/list")
        if result.status == 200:
            return list(result.json().get("knowledge_bases") or [])
        if time.monotonic() > deadline:
            raise SeedError(f"n8n's kb/list webhook answered HTTP {result.status}: {_message(result)}")
        time.sleep(2)


def ensure_sample_kb(ctx: SeedContext, report: StepReport, *, reset: bool) -> str:
    samples = [kb for kb in list_kbs(ctx) if kb.get("name") == SAMPLE_KB_NAME]
    if reset:
        for kb in samples:
            result = _kb(ctx, "DELETE", f"kb/delete?hash_id={kb['hash_id']}")
            if result.status != 200:
                raise SeedError(f"kb/delete of {kb['hash_id']} answered HTTP {result.status}: {_message(result)}")
            report.removed.append(f"knowledge base {SAMPLE_KB_NAME!r} ({kb['hash_id']})")
        samples = []
    if samples:
        report.existing.append(f"knowledge base {SAMPLE_KB_NAME!r} ({samples[0]['hash_id']})")
        return str(samples[0]["hash_id"])
    result = _kb(ctx, "POST", "kb/create", body={"name": SAMPLE_KB_NAME, "description": SAMPLE_KB_DESCRIPTION})
    if result.status not in (200, 201):
        raise SeedError(f"n8n's kb/create webhook answered HTTP {result.status}: {_message(result)}")
    hash_id = str(result.json()["hash_id"])
    report.created.append(f"knowledge base {SAMPLE_KB_NAME!r} ({hash_id})")
    return hash_id


def link_sample_kb(ctx: SeedContext, report: StepReport, hash_id: str) -> None:
    problem = ctx.problem("backend")
    if problem:
        if ctx.strict:
            raise SeedError(f"cannot link the sample knowledge base: {problem}")
        report.warnings.append(f"knowledge-base link skipped: {problem}")
        return
    report.merge(backend.seed_sample(ctx, "--knowledge-base", hash_id, SAMPLE_KB_NAME, what="seed_sample (link)"))
