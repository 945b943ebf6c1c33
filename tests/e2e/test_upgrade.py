"""`invoke upgrade` on a real engine: a seeded production stack one migration behind is upgraded to this checkout;
an upgrade to a backend that never becomes healthy rolls back by itself; `--plan` changes nothing.

Narrowed for speed to the backend with what it needs (MySQL, Redis): the upgrade under test is the backend's image
and its Django migrations; n8n and Superset would add minutes and nothing this path uses (their data is backed up
and restored like any other component in test_backup.py). Production, because development mounts ./backend over
the image, so swapping the backend image there changes no code.

Tests run in file order on one stack: plan, upgrade, failed upgrade.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from enlaight_ops.backup.manifest import VERIFIED
from enlaight_ops.compose import Compose
from enlaight_ops.settings import load_settings

from .conftest import Stack, _make_stack, image_available

NEWEST_MIGRATION = "core.0002_project_superset_dashboard"
MIGRATION_FILE = Path("backend/core/migrations/0002_project_superset_dashboard.py")
MODEL_FILE = Path("backend/core/models.py")
ADMIN_FILE = Path("backend/core/admin.py")
NEW_FIELDS = ("superset_dashboard_id = ", "superset_embedded_id = ")
STARTED = ["-s", "backend"]
SAVED: dict[Path, str] = {}  # the newest backend files, put back as `git pull` would
MYSQL = 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --user=root --batch --skip-column-names "$@"'
# A backend that applies a migration which changes data, then never answers its health check.
BROKEN_MIGRATION = """
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0002_project_superset_dashboard")]
    operations = [
        migrations.RunSQL("CREATE TABLE upgrade_probe (id INT PRIMARY KEY)", "DROP TABLE upgrade_probe"),
        migrations.RunSQL("UPDATE core_project SET name = CONCAT(name, ' (changed)')", migrations.RunSQL.noop),
    ]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images_env) -> Iterator[Stack]:
    stack = _make_stack(tmp_path_factory, local_images_env, "upgrade")
    # The compose files name the backend image enlaight/backend:*, one name for the whole engine: tests running
    # beside this one use it. This copy names its own, so its old, new and broken backends touch nobody else's.
    for name in ("docker-compose.yml", "docker-compose.override.yml", "docker-compose.prod.yml"):
        path = stack.root / name
        path.write_text(path.read_text().replace("enlaight/backend:", f"{stack.project}/backend:"))
    SAVED.update({p: (stack.root / p).read_text() for p in (MIGRATION_FILE, MODEL_FILE, ADMIN_FILE)})
    # One migration behind, as the revision before it was: no newest migration, no model fields it adds, and the
    # admin does not list them (the views read them only when asked for a project's dashboard).
    (stack.root / MIGRATION_FILE).unlink()
    model = stack.root / MODEL_FILE
    model.write_text("".join(line for line in model.read_text().splitlines(keepends=True)
                             if not line.strip().startswith(NEW_FIELDS)))  # fmt: skip
    admin = stack.root / ADMIN_FILE
    admin.write_text(admin.read_text().replace(', "superset_dashboard_id")', ")"))
    try:
        stack.invoke("env")
        stack.invoke("start", "--prod", "--build", *STARTED)
        stack.invoke("seed", "--prod", "--only", "backend")
        yield stack
    finally:
        stack.teardown()
        listed = ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{stack.project}/backend"]
        images = subprocess.run(listed, capture_output=True, text=True).stdout.split()
        if images:
            subprocess.run(["docker", "image", "rm", "--force", *images], capture_output=True)


def compose(stack: Stack) -> Compose:
    return Compose(load_settings({"project": stack.project}, root=stack.root, prod=True))


def mysql(stack: Stack, *args: str) -> str:
    argv = compose(stack).argv("exec", "-T", "mysql", "sh", "-c", MYSQL, "sh", *args)
    result = subprocess.run(argv, capture_output=True, text=True, env=stack.env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def tables(stack: Stack) -> list[str]:
    return mysql(stack, "-e", "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
                              "WHERE table_schema = 'enlaight' AND table_type = 'BASE TABLE'").split()  # fmt: skip


def checksums(stack: Stack) -> dict[str, str]:
    """Every table of the backend's database and its checksum."""
    rows = mysql(stack, "-e", f"CHECKSUM TABLE {', '.join(tables(stack))} EXTENDED").splitlines()
    return dict(row.split("\t") for row in rows)


def row_counts(stack: Stack) -> dict[str, int]:
    names = [t for t in tables(stack) if not t.endswith("django_migrations")]
    query = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in names)  # noqa: S608 - names from MySQL
    return {t: int(n) for t, n in (row.split("\t") for row in mysql(stack, "-e", query).splitlines())}


