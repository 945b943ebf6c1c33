"""The n8n side of seeding, as data: workflow files, the credentials they need, what changed.

Pure functions only (no Docker): they take the workflow files and the stack's env values, and the JSON n8n's own
CLI exports, and decide what to import and what to activate. The n8n step (n8n.py) runs the commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import SeedError

WORKFLOWS_DIR = Path("n8n") / "workflows"  # relative to the stack's root

# The table the knowledge-base workflows store in, in n8n's own PostgreSQL database.
KB_TABLE = "enlaight_knowledge_bases"
KB_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {KB_TABLE} (
    id bigserial PRIMARY KEY,
    hash_id text NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
    name text NOT NULL CHECK (btrim(name) <> ''),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {KB_TABLE}_name_idx ON {KB_TABLE} (name);
"""

SAMPLE_KB_NAME = "Sample knowledge base"
SAMPLE_KB_DESCRIPTION = "Created by `invoke seed`: product manuals and FAQs for the sample projects."
KB_KEY_HEADER = "key"  # the header the backend sends to the knowledge-base webhooks (the original system's name)


@dataclass(frozen=True)
class CredentialSpec:
    """A credential the workflows reference by id, built from .env values at seed time."""

    id: str
    name: str
    type: str
    env_keys: tuple[str, ...]  # every one must be set, or the credential is missing

    def data(self, env: Mapping[str, str]) -> dict[str, Any]:
        return _CREDENTIAL_DATA[self.type](env)


