"""env.sample -> .env: generate secrets, add keys new in the sample, never overwrite a value already set.

The sample is the single list of every variable the stack reads. `__GENERATE__` marks a secret the toolkit
creates; `__CHANGE_ME__` marks a value a person must choose.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

GENERATE = "__GENERATE__"
CHANGE_ME = "__CHANGE_ME__"
PLACEHOLDERS = (GENERATE, CHANGE_ME)
SECRET_MARKERS = ("PASSWORD", "SECRET", "KEY", "TOKEN")

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def parse_env(text: str) -> dict[str, str]:
    """The values of an env file as Compose reads them: `export`, quotes, escapes in double quotes, and inline
    comments (`KEY=value  # note` is `value`). python-dotenv implements the same rules; Compose's own
    `${VAR}` expansion inside .env is left alone (no value here depends on it)."""
    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value for key, value in parsed.items() if value is not None}


def is_secret(key: str) -> bool:
    return any(marker in key.upper() for marker in SECRET_MARKERS)


def new_secret() -> str:
    """48 URL-safe characters (valid unquoted in .env files, SQL, URLs and shell words), always holding a lower
    and an upper case letter and a digit, which some services (n8n's owner password) insist on."""
    while True:
        value = secrets.token_urlsafe(36)
        if (
            any(ch.islower() for ch in value)
            and any(ch.isupper() for ch in value)
            and any(ch.isdigit() for ch in value)
        ):
            return value


@dataclass
class EnvFileReport:
    created: bool = False
    added: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    needs_value: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added) or bool(self.generated)


def sync_env_file(sample: Path, target: Path) -> EnvFileReport:
    """Create or complete `target` from `sample`. Existing values are kept byte for byte."""
    sample_text = sample.read_text()
    report = EnvFileReport(created=not target.exists())
    current_text = "" if report.created else target.read_text()
    current = parse_env(current_text)

    if report.created:
        lines = [_fill(line, report) for line in sample_text.splitlines()]
    else:
        lines = [_fill_blank_generated(line, parse_env(sample_text), report) for line in current_text.splitlines()]
        missing = [
            line for line in sample_text.splitlines() if (m := _ASSIGNMENT.match(line)) and m.group(1) not in current
        ]
        if missing:
            lines += ["", "# Added by `invoke env` from env.sample"]
            for line in missing:
                report.added.append(_ASSIGNMENT.match(line).group(1))  # type: ignore[union-attr]
                lines.append(_fill(line, report))

    final = parse_env("\n".join(lines))
    report.needs_value = [k for k, v in final.items() if v == CHANGE_ME]
    if report.changed:
        write_private(target, "\n".join(lines) + "\n")
    else:
        os.chmod(target, 0o600)
    return report


def _line_value(line: str) -> str | None:
    """The value one assignment line sets, by the same rules as parse_env."""
    return parse_env(line).get(_ASSIGNMENT.match(line).group(1)) if _ASSIGNMENT.match(line) else None


def _fill(line: str, report: EnvFileReport) -> str:
    match = _ASSIGNMENT.match(line)
    if match and _line_value(line) == GENERATE:
        report.generated.append(match.group(1))
        return f"{match.group(1)}={new_secret()}"
    return line


def _fill_blank_generated(line: str, sample: dict[str, str], report: EnvFileReport) -> str:
    """A key left blank in .env whose sample value is generated gets a secret; any other value stays."""
    match = _ASSIGNMENT.match(line)
    if match and _line_value(line) in ("", GENERATE) and sample.get(match.group(1)) == GENERATE:
        report.generated.append(match.group(1))
        return f"{match.group(1)}={new_secret()}"
    return line


def write_private(path: Path, content: str) -> None:
    """Write atomically, readable by the owner only (the file holds every secret of the stack)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mask_text(text: str, values: dict[str, str]) -> str:
    """Replace every secret value that appears in `text` (a command line, a config dump)."""
    for key, value in values.items():
        if is_secret(key) and len(value) >= 4:
            text = text.replace(value, "****")
    return text


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def referenced_variables(*texts: str) -> set[str]:
    """Variables that compose files interpolate (${NAME...})."""
    return {name for text in texts for name in _REFERENCE.findall(text)}


@dataclass
class EnvCheck:
    missing: list[str] = field(default_factory=list)  # in env.sample, not in .env: breaks the stack
    blank: list[str] = field(default_factory=list)  # in env.sample, empty in .env: breaks or weakens it
    placeholders: list[str] = field(default_factory=list)  # still __GENERATE__ / __CHANGE_ME__
    unread: list[str] = field(default_factory=list)  # in .env, read by nothing: a typo or a leftover

    def problems(self, env: str) -> list[str]:
        """What must be fixed before this environment runs (production also refuses placeholders)."""
        found = [f"missing: {k}" for k in self.missing] + [f"blank: {k}" for k in self.blank]
        if env == "prod":
            found += [f"placeholder: {k}" for k in self.placeholders]
        return found

    def warnings(self, env: str) -> list[str]:
        found = [f"not read by anything: {k}" for k in self.unread]
        if env != "prod":
            found += [f"placeholder: {k}" for k in self.placeholders]
        return found


def check_env(values: dict[str, str], sample: dict[str, str], referenced: set[str]) -> EnvCheck:
    known = set(sample) | referenced
    return EnvCheck(
        missing=[k for k in sample if k not in values],
        blank=[k for k in sample if k in values and not values[k].strip() and sample[k].strip()],
        placeholders=[k for k, v in values.items() if v in PLACEHOLDERS],
        unread=[k for k in values if k not in known],
    )


def check_env_files(env_file: Path, sample: Path, compose_files: Iterable[Path]) -> EnvCheck:
    """`invoke env --check` and the doctor's .env check: this .env against the sample and what the files read."""
    return check_env(parse_env(env_file.read_text()), parse_env(sample.read_text()),
                     referenced_variables(*(f.read_text() for f in compose_files)))  # fmt: skip