def engine_state(stack: Stack) -> dict[str, object]:
    """What `--plan` must not change: this project's containers, its volumes, its backend images."""

    def docker(*args: str) -> list[str]:
        return sorted(subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split("\n"))

    label = f"label=com.docker.compose.project={stack.project}"
    return {
        "containers": docker(
            "ps", "--all", "--no-trunc", "--filter", label, "--format", "{{.ID}} {{.Image}} {{.State}} {{.Names}}"
        ),  # fmt: skip
        "volumes": docker("volume", "ls", "--filter", label, "--format", "{{.Name}}"),
        "images": docker(
            "image", "ls", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", f"{stack.project}/backend"
        ),  # fmt: skip
        "networks": docker("network", "ls", "--no-trunc", "--filter", label, "--format", "{{.ID}}"),
    }


def backend_image_id(stack: Stack) -> str:
    return stack.container("backend", "--prod")["Image"]


def history(stack: Stack) -> list[dict]:
    path = stack.root / "backups" / "upgrade-history.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plan_shows_the_pending_migration_and_changes_nothing(stack: Stack):
    before = engine_state(stack)
    # As `git pull` would: the newest migration and its model fields arrive in the checkout.
    for path, text in SAVED.items():
        (stack.root / path).write_text(text)

    result = stack.invoke("upgrade", "--prod", "--plan")

    assert NEWEST_MIGRATION in result.stderr, result.stderr
    assert "backend:" in result.stderr and "rebuild from this checkout" in result.stderr
    assert "MySQL" in result.stderr and "same major version" in result.stderr
    assert "nothing was changed" in result.stderr
    assert engine_state(stack) == before
    assert not (stack.root / "backups").exists()


def test_upgrade_applies_the_migration_and_keeps_the_data(stack: Stack):
    counts = row_counts(stack)
    assert counts["enlaight.core_project"] > 0, "the seed made no projects"
    old_image = backend_image_id(stack)

    result = stack.invoke("upgrade", "--prod", "--yes")

    print(result.stderr)
    assert f"Applying {NEWEST_MIGRATION}" in result.stderr
    assert "upgraded backend" in result.stderr
    assert backend_image_id(stack) != old_image
    assert row_counts(stack) == counts
    columns = mysql(stack, "-e", "SHOW COLUMNS FROM enlaight.core_project LIKE 'superset_%'")
    assert "superset_dashboard_id" in columns and "superset_embedded_id" in columns
    record = history(stack)[-1]
    assert record["outcome"] == "upgraded" and record["migrations"] == [NEWEST_MIGRATION]
    assert record["from"]["backend"]["id"] == old_image and record["to"]["backend"]["id"] == backend_image_id(stack)
    assert (stack.root / "backups" / record["set"] / VERIFIED).is_file()  # the set passed its restore drill
    print("phases:", record["phases"])  # the closing note quotes them
    shown = stack.invoke("upgrade", "--prod", "--history").stdout
    assert "upgraded" in shown


def test_an_upgrade_that_never_gets_healthy_rolls_back_by_itself(stack: Stack, tmp_path: Path):
    current = backend_image_id(stack)
    context = tmp_path / "broken"
    context.mkdir()
    (context / "0003_upgrade_probe.py").write_text(BROKEN_MIGRATION)
    (context / "Dockerfile").write_text(
        f'FROM {current}\nCOPY 0003_upgrade_probe.py /app/core/migrations/\nCMD ["sleep", "infinity"]\n'
    )
    broken = f"{stack.project}/backend:broken"
    subprocess.run(["docker", "build", "--quiet", "--tag", broken, str(context)], check=True, capture_output=True)
    before = checksums(stack)

    result = stack.invoke("upgrade", "--prod", "--yes", f"--to=backend={broken}", "--timeout", "20", check=False)

    print(result.stderr)
    assert result.returncode != 0
    assert "Applying core.0003_upgrade_probe" in result.stderr  # the broken backend did change the data
    last = result.stderr.strip().splitlines()[-1]
    assert "rolled back" in last and "backend" in last and "not ready after 20s" in last, last
    assert backend_image_id(stack) == current
    assert checksums(stack) == before
    assert stack.ps("--prod")["backend"]["health"] == "healthy"
    record = history(stack)[-1]
    assert record["outcome"] == "rolled back" and "backend" in record["cause"]
    print("phases:", record["phases"])


# -- a PostgreSQL major hop ----------------------------------------------------------------------------------------

PG17_IMAGE = "enlaight-e2e-local/postgres:17"
PSQL = 'exec psql -X -q -At -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"'
TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"


