"""Errors a person can act on. Each carries one line: what is wrong and what to do about it."""


class ToolkitError(Exception):
    """A failure to report as one clear line and a non-zero exit, never as a traceback."""

    exit_code = 1


class PrerequisiteError(ToolkitError):
    """The docker CLI, Compose v2 or the daemon is missing."""

    exit_code = 3


class UsageError(ToolkitError):
    """Bad input on the command line (an unknown service, a missing argument)."""

    exit_code = 2


class CommandFailed(ToolkitError):
    """A docker compose command exited non-zero; its own output already told the user why."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.exit_code = returncode or 1


class Interrupted(ToolkitError):
    """Ctrl-C: stopped cleanly, with the conventional exit status of SIGINT."""

    exit_code = 130


class Cancelled(ToolkitError):
    """A backup or restore pump stopped because a sibling component failed or the user pressed Ctrl-C; the
    sibling's error (or Interrupted) is the one reported, this one only unwinds the pump."""

    exit_code = 130


class ComponentFailed(ToolkitError):
    """A dump or restore step failed; the message names the component and the command's own last words."""


class SetError(ToolkitError):
    """A backup set that cannot be used: missing, partial, corrupt or incompatible. The message names the file."""


class SeedError(ToolkitError):
    """A seed step failed; the message says which step and why."""


class LocalImagesError(ToolkitError):
    """A registry-free image could not be built; the message names the image, the log file and the likely fix."""
