"""What a server (and its client) refuse before any work: arguments that cannot travel or are too big.

The wire is JSON in UTF-8, so a lone surrogate (``"\\ud800"``), NaN or Infinity, a non-string key,
a set or bytes cannot be sent at all: before these checks the SDK's writer task raised on them and
took the whole connection down (stdio: pydantic's ``model_dump_json``; HTTP: httpx's JSON encoder),
and deep nesting escaped as pydantic's raw ``ValueError``. ``argument_problem`` finds such a value,
and oversized or over-deep arguments, in one bounded walk; both sides use it, so a refusal reads the
same whichever side makes it. ``scrub`` replaces lone surrogates in what a server sends back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

ERROR_KINDS = ("unknown_tool", "schema", "execution", "backend", "timeout", "capacity", "too_large")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SCALAR_BYTES = 8  # a number, a bool or a null, with its separator: a bound, not an exact count
_MAX_INT_BITS = 4096


@dataclass(frozen=True)
class ServerLimits:
    """Bounds a server holds every call and episode to (see ``CompiledServer``).

    ``call_timeout_s``: a call's validation and backend work are cut here (kind "timeout"; an async
    backend is cancelled); a client may ask for less per call. ``max_episodes``: live episodes at
    once; one more is refused (kind "capacity"), never made by evicting a live one.
    ``episode_ttl_s``: an episode idle this long is released (logged). ``max_argument_bytes`` and
    ``max_argument_depth``: one call's arguments as JSON. ``max_state_bytes``: one episode's state as
    JSON (its initial state, then what its calls add); past it, calls that may write are refused.
    ``shared_default_episode``: a call naming no episode uses the server's one default episode (a
    single-client server: stdio, in-process); when False (and always over HTTP, where anyone may
    connect) such a call runs on a fresh throwaway state.
    """

    call_timeout_s: float | None = 30.0
    max_episodes: int = 1024
    episode_ttl_s: float | None = 3600.0
    max_argument_bytes: int = 1024 * 1024
    max_argument_depth: int = 64
    max_state_bytes: int = 64 * 1024 * 1024
    shared_default_episode: bool = True


@dataclass(frozen=True)
class Problem:
    """Why arguments were refused: an error kind (WIRE.md) and a message for the model."""

    kind: str
    message: str


def argument_problem(arguments: Any, *, max_bytes: int, max_depth: int) -> tuple[Problem | None, int]:
    """The first reason ``arguments`` cannot be accepted (or None), and their approximate JSON size.

    The walk stops at the first problem and as soon as the size passes ``max_bytes``, so it costs
    at most about ``max_bytes`` of work whatever it is handed."""
    if arguments is None:
        return None, 2
    if not isinstance(arguments, dict):
        return Problem("schema", f"arguments must be a JSON object, got {_json_type(arguments)}"), 0
    size = 0
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(arguments, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            size += len(value) + 2
            if size > max_bytes:
                return _too_large(max_bytes), size
            if not value.isascii():
                try:
                    size += len(value.encode("utf-8")) - len(value)
                except UnicodeEncodeError as exc:
                    message = f"text is not valid Unicode (a lone surrogate at character {exc.start}); send UTF-8 text"
                    return Problem("schema", _at(path) + message), size
        elif value is None or isinstance(value, bool):
            size += _SCALAR_BYTES
        elif isinstance(value, int):
            if value.bit_length() > _MAX_INT_BITS:  # Python prints no more than 4,300 digits by default
                return Problem("too_large", f"{_at(path)}an integer of {value.bit_length()} bits is too large"), size
            size += _SCALAR_BYTES + value.bit_length() // 3
        elif isinstance(value, float):
            if not math.isfinite(value):
                message = f"{value!r} is not a JSON number (NaN and Infinity are not JSON)"
                return Problem("schema", _at(path) + message), size
            size += _SCALAR_BYTES + 16
        elif isinstance(value, dict | list | tuple):
            if depth > max_depth:
                return Problem("too_large", f"{_at(path)}arguments nest deeper than {max_depth} levels"), size
            size += 2
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return Problem("schema", f"{_at(path)}object key {key!r} is not a string"), size
                    if not key.isascii() and _LONE_SURROGATE.search(key):
                        return Problem("schema", f"{_at(path)}a key is not valid Unicode (a lone surrogate)"), size
                    size += len(key) + 4
                    stack.append((item, (*path, key), depth + 1))
            else:
                size += len(value)
                stack.extend((item, (*path, i), depth + 1) for i, item in enumerate(value))
            if size > max_bytes:
                return _too_large(max_bytes), size
        else:
            return Problem("schema", f"{_at(path)}a {type(value).__name__} is not a JSON value"), size
    return None, size


def scrub(value: Any) -> Any:
    """``value`` with every lone surrogate replaced by U+FFFD, so it can be encoded as UTF-8 JSON."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if has_lone_surrogate(value) else value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def has_lone_surrogate(text: str) -> bool:
    # isascii() reads a flag CPython keeps on every string: ASCII text (most results) is not scanned.
    return not text.isascii() and _LONE_SURROGATE.search(text) is not None


def _too_large(max_bytes: int) -> Problem:
    return Problem("too_large", f"arguments are over the {max_bytes:,}-byte limit; send less")


def _at(path: tuple[Any, ...]) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"at '{where}': " if where else ""


def _json_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else f"a {type(value).__name__}"
