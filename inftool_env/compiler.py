"""``compile_spec``: any spec source + a backend name -> a CompiledServer (real MCP server).

Spec sources: a spec file, ``bfcl:<Class>``, ``python:<module>:<Class>``, ``stdio:<command>`` or an
MCP URL. Backends: ``stateful`` (simulated from an OpenAPI spec), ``python:<module>:<Class>``,
``bfcl:<Class>``, ``llm:<model>`` (a model simulates the results), ``proxy`` (forward to the live server
the spec came from). With none named, the natural one for the source is picked, and a source nothing
can execute gets an error saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inftool_env.backends.base import Backend
from inftool_env.backends.python import PythonBackend, import_object, match_suite, suite_from_class
from inftool_env.backends.stateful import StatefulBackend
from inftool_env.errors import BackendError, SpecError
from inftool_env.mcp.server import CompiledServer
from inftool_env.spec.ir import ToolSuite
from inftool_env.spec.loader import DEFAULT_MAX_BYTES, is_live_source, load_spec

BACKEND_KINDS = (
    "stateful", "python:MODULE:CLASS", "bfcl:CLASS[:long_context]", "llm:MODEL[?cache=FILE]", "proxy", "record",
)  # fmt: skip


def load_suite(
    source: str | os.PathLike[str], *, strict: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
) -> ToolSuite:
    text = os.fspath(source)
    if text.endswith(".toml"):
        raise SpecError("this is an environment manifest, not an API spec: its servers' `spec` fields name the "
                        "specs (inspect one of those; `inftool check` takes the manifest)", source=text)  # fmt: skip
    if text.startswith("python:"):
        cls = import_object(text.removeprefix("python:"))
        if not isinstance(cls, type):
            raise BackendError(f"{text} is not a class")
        return suite_from_class(cls)
    return load_spec(text, strict=strict, max_bytes=max_bytes)


def make_backend(source: str, suite: ToolSuite, backend: str | None = None) -> Backend:
    kind = backend or _default_backend(source, suite)
    if kind == "stateful":
        if not suite.format.startswith("openapi"):
            raise BackendError(f"the stateful backend simulates OpenAPI specs; {source} is {suite.format}")
        return StatefulBackend(suite)
    if kind.startswith("python:"):
        cls = import_object(kind.removeprefix("python:"))
        return PythonBackend(cls)
    if kind.startswith("bfcl:"):
        from inftool_env.backends.bfcl import BfclBackend

        name, _, variant = kind.removeprefix("bfcl:").partition(":")
        if variant not in ("", "long_context"):
            raise BackendError(f"unknown BFCL backend variant {variant!r} in {kind!r}; known: long_context")
        return BfclBackend(name, long_context=variant == "long_context")
    if kind.startswith("llm:"):
        from inftool_env.backends.llm_sim import LLMSimBackend
        from inftool_env.llm import resolve_model

        chat, options = resolve_model(kind.removeprefix("llm:"))
        cache = options.pop("cache", None)
        if options:
            raise BackendError(f"backend {kind!r}: unknown options {sorted(options)}; known: cache")
        return LLMSimBackend(chat, suite, cache_path=Path(cache) if cache else None)
    if kind == "record":  # function docs with no executor: calls validated and kept (judged on their AST)
        from inftool_env.backends.record import RecordingBackend

        return RecordingBackend()
    if kind == "proxy":
        if not is_live_source(source):
            raise BackendError("the proxy backend needs a live server source (stdio:… or http(s)://…)")
        from inftool_env.mcp.introspect import ProxyBackend

        return ProxyBackend(source)
    raise BackendError(f"unknown backend {kind!r}; expected one of: {', '.join(BACKEND_KINDS)}")


def _default_backend(source: str, suite: ToolSuite) -> str:
    if source.startswith(("bfcl:", "python:")):
        return source
    if is_live_source(source):
        return "proxy"
    if suite.format.startswith("openapi"):
        return "stateful"
    raise BackendError(
        f"{source} holds function docs only: name what executes them with --backend python:MODULE:CLASS "
        "(or llm:MODEL to simulate them)"
    )


def compile_spec(
    source: str | os.PathLike[str],
    *,
    backend: str | None = None,
    seed: int = 0,
    initial_state: Mapping[str, Any] | None = None,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CompiledServer:
    """Compile a spec into a real MCP server; serve it with any transport or connect in-process."""
    suite = load_suite(source, strict=strict, max_bytes=max_bytes)
    runner = make_backend(os.fspath(source), suite, backend)
    if isinstance(runner, PythonBackend) and isinstance(runner.factory, type):  # a class (BFCL's too)
        suite = match_suite(suite, runner.factory, strict=strict)  # its methods against the docs
    return CompiledServer(suite, runner, seed=seed, initial_state=initial_state)
