"""The knowledge-base workflows in n8n/workflows and the pure decisions of the n8n seed step."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from enlaight_ops.seed import workflows as wf
from enlaight_ops.seed.report import SeedError

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = wf.load_workflows(ROOT / wf.WORKFLOWS_DIR)
ENV = {
    "POSTGRES_DB": "n8n_db",
    "POSTGRES_USER": "n8n",
    "POSTGRES_PASSWORD": "pg-secret",
    "N8N_KB_KEY": "kb-secret",
}


def by_name(name: str) -> wf.Workflow:
    return next(w for w in WORKFLOWS if w.name == name)


def test_the_four_knowledge_base_webhooks_exist() -> None:
    paths = sorted(path for w in WORKFLOWS for path in w.webhook_paths)
    assert paths == ["DELETE kb/delete", "GET kb/get", "GET kb/list", "POST kb/create"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.path.name)
def test_every_webhook_is_guarded_by_the_header_key(workflow: wf.Workflow) -> None:
    for node in workflow.document["nodes"]:
        if node["type"] == "n8n-nodes-base.webhook":
            assert node["parameters"]["authentication"] == "headerAuth"
            assert node["credentials"]["httpHeaderAuth"]["id"] == "EnlaightKbKey001"
            assert node["parameters"]["responseMode"] == "responseNode"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.path.name)
def test_workflows_are_well_formed(workflow: wf.Workflow) -> None:
    doc = workflow.document
    names = [node["name"] for node in doc["nodes"]]
    assert len(names) == len(set(names)), "node names must be unique"
    assert len({node["id"] for node in doc["nodes"]}) == len(names), "node ids must be unique"
    for source, outputs in doc["connections"].items():
        assert source in names
        for output in outputs["main"]:
            for target in output:
                assert target["node"] in names
    # Imported inactive: the seed step activates them once their credentials exist.
    assert doc["active"] is False
    assert len(workflow.id) <= 36 and workflow.id.isalnum()
    sql = " ".join(n["parameters"].get("query", "") for n in doc["nodes"] if n["type"] == "n8n-nodes-base.postgres")
    assert wf.KB_TABLE in sql
    # Values reach SQL as query parameters ($1), never spliced into the query text.
    assert "{{" not in sql


def test_workflow_files_are_committed_formatted() -> None:
    for workflow in WORKFLOWS:
        assert workflow.path.read_text() == json.dumps(workflow.document, indent=2) + "\n", workflow.path


def test_load_rejects_duplicates_and_incomplete_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"id": "X", "name": "a", "nodes": [], "connections": {}}))
    (tmp_path / "b.json").write_text(json.dumps({"id": "X", "name": "b", "nodes": [], "connections": {}}))
    with pytest.raises(SeedError, match="used twice: X"):
        wf.load_workflows(tmp_path)
    (tmp_path / "b.json").write_text(json.dumps({"id": "Y", "name": "b"}))
    with pytest.raises(SeedError, match="needs nodes, connections"):
        wf.load_workflows(tmp_path)
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(SeedError, match="not valid JSON"):
        wf.load_workflows(tmp_path)


def test_credentials_come_from_env() -> None:
    ready, missing = wf.credential_plan(WORKFLOWS, ENV)
    assert missing == {}
    docs = {doc["type"]: doc for doc in wf.credential_documents(ready, ENV)}
    assert docs["postgres"]["data"] == {
        "host": "postgres", "port": 5432, "database": "n8n_db", "user": "n8n", "password": "pg-secret",
        "ssl": "disable",
    }  # fmt: skip
    assert docs["httpHeaderAuth"]["data"] == {"name": "key", "value": "kb-secret"}


def test_a_missing_credential_leaves_its_workflows_inactive() -> None:
    ready, missing = wf.credential_plan(WORKFLOWS, {**ENV, "N8N_KB_KEY": ""})
    assert missing == {"EnlaightKbKey001": ["N8N_KB_KEY"]}
    assert [spec.type for spec in ready] == ["postgres"]
    activate, inactive = wf.activation_plan(WORKFLOWS, missing)
    assert activate == []
    assert set(inactive) == {w.name for w in WORKFLOWS}


def test_unknown_credential_ids_fail_early() -> None:
    doc = copy.deepcopy(WORKFLOWS[0].document)
    doc["nodes"][0]["credentials"] = {"openAiApi": {"id": "Nope", "name": "x"}}
    with pytest.raises(SeedError, match="Nope"):
        wf.credential_plan([wf.Workflow(Path("x.json"), doc)], ENV)


def test_credential_changes_compare_decrypted_data() -> None:
    desired = wf.credential_documents(wf.credential_plan(WORKFLOWS, ENV)[0], ENV)
    assert wf.credential_changes(desired, []) == (["EnlaightKbKey001", "EnlaightPgKb0001"], [], [])
    # n8n adds defaults to stored data; only our keys count.
    stored = copy.deepcopy(desired)
    for doc in stored:
        doc["data"]["allowUnauthorizedCerts"] = False
    assert wf.credential_changes(desired, stored) == ([], [], ["EnlaightKbKey001", "EnlaightPgKb0001"])
    stored[1]["data"]["password"] = "rotated"
    create, update, same = wf.credential_changes(desired, stored)
    assert (create, same) == ([], ["EnlaightKbKey001"]) and update == ["EnlaightPgKb0001"]


def test_workflow_changes_ignore_what_n8n_adds() -> None:
    exported = []
    for workflow in WORKFLOWS:
        doc = copy.deepcopy(workflow.document)
        doc.update(versionId="v1", createdAt="2026-01-01", active=True, shared=[], tags=[], pinData={})
        doc["nodes"].reverse()
        for node in doc["nodes"]:
            for ref in (node.get("credentials") or {}).values():
                ref["name"] = "renamed in the UI"
        exported.append(doc)
    create, update, same = wf.workflow_changes(WORKFLOWS, exported)
    assert (create, update) == ([], []) and len(same) == len(WORKFLOWS)
    exported[0]["nodes"][0]["parameters"]["path"] = "edited"
    create, update, same = wf.workflow_changes(WORKFLOWS, exported[:-1])
    assert [w.id for w in update] == [WORKFLOWS[0].id]
    assert [w.id for w in create] == [WORKFLOWS[-1].id]
    assert wf.active_ids(exported) == {w.id for w in WORKFLOWS}


def test_parse_cli_json() -> None:
    assert wf.parse_cli_json("") == []
    assert wf.parse_cli_json('{"id": "a"}') == [{"id": "a"}]
    assert wf.parse_cli_json('[{"id": "a"}]') == [{"id": "a"}]
    with pytest.raises(SeedError, match="not JSON"):
        wf.parse_cli_json("Error: boom")


def test_table_sql_is_idempotent() -> None:
    assert wf.KB_TABLE_SQL.count("IF NOT EXISTS") == 2
    assert "DROP" not in wf.KB_TABLE_SQL.upper()
    assert by_name("Knowledge base: create").document["nodes"][0]["parameters"]["httpMethod"] == "POST"
