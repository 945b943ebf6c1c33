"""The one way the toolkit runs a command to completion: an argv list in, a result or one typed error out.

Never a shell string. Output is captured as text unless the caller lets it stream to the terminal. Whatever of a
command's output ends up in an error message goes through `mask` first (command output can echo secrets), and
the error carries the command's own exit code. Long-running pipelines (backup pumps, `compose up`, image builds)
use Popen where they are; everything that runs and returns comes through here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from .errors import CommandFailed, PrerequisiteError, ToolkitError

ErrorFactory = Callable[[str, int], ToolkitError]
INSTALL_HINT = "install Docker Engine (https://docs.docker.com/engine/install/) or run scripts/provision-engine.sh"
TIMEOUT_EXIT = 124  # what timeout(1) exits with
NOT_FOUND_EXIT = 127  # what a shell exits with for a missing program


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _unmasked(text: str) -> str:
    return text


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,  # noqa: A002 - subprocess's own name for it
    stdin: IO | int | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
    mask: Callable[[str], str] = _unmasked,
    error: ErrorFactory = CommandFailed,
) -> Result:
    """Run `argv`; with `check`, a non-zero exit raises `error(message, exit code)`.

    The message names `what` (default: the program) and the command's own words (its stderr, else its stdout),
    masked. A missing program is a PrerequisiteError (exit 3) with `check`, and exit status 127 (as in a shell)
    without; a timeout is `error` either way.
    """
    what = what or argv[0]
    try:
        completed = subprocess.run(
            list(argv), capture_output=capture, text=True, input=input, stdin=stdin, timeout=timeout,
            env=dict(env) if env is not None else None, check=False,
        )  # fmt: skip
    except FileNotFoundError as exc:
        if not check:
            return Result(NOT_FOUND_EXIT, "", f"{argv[0]}: not found")
        raise PrerequisiteError(f"{argv[0]} not found on PATH: {INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"{what} took more than {timeout:.0f}s and was stopped", TIMEOUT_EXIT) from exc
    result = Result(completed.returncode, completed.stdout or "", completed.stderr or "")
    if check and not result.ok:
        words = mask((result.stderr.strip() or result.stdout.strip())[-800:])
        raise error(f"{what} failed (exit {result.returncode})" + (f": {words}" if words else ""), result.returncode)
    return result
