"""BFCL is for evaluation only: what of an env or a task set is BFCL's, so training can refuse it.

An env is BFCL's when a server's spec or its task source names ``bfcl:`` (a registered Bfcl env, its
manifest by path, a copy of it, a stdio wrapper around ``inftool serve bfcl:…``); a task is when BFCL's
loaders made it (their provenance names ``bfcl-eval``). Checked where training envs are built, whatever
the caller passed (an id, a manifest path, a config, a ToolEnv), not on the name it was given by."""

from __future__ import annotations

from collections.abc import Iterable

from inftool_env.env.config import EnvConfig
from inftool_env.errors import InftoolError
from inftool_env.tasks import Task

MARK = "bfcl:"


def bfcl_origin(config: EnvConfig | None = None, tasks: Iterable[Task] = ()) -> str | None:
    """What is BFCL's ("server 'MathAPI' (spec bfcl:MathAPI)", "task simple_python_0"), or None."""
    if config is not None:
        for server in config.servers:
            if MARK in server.spec:
                return f"server {server.name!r} (spec {server.spec})"
        if MARK in config.tasks.source:
            return f"its task source {config.tasks.source}"
    for task in tasks:
        if str(task.provenance.get("source", "")).startswith("bfcl-eval"):
            return f"task {task.id}"
    return None


def refuse_bfcl(what: str, config: EnvConfig | None = None, tasks: Iterable[Task] = ()) -> None:
    """Raise, naming ``what`` was given and the part of it that is BFCL's, if any is."""
    origin = bfcl_origin(config, tasks)
    if origin is not None:
        raise InftoolError(f"{what}: {origin} is BFCL's, and BFCL is for evaluation only")
