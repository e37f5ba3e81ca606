"""Tool and argument names that every consumer accepts.

MCP allows ``[A-Za-z0-9_.-]{1,128}``; OpenAI function calling allows ``[A-Za-z0-9_-]{1,64}``. We emit
the intersection so a compiled tool works everywhere, and keep the original name on the ToolSpec
(and in ``ParamBinding``) so the mapping stays reversible.
"""

from __future__ import annotations

import hashlib
import re

MAX_TOOL_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_INVALID_ARG = re.compile(r"[^A-Za-z0-9_]+")


def sanitize_tool_name(raw: str) -> str:
    """Collapse every run of characters outside ``[A-Za-z0-9_-]`` into one ``_``."""
    name = _INVALID.sub("_", raw).strip("_-")
    if not name:
        name = "tool"
    if len(name) > MAX_TOOL_NAME:
        # Keep the readable head and make the tail unique: truncation alone would merge names.
        digest = hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:8]
        name = f"{name[: MAX_TOOL_NAME - 9]}_{digest}"
    return name


def name_from_http(method: str, path: str) -> str:
    """A name for an operation without operationId: ``get_users_by_id`` for ``GET /users/{id}``."""
    parts = []
    for segment in path.strip("/").split("/"):
        if not segment:
            continue
        if segment.startswith("{") and segment.endswith("}"):
            parts.append("by_" + segment[1:-1])
        else:
            parts.append(segment)
    return sanitize_tool_name("_".join([method.lower(), *parts]) if parts else f"{method.lower()}_root")


def sanitize_arg_name(raw: str) -> str:
    """An argument name a model can write as a Python keyword (``X-Api-Key`` -> ``X_Api_Key``)."""
    name = _INVALID_ARG.sub("_", raw).strip("_") or "arg"
    if name[0].isdigit():
        name = "_" + name
    return name


class UniqueNames:
    """Hands out names, suffixing ``_2``, ``_3``… on collision (case-insensitive, as some clients are)."""

    def __init__(self, limit: int = MAX_TOOL_NAME) -> None:
        self._taken: set[str] = set()
        self._limit = limit

    def claim(self, name: str) -> str:
        candidate, n = name, 1
        while candidate.lower() in self._taken:
            n += 1
            suffix = f"_{n}"
            candidate = name[: self._limit - len(suffix)] + suffix
        self._taken.add(candidate.lower())
        return candidate