def postgres_17_image() -> str:
    """trixie's PostgreSQL 17 as a local image: the local postgres:15 recipe with 17 for 15, on the bookworm base
    upgraded to trixie (built once, reused by tag)."""
    if subprocess.run(["docker", "image", "inspect", PG17_IMAGE], capture_output=True).returncode == 0:
        return PG17_IMAGE
    recipe = Path(__file__).resolve().parents[2] / "images" / "postgres"
    dockerfile = re.sub(r"(postgresql-|postgresql/|PG_MAJOR=)15", r"\g<1>17", (recipe / "Dockerfile").read_text())
    to_trixie = ('RUN sed -i "s/bookworm/trixie/g" /etc/apt/sources.list && apt-get update '
                 "&& DEBIAN_FRONTEND=noninteractive apt-get full-upgrade -y --no-install-recommends "
                 "&& rm -rf /var/lib/apt/lists/*\n")  # fmt: skip
    dockerfile = dockerfile.replace("FROM ${BASE_IMAGE}\n", "FROM ${BASE_IMAGE}\n" + to_trixie, 1)
    argv = ["docker", "build", "--quiet", "--tag", PG17_IMAGE, "--file", "-", str(recipe)]
    subprocess.run(argv, input=dockerfile, text=True, check=True, capture_output=True)
    return PG17_IMAGE


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory, local_images_env) -> Iterator[Stack]:
    if local_images_env is None:
        pytest.skip("the PostgreSQL 17 image is built from the local image recipes")
    stack = _make_stack(tmp_path_factory, local_images_env, "pghop")
    try:
        yield stack
    finally:
        stack.teardown()
        kept = subprocess.run(["docker", "volume", "ls", "--quiet", "--filter",
                               f"label=com.docker.compose.project={stack.project}"],
                              capture_output=True, text=True).stdout.split()  # fmt: skip
        if kept:
            subprocess.run(["docker", "volume", "rm", "--force", *kept], capture_output=True)


def psql(stack: Stack, *args: str, stdin: str = "") -> str:
    argv = compose(stack).argv("exec", "-T", "postgres", "sh", "-c", PSQL, "sh", *args)
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=stack.env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def table_digests(stack: Stack) -> dict[str, str]:
    """Every table of n8n's database: its row count and a digest of its rows."""
    rows = [f"SELECT '{t}', count(*), coalesce(md5(string_agg(r::text, ',' ORDER BY r::text)), '') "  # noqa: S608
            f'FROM public."{t}" r' for t in psql(stack, "-c", TABLES).split()]  # fmt: skip
    lines = psql(stack, "-F", " ", "-c", " UNION ALL ".join(rows)).splitlines()
    return dict(line.split(" ", 1) for line in lines)


@pytest.mark.n8n
def test_a_postgres_major_hop_keeps_n8ns_data_and_the_old_volume(pg_stack: Stack):
    stack = pg_stack
    if not image_available("N8N_IMAGE", "n8nio/n8n:1.123.81", stack):
        pytest.skip("no n8n image on this engine")
    new_image = postgres_17_image()
    stack.invoke("env")
    # Narrowed to n8n and its PostgreSQL: the hop under test is theirs.
    stack.invoke("start", "--prod", "-s", "n8n")
    stack.invoke("seed", "--prod", "--only", "n8n")
    before = table_digests(stack)
    assert int(before["workflow_entity"].split()[0]) > 0, "the seed made no workflows"
    # The user points POSTGRES_IMAGE at the new major (here in local-images.env, which wins over .env).
    images = stack.root / "local-images.env"
    images.write_text(re.sub(r"(?m)^POSTGRES_IMAGE=.*$", f"POSTGRES_IMAGE={new_image}", images.read_text()))

    plan = stack.invoke("upgrade", "--prod", "--plan")
    assert "PostgreSQL 15" in plan.stderr and "-> 17" in plan.stderr and "dump and restore" in plan.stderr
    result = stack.invoke("upgrade", "--prod", "--yes")

    print(result.stderr)
    assert psql(stack, "-c", "SHOW server_version").startswith("17.")
    assert table_digests(stack) == before
    assert stack.ps("--prod")["n8n"]["health"] == "healthy"
    record = history(stack)[-1]
    assert record["outcome"] == "upgraded" and record["kept_volume"].startswith(f"{stack.project}_postgres_data-pg15-")
    kept = subprocess.run(["docker", "run", "--rm", "-v", f"{record['kept_volume']}:/old:ro", new_image,
                           "cat", "/old/PG_VERSION"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert kept.strip() == "15"
    print("phases:", record["phases"])
