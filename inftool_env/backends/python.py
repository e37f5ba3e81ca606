"""A Python backend: an object's public methods are the tools, one fresh object per episode.

Tool docs come from a spec (BFCL ships them) or, with none, from the methods' signatures and
docstrings. A returned ``{"error": …}`` dict — the convention of BFCL's API classes — is a tool
error; so is any exception the method raises. The model sees the same text either way.

An argument typed beyond plain JSON (a dataclass, a pydantic model, a date, an Enum) is validated into
that type before the call, and a result of such types comes back as their JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import inspect
import json
import re
import traceback
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic_core import PydanticSerializationError

from inftool_env.backends.base import copy_tree
from inftool_env.errors import BackendError, SpecError, ToolCallError, invalid_why
from inftool_env.spec.ir import ParamBinding, SkippedOperation, Source, ToolSpec, ToolSuite
from inftool_env.spec.naming import UniqueNames, sanitize_tool_name
from inftool_env.spec.schema import SchemaCompiler

MAX_SNAPSHOT_DEPTH = 32


class PythonBackend:
    """Runs calls as method calls on a per-episode instance made by ``factory``."""

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        load_state: Callable[[Any, Mapping[str, Any]], None] | None = None,
    ) -> None:
        require_no_arguments(factory)
        self.factory = factory
        self.load_state = load_state
        # (class, method) -> adapters of its arguments that are not plain JSON, built at its first call
        self._adapters: dict[tuple[type, str], dict[str, TypeAdapter[Any]]] = {}
        # Whether a call may await (the server then bounds it with a cancel scope): known only of a
        # class, and only where none of its public methods is async.
        self.suspends = not isinstance(factory, type) or any(
            inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
            for name, m in inspect.getmembers(factory) if not name.startswith("_")
        )  # fmt: skip

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> Any:
        try:
            instance = self.factory()
        except Exception as exc:  # the user's __init__ (a database not reachable): one line, not a traceback
            raise BackendError(f"{_named(self.factory)}() failed: {type(exc).__name__}: {exc}") from exc
        if initial is not None:
            if self.load_state is None:
                raise BackendError(f"{type(instance).__name__} takes no initial state")
            self.load_state(instance, copy_tree(dict(initial)))
        return instance

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: Any) -> Any:
        method = getattr(state, tool.original_name, None)
        if method is None or tool.original_name.startswith("_") or not callable(method):
            raise ToolCallError(f"{type(state).__name__} has no tool method {tool.original_name!r}")
        key = (type(state), tool.original_name)
        adapters = self._adapters.get(key)
        if adapters is None:
            adapters = self._adapters[key] = argument_adapters(*key)
        if adapters:  # none for plain str/int/list/dict/Any arguments (all of BFCL's): those cost nothing here
            arguments = {**arguments, **_validated(tool.name, adapters, arguments)}
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
_STR = frozenset({str})


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """JSON view of a result or state: dates as ISO text, enums by value, models and dataclasses by
    their fields, other objects by their public attributes, the rest by ``repr``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth < MAX_SNAPSHOT_DEPTH and (kind is dict or kind is list):  # the common shapes, without the walk below
        if kind is dict:
            if _STR.issuperset(map(type, value)) and _PLAIN.issuperset(map(type, value.values())):
                return value.copy()  # text keys, plain values: checked and copied in C, no loop here
            return {k if type(k) is str else str(k): v if type(v) in _PLAIN else to_jsonable(v, depth + 1)
                    for k, v in value.items()}  # fmt: skip
        if _PLAIN.issuperset(map(type, value)):  # a long result of numbers or names: one C pass (stops at a non-plain)
            return value.copy()
        return [v if type(v) in _PLAIN else to_jsonable(v, depth + 1) for v in value]
    if isinstance(value, enum.Enum):  # before the scalars: a StrEnum is a str, but its repr is not its value
        return to_jsonable(value.value, depth + 1)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth > MAX_SNAPSHOT_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v, depth + 1) for v in items]
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, BaseModel):
        try:
            return value.model_dump(mode="json")
        except PydanticSerializationError:  # a field of a type pydantic cannot write: walk the fields instead
            return {k: to_jsonable(getattr(value, k), depth + 1) for k in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
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
    except ModuleNotFoundError as exc:
        # Only where the module itself (or its package) is missing, not a module it imports in turn.
        own = exc.name is not None and (module_name + ".").startswith(exc.name + ".")
        hint = ("; it must be importable: run with PYTHONPATH=. from the folder that holds it, or pip install "
                "your package") if own else ""  # fmt: skip
        raise BackendError(f"cannot import {module_name!r}: {exc}{hint}") from None
    except SyntaxError as exc:  # the user's module (or one it imports) does not parse
        where = f" at {exc.filename} line {exc.lineno}" if exc.filename else ""
        raise BackendError(f"cannot import {module_name!r}: {type(exc).__name__}{where}: {exc.msg}") from None
    except Exception as exc:  # the module's own code failed as it ran (a missing config, a bad import)
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise BackendError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc} (at {frame.filename} "
                           f"line {frame.lineno})") from None  # fmt: skip
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise BackendError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def require_no_arguments(factory: Callable[..., Any]) -> None:
    """Refuse, at load, a class that needs arguments: each episode makes one with none."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a signature Python cannot read: found out at the first episode
        return
    required = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY)  # fmt: skip
    missing = [p.name for p in params if p.kind in required and p.default is p.empty]
    if missing:
        raise BackendError(f"{_named(factory)}() cannot be made without arguments ({', '.join(missing)}): a python: "
                           "class must be constructible with no arguments (one is made for each episode)")  # fmt: skip


def _named(factory: Callable[..., Any]) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def suite_from_class(cls: type, *, name: str | None = None) -> ToolSuite:
    """Tool docs from public methods (static and class methods too): JSON Schema from type hints,
    description from docstrings. A public callable that is no method is listed as skipped, with why."""
    require_no_arguments(cls)
    names = UniqueNames()
    tools, skipped = [], []
    where = f"{cls.__module__}:{cls.__qualname__}"
    for method_name in dir(cls):
        method = _method(cls, method_name)
        if isinstance(method, str):
            skipped.append(SkippedOperation(name=method_name, pointer=f"/{method_name}", reason=method))
            continue
        if method is None:
            continue
        schema = _signature_schema(method, f"{where}.{method_name}")
        tools.append(
            ToolSpec(
                name=names.claim(sanitize_tool_name(method_name)),
                original_name=method_name,
                description=inspect.getdoc(method.func) or method_name,
                input_schema=schema,
                bindings={k: ParamBinding(location="argument", name=k) for k in schema["properties"]},
                source=Source(file=where, pointer=f"/{method_name}"),
            )
        )
    return ToolSuite(
        name=sanitize_tool_name(name or cls.__name__),
        description=inspect.getdoc(cls) or "",
        format="python",
        source=where,
        tools=tools,
        skipped=skipped,
    )


def match_suite(suite: ToolSuite, cls: type, *, strict: bool = False) -> ToolSuite:
    """``suite`` less the tools ``cls`` cannot run, each moved to ``skipped`` with why (``strict``: a
    SpecError instead): docs written apart from the class (a functions file, BFCL's) are matched
    against it at load, not found out at the first call. A tool needs a method of its name that takes
    every documented argument by keyword and whose required parameters are all documented."""
    tools, skipped = [], list(suite.skipped)
    for tool in suite.tools:
        why = _mismatch(cls, tool)
        if why is None:
            tools.append(tool)
        elif strict:
            raise SpecError(why, source=suite.source, pointer=tool.source.pointer)
        else:
            skipped.append(SkippedOperation(name=tool.name, pointer=tool.source.pointer, reason=why))
    if len(tools) == len(suite.tools):
        return suite
    return suite.model_copy(update={"tools": tools, "skipped": skipped})


def _mismatch(cls: type, tool: ToolSpec) -> str | None:
    """Why a call of ``tool`` on an instance of ``cls`` would fail before the method runs, or None."""
    name = tool.original_name
    method = _method(cls, name)
    if isinstance(method, str):
        return f"{cls.__qualname__}.{name} cannot be a tool: {method}"
    if method is None:
        if getattr(cls, "__getattr__", None) is not None:  # its instances may make the method: found at the call
            return None
        return f"{cls.__qualname__} has no method {name!r}"
    documented = set(tool.input_schema.get("properties", {}))
    by_keyword = {p.name for p in method.params if p.kind in _BY_KEYWORD}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in method.params)
    unknown = [] if takes_any else sorted(documented - by_keyword)
    missing = [p.name for p in method.params if p.kind not in _VARIADIC and p.default is p.empty
               and not (p.name in documented and p.name in by_keyword)]  # fmt: skip
    problems = []
    if unknown:
        takes = ", ".join(sorted(by_keyword)) or "none"
        problems.append(f"takes no argument {_listed(unknown)} (its parameters: {takes})")
    if missing:
        problems.append(f"requires {_listed(missing)}, which the doc does not give as an argument")
    return f"{cls.__qualname__}.{name} {' and '.join(problems)}" if problems else None


_BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _listed(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


@dataclasses.dataclass(frozen=True)
class _Method:
    """A public method as a caller sees it: ``params`` without ``self``/``cls``, ``hints`` evaluated."""

    func: Callable[..., Any]
    params: list[inspect.Parameter]
    hints: dict[str, Any]


def _method(cls: type, name: str) -> _Method | str | None:
    """The tool method ``name`` of ``cls``; a string says why a public callable cannot be one; None:
    not a method (private, a property, a nested class, a constant)."""
    if name.startswith("_"):
        return None
    try:
        raw = inspect.getattr_static(cls, name)
    except AttributeError:
        return None
    if isinstance(raw, staticmethod):
        func, bound = raw.__func__, 0
    elif isinstance(raw, classmethod):
        func, bound = raw.__func__, 1
    elif inspect.isfunction(raw):
        func, bound = raw, 1
    elif callable(raw) and not isinstance(raw, type):
        return f"a {type(raw).__name__} object, not a def, @staticmethod or @classmethod"
    else:
        return None
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return f"its signature cannot be read ({func!r})"
    if bound and not (params and params[0].kind in _POSITIONAL):
        return "a def with no self parameter (a @staticmethod?)"
    return _Method(func, params[bound:], _hints(cls, name, func))


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
               inspect.Parameter.VAR_POSITIONAL)  # fmt: skip
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _hints(cls: type, name: str, func: Callable[..., Any]) -> dict[str, Any]:
    # An error, not a skipped method: the user wrote it as a tool, and a type they named but did not
    # import (a TYPE_CHECKING import under `from __future__ import annotations`) is a one-line fix,
    # where a tool gone from the suite is found only when a model never calls it.
    try:
        return inspect.get_annotations(func, eval_str=True) if hasattr(func, "__annotations__") else {}
    except Exception as exc:
        undefined = getattr(exc, "name", None) or ""
        raw = getattr(func, "__annotations__", {})
        param, text = next(((p, t) for p, t in raw.items() if isinstance(t, str) and undefined
                            and re.search(rf"\b{re.escape(undefined)}\b", t)), ("", ""))  # fmt: skip
        which = f"the annotation {text!r} of {param!r}" if param else "an annotation"
        raise BackendError(f"{cls.__module__}:{cls.__qualname__}.{name}: {which} does not resolve "
                           f"({type(exc).__name__}: {exc}); import what it names at run time, not only "
                           "under TYPE_CHECKING") from None  # fmt: skip


def _signature_schema(method: _Method, where: str) -> dict[str, Any]:
    params = [p for p in method.params if p.kind not in _VARIADIC]
    adapters = _param_adapters(method)
    # All at once: a model or an Enum is a shared "$ref": "#/$defs/…", which must be found at the root.
    schemas, defs = TypeAdapter.json_schemas([(name, "validation", a) for name, a in adapters.items()])
    properties: dict[str, Any] = {}
    for param in params:
        schema = properties[param.name] = dict(schemas.get((param.name, "validation"), {}))
        if param.default is not param.empty and _is_json(param.default):
            schema["default"] = param.default
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required := [p.name for p in params if p.default is p.empty]:
        out["required"] = required
    if not defs:
        return out
    # Inlined as a spec's refs are (a recursive one kept under the root's $defs): one shape for every tool.
    compiler = SchemaCompiler({**out, **defs}, source=where, dialect="openapi-3.1")
    compiled: dict[str, Any] = compiler.finish(compiler.compile(out, ""))
    return compiled


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def argument_adapters(cls: type, name: str) -> dict[str, TypeAdapter[Any]]:
    """A validator for each argument of ``cls.name`` whose hint is not plain JSON (a dataclass, a model,
    a date, an Enum, a tuple, a dict of int keys): the model sends JSON, the method expects the type it annotated."""
    method = _method(cls, name)
    return _param_adapters(method, plain=False) if isinstance(method, _Method) else {}


def _param_adapters(method: _Method, *, plain: bool = True) -> dict[str, TypeAdapter[Any]]:
    """A TypeAdapter for each parameter a call names (not ``*args``/``**kwargs``; with ``plain=False``,
    none whose hint is plain JSON), one walk for both the schema and the validators. A type with no JSON
    Schema (a Callable) gets none: its schema is ``{}`` (any value), so its value reaches the method as sent."""
    adapters = {}
    for param in method.params:
        hint = method.hints.get(param.name, Any)
        if param.kind in _VARIADIC or (not plain and _is_plain(hint)):
            continue
        try:
            adapter = TypeAdapter(hint)
            adapter.json_schema()
        except (PydanticSchemaGenerationError, PydanticUserError):  # PydanticInvalidForJsonSchema is one
            continue
        adapters[param.name] = adapter
    return adapters


_JSON_HINTS = (str, int, float, bool, type(None), list, dict, object)
# A JSON object's keys are text: a dict of other keys (dict[int, X]) needs its validator to become one.
_JSON_KEYS = (str, Any, object)


def _is_plain(hint: Any) -> bool:
    """Whether a JSON value already is what ``hint`` asks for (str, list[int], dict[str, Any] | None…)."""
    if hint is Any or hint in _JSON_HINTS:
        return True
    origin = get_origin(hint)
    if origin is Literal:
        return all(type(v) in _PLAIN for v in get_args(hint))
    args = get_args(hint)
    if origin is dict:
        return not args or (args[0] in _JSON_KEYS and _is_plain(args[1]))  # typing.Dict has none
    if origin in (list, Union, types.UnionType):
        return all(_is_plain(arg) for arg in args)
    return False


def _validated(tool: str, adapters: Mapping[str, TypeAdapter[Any]], arguments: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for param, adapter in adapters.items():
        if param in arguments:
            try:
                out[param] = adapter.validate_python(arguments[param])
            except ValidationError as exc:
                where = ".".join([param, *(str(p) for p in exc.errors()[0]["loc"])])
                raise ToolCallError(f"Invalid arguments for {tool!r}: {where}: {invalid_why(exc)}") from None
    return out