_CREDENTIAL_DATA = {
    "postgres": lambda env: {
        "host": "postgres",
        "port": 5432,
        "database": env["POSTGRES_DB"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        "ssl": "disable",
    },
    "httpHeaderAuth": lambda env: {"name": KB_KEY_HEADER, "value": env["N8N_KB_KEY"]},
    "openAiApi": lambda env: {"apiKey": env["OPENAI_API_KEY"]},
}

CREDENTIALS: tuple[CredentialSpec, ...] = (
    CredentialSpec("EnlaightPgKb0001", "Enlaight knowledge-base PostgreSQL", "postgres",
                   ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")),
    CredentialSpec("EnlaightKbKey001", "Enlaight knowledge-base key", "httpHeaderAuth", ("N8N_KB_KEY",)),
    CredentialSpec("EnlaightOpenAi01", "Enlaight OpenAI", "openAiApi", ("OPENAI_API_KEY",)),
)  # fmt: skip


@dataclass(frozen=True)
class Workflow:
    path: Path
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def credential_ids(self) -> list[str]:
        ids = {
            str(ref["id"])
            for node in self.document.get("nodes", [])
            for ref in (node.get("credentials") or {}).values()
            if isinstance(ref, dict) and ref.get("id")
        }
        return sorted(ids)

    @property
    def webhook_paths(self) -> list[str]:
        return sorted(
            f"{node['parameters'].get('httpMethod', 'GET')} {node['parameters']['path']}"
            for node in self.document.get("nodes", [])
            if node.get("type") == "n8n-nodes-base.webhook"
        )


def load_workflows(directory: Path) -> list[Workflow]:
    """Every *.json under `directory`, checked enough that a typo fails here and not inside n8n."""
    workflows = []
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SeedError(f"{path}: not valid JSON ({exc})") from exc
        missing = [key for key in ("id", "name", "nodes", "connections") if key not in document]
        if missing:
            raise SeedError(f"{path}: a workflow needs {', '.join(missing)}")
        workflows.append(Workflow(path, document))
    ids = [w.id for w in workflows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SeedError(f"{directory}: workflow ids used twice: {', '.join(duplicates)}")
    return workflows


def missing_env(spec: CredentialSpec, env: Mapping[str, str]) -> list[str]:
    return [key for key in spec.env_keys if not str(env.get(key) or "").strip()]


def credential_plan(
    workflows: Sequence[Workflow], env: Mapping[str, str], specs: Sequence[CredentialSpec] = CREDENTIALS
) -> tuple[list[CredentialSpec], dict[str, list[str]]]:
    """The credentials to create (used by a workflow and complete in .env) and, per missing one, its unset keys."""
    by_id = {spec.id: spec for spec in specs}
    used = sorted({cid for workflow in workflows for cid in workflow.credential_ids})
    unknown = [cid for cid in used if cid not in by_id]
    if unknown:
        raise SeedError(f"workflows use credentials the seed does not know: {', '.join(unknown)} (see CREDENTIALS)")
    ready, missing = [], {}
    for cid in used:
        keys = missing_env(by_id[cid], env)
        if keys:
            missing[cid] = keys
        else:
            ready.append(by_id[cid])
    return ready, missing


def credential_documents(specs: Iterable[CredentialSpec], env: Mapping[str, str]) -> list[dict[str, Any]]:
    """What `n8n import:credentials` reads: plain `data`, which n8n encrypts with N8N_ENCRYPTION_KEY."""
    return [{"id": s.id, "name": s.name, "type": s.type, "data": s.data(env)} for s in specs]


def _normalized_credential(document: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    data = document.get("data") or {}
    if isinstance(data, str):  # an export that was not decrypted: cannot compare, so it differs
        data = {"__encrypted__": data}
    # n8n fills defaults (allowUnauthorizedCerts, sshTunnel...) into stored data; only our keys decide.
    return str(document.get("name")), str(document.get("type")), dict(data)


def credential_changes(
    desired: Sequence[Mapping[str, Any]], exported: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """(create, update, unchanged) credential ids, comparing the desired data with n8n's decrypted export."""
    current = {str(doc.get("id")): _normalized_credential(doc) for doc in exported}
    create, update, same = [], [], []
    for doc in desired:
        cid = str(doc["id"])
        if cid not in current:
            create.append(cid)
            continue
        name, ctype, data = current[cid]
        wanted = dict(doc["data"])
        if (name, ctype) != (doc["name"], doc["type"]) or any(data.get(k) != v for k, v in wanted.items()):
            update.append(cid)
        else:
            same.append(cid)
    return create, update, same


# What decides whether a stored workflow is the one in the repository; n8n adds its own fields
# (versionId, timestamps, shared, tags, pinData...) around these.
_WORKFLOW_KEYS = ("name", "nodes", "connections", "settings")


def _canonical_workflow(document: Mapping[str, Any]) -> str:
    picked = {key: document.get(key) for key in _WORKFLOW_KEYS}
    picked["nodes"] = sorted(
        (_canonical_node(node) for node in picked.get("nodes") or []), key=lambda node: str(node.get("id"))
    )
    return json.dumps(picked, sort_keys=True)


def _canonical_node(node: Mapping[str, Any]) -> dict[str, Any]:
    node = dict(node)
    # Import keeps credential ids but may drop or rename the display name; the id is what binds.
    credentials = node.get("credentials") or {}
    node["credentials"] = {kind: (ref.get("id") if isinstance(ref, dict) else ref) for kind, ref in credentials.items()}
    if not node["credentials"]:
        node.pop("credentials")
    return node


def workflow_changes(
    desired: Sequence[Workflow], exported: Sequence[Mapping[str, Any]]
) -> tuple[list[Workflow], list[Workflow], list[Workflow]]:
    """(create, update, unchanged) by id: a stored workflow whose name/nodes/connections/settings differ is updated."""
    current = {str(doc.get("id")): doc for doc in exported}
    create, update, same = [], [], []
    for workflow in desired:
        stored = current.get(workflow.id)
        if stored is None:
            create.append(workflow)
        elif _canonical_workflow(stored) != _canonical_workflow(workflow.document):
            update.append(workflow)
        else:
            same.append(workflow)
    return create, update, same


def active_ids(exported: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(doc.get("id")) for doc in exported if doc.get("active")}


def activation_plan(
    workflows: Sequence[Workflow], missing_credentials: Mapping[str, Sequence[str]]
) -> tuple[list[Workflow], dict[str, list[str]]]:
    """(workflows to activate, {workflow name: missing credential ids}) — a workflow needs all its credentials."""
    activate, inactive = [], {}
    for workflow in workflows:
        missing = [cid for cid in workflow.credential_ids if cid in missing_credentials]
        if missing:
            inactive[workflow.name] = missing
        else:
            activate.append(workflow)
    return activate, inactive


def parse_cli_json(text: str) -> list[dict[str, Any]]:
    """The JSON array an `n8n export:*` wrote (read back with cat); an empty export is []."""
    text = text.strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # Never echo the text: a credentials export holds decrypted secrets.
        raise SeedError(f"n8n's export is not JSON ({len(text)} characters, {exc.msg} at {exc.pos})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise SeedError("n8n's export is not a list")
    return value
