"""The project's exceptions: one small hierarchy, each error attributed to one boundary.

A tool's own failure (bad arguments, unknown id, a backend refusing) is *not* an exception: it is
an ``isError`` result the model sees. Exceptions here are for user mistakes (a bad spec, an unknown
environment id) and for broken infrastructure (a server that died, an endpoint that is down).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_invalid(exc: ValidationError, *, root: str = "") -> str:
    """``where: what`` of a pydantic error's first complaint (``root`` names a top-level one), for a
    one-line message that says which field of which input is wrong."""
    where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or root
    return f"{where}: {invalid_why(exc)}" if where else invalid_why(exc)


def invalid_why(exc: ValidationError) -> str:
    """The first complaint's words, without pydantic's "Value error, " before a validator's own."""
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


def os_reason(exc: OSError) -> str:
    """Why a path could not be made or written, in words: ``mkdir`` under a file says only "File exists"
    or "Not a directory", and not which part of the path is the file."""
    from pathlib import Path

    if exc.filename is not None and isinstance(exc, FileExistsError | NotADirectoryError):
        where = Path(exc.filename)
        for part in (where, *where.parents):
            if part.exists():
                if part.is_dir():
                    break
                return "a file, where a folder is needed" if part == where else f"{part} is a file, not a folder"
    return exc.strerror or str(exc)


class InftoolError(Exception):
    """Base of every error this library raises on purpose."""


class SpecError(InftoolError):
    """A spec, or one node of it, cannot be compiled.

    ``source`` is the file (or a description of the object) and ``pointer`` the JSON pointer of the
    offending node, so the message says what and where.
    """

    def __init__(self, message: str, *, source: str = "<spec>", pointer: str = "") -> None:
        self.message = message
        self.source = source
        self.pointer = pointer
        where = f"{source}#{pointer}" if pointer else source
        super().__init__(f"{where}: {message}")


class BackendError(InftoolError):
    """A backend cannot be built or loaded (bad ``python:MODULE:CLASS``, missing optional package)."""


class ToolCallError(InftoolError):
    """Raised *inside* a backend for a failed call; the server turns it into an ``isError`` result."""


class RegistrationError(InftoolError):
    """An environment manifest or registration is invalid."""


class NameNotFound(RegistrationError):
    """No environment of that name is registered."""


class VersionNotFound(RegistrationError):
    """The environment exists, but not in that version."""


class RolloutError(InftoolError):
    """Infrastructure broke during an episode; recorded on the trajectory, never fatal to siblings."""


class ServerError(RolloutError):
    """An MCP server could not be reached, died, or answered outside the protocol."""


class UserSimError(RolloutError):
    """The user simulator failed."""


class PolicyError(RolloutError):
    """The policy (model endpoint, local model) failed."""
