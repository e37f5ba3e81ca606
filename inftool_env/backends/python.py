"""A Python backend: an object's public methods are the tools, one fresh object per episode.

Tool docs come from a spec (BFCL ships them) or, with none, from the methods' signatures and
docstrings. A returned ``{"error": …}`` dict — the convention of BFCL's API classes — is a tool
error; so is any exception the method raises. The model sees the same text either way.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from inftool_env.backends.base import copy_tree
from inftool_env.errors import BackendError, ToolCallError
from inftool_env.spec.ir import ParamBinding, Source, ToolSpec, ToolSuite
from inftool_env.spec.naming import UniqueNames, sanitize_tool_name

MAX_SNAPSHOT_DEPTH = 32


class PythonBackend:
    """Runs calls as method calls on a per-episode instance made by ``factory``."""

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        load_state: Callable[[Any, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.factory = factory
        self.load_state = load_state
        # Whether a call may await (the server then bounds it with a cancel scope): known only of a
        # class, and only where none of its public methods is async.
        self.suspends = not isinstance(factory, type) or any(
            inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
            for name, m in inspect.getmembers(factory) if not name.startswith("_")
        )  # fmt: skip

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> Any:
        instance = self.factory()
        if initial is not None:
            if self.load_state is None:
                raise BackendError(f"{type(instance).__name__} takes no initial state")
            self.load_state(instance, copy_tree(dict(initial)))
        return instance

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: Any) -> Any:
        method = getattr(state, tool.original_name, None)
        if method is None or tool.original_name.startswith("_") or not callable(method):
            raise ToolCallError(f"{type(state).__name__} has no tool method {tool.original_name!r}")
        try:
            result = method(**arguments)
            if inspect.isawaitable(result):
                if not self.suspends:  # a plain def's awaitable would run with no time bound
                    getattr(result, "close", lambda: None)()
                    raise _NotAsync(f"{type(state).__name__}.{tool.original_name} is a plain def that returned an "
                                    "awaitable; declare it async def")  # fmt: skip
                result = await result
        except _NotAsync:
            raise
        except Exception as exc:  # the simulated API's own answer (BFCL shows the model these), not a bug here
            raise ToolCallError(f"{tool.name} failed: {type(exc).__name__}: {exc}") from exc
        result = to_jsonable(result)
        if isinstance(result, dict) and set(result) == {"error"}:
            raise ToolCallError(json.dumps(result, ensure_ascii=False))
        return result

    def snapshot(self, state: Any) -> dict[str, Any]:
        """Public attributes (BFCL's state checker compares exactly these)."""
        return {k: to_jsonable(v) for k, v in sorted(vars(state).items()) if not k.startswith("_")}


class _NotAsync(BackendError):
    """The backend's own mistake (the server reports it as kind "backend"), not the model's."""


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """JSON view of a result or state: objects by their public attributes, the rest by ``repr``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth < MAX_SNAPSHOT_DEPTH and (kind is dict or kind is list):  # the common shapes, without the walk below
        if kind is dict:
            return {k if type(k) is str else str(k): v if type(v) in _PLAIN else to_jsonable(v, depth + 1)
                    for k, v in value.items()}  # fmt: skip
        return [v if type(v) in _PLAIN else to_jsonable(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth > MAX_SNAPSHOT_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v, depth + 1) for v in items]
    if hasattr(value, "__dict__") and not inspect.isroutine(value):
        public = {k: v for k, v in vars(value).items() if not k.startswith("_") and k != "parent"}
        return {"__type__": type(value).__name__, **{k: to_jsonable(v, depth + 1) for k, v in public.items()}}
    return repr(value)


def import_object(target: str) -> Any:
    """``package.module:ClassName`` -> the class (or any attribute), with a clear error."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise BackendError(f"expected MODULE:CLASS, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise BackendError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def suite_from_class(cls: type, *, name: str | None = None) -> ToolSuite:
    """Tool docs from public methods: JSON Schema from type hints, description from docstrings."""
    names = UniqueNames()
    tools = []
    for method_name, method in inspect.getmembers(cls, inspect.isfunction):
        if method_name.startswith("_"):
            continue
        schema = _signature_schema(method)
        tools.append(
            ToolSpec(
                name=names.claim(sanitize_tool_name(method_name)),
                original_name=method_name,
                description=inspect.getdoc(method) or method_name,
                input_schema=schema,
                bindings={k: ParamBinding(location="argument", name=k) for k in schema["properties"]},
                source=Source(file=f"{cls.__module__}:{cls.__qualname__}", pointer=f"/{method_name}"),
            )
        )
    return ToolSuite(
        name=sanitize_tool_name(name or cls.__name__),
        description=inspect.getdoc(cls) or "",
        format="python",
        source=f"{cls.__module__}:{cls.__qualname__}",
        tools=tools,
    )


def _signature_schema(method: Callable[..., Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    hints = inspect.get_annotations(method, eval_str=True) if hasattr(method, "__annotations__") else {}
    for param in list(inspect.signature(method).parameters.values())[1:]:  # skip self
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(param.name, Any)
        try:
            schema = TypeAdapter(hint).json_schema()
        except (PydanticSchemaGenerationError, PydanticUserError):
            schema = {}
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            try:
                json.dumps(param.default)
                schema["default"] = param.default
            except (TypeError, ValueError):
                pass
        properties[param.name] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out
