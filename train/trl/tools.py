"""Our MCP tools as Python methods TRL can offer: real signatures, type hints and Google-style docstrings.

TRL renders an environment's public methods into the prompt through transformers' ``get_json_schema``,
which reads only the signature, the type hints and the docstring's ``Args:`` block. So each tool's JSON
Schema is turned into exactly those: JSON types become Python hints (enums become ``Literal``), optional
parameters default to ``None``, and what hints cannot say (nested object shapes, bounds, formats) is
appended to the argument's description as compact JSON Schema. The method passes the model's arguments
through unchanged: validating them is the environment's job (the schema gate), as in ``inftool eval``.
"""

from __future__ import annotations

import inspect
import json
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from inftool_env.errors import InftoolError

# Methods every environment instance has: a tool of that name would be shadowed by (or shadow) them.
RESERVED = frozenset({"reset", "get_reward"})

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
# Keywords the hints already carry, or that are only descriptive.
_SHOWN = frozenset({"type", "description", "enum", "items", "title"})


@dataclass(frozen=True)
class ToolMethod:
    """One tool as TRL sees it, plus the way back to the tool's own argument names."""

    name: str
    function: Callable[..., str]
    arguments: Mapping[str, str]  # Python parameter name -> the schema's property name


def python_name(prop: str) -> str:
    """A schema property as a parameter name (``\\w+``, no keyword, not the method's ``self``), which
    ``get_json_schema`` also needs."""
    name = re.sub(r"\W", "_", prop)
    if not name or name[0].isdigit():
        name = f"_{name}" if name else "_"
    return f"{name}_" if keyword.iskeyword(name) or name == "self" else name


def hint(schema: Any) -> Any:
    """The Python type hint whose ``get_json_schema`` rendering is closest to ``schema``."""
    if not isinstance(schema, dict):
        return Any
    enum = schema.get("enum")
    if isinstance(enum, list) and _literal(enum):
        return Literal.__getitem__(tuple(enum))  # built at runtime: the values are data
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _union([hint(o) for o in options])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([hint({**schema, "type": k}) for k in kind])
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        items = schema.get("items")
        return list.__class_getitem__(hint(items)) if isinstance(items, dict) else list
    if kind == "object" or "properties" in schema:
        return dict[str, Any]
    return Any


def _literal(enum: Any) -> bool:
    return isinstance(enum, list) and bool(enum) and all(isinstance(v, str | int | float | bool) for v in enum)


def _union(hints: list[Any]) -> Any:
    unique = list(dict.fromkeys(hints))
    if Any in unique:
        return Any
    return unique[0] if len(unique) == 1 else Union[tuple(unique)]  # noqa: UP007 - built at runtime


def describe(prop: str, schema: Any) -> str:
    """One line for the docstring's ``Args:`` entry: the description, then what the hint leaves out."""
    if not isinstance(schema, dict):
        return "(any JSON value)"
    text = _one_line(str(schema.get("description") or ""))
    rest = {k: v for k, v in schema.items() if k not in _SHOWN}
    if "enum" in schema and not _literal(schema["enum"]):
        rest["enum"] = schema["enum"]
    items = schema.get("items")
    if isinstance(items, dict) and (set(items) - _SHOWN or items.get("description")):
        rest["items"] = items
    text = text or f"The {prop}."
    if rest:
        text += f" (JSON Schema: {json.dumps(rest, ensure_ascii=False, separators=(',', ':'))})"
    return text


def _one_line(text: str) -> str:
    """Whitespace collapsed and section headers defused: get_json_schema would end a section at "Returns:"."""
    return re.sub(r"\b(Args|Returns|Raises):", r"\1 -", " ".join(text.split()))


def tool_method(name: str, description: str, input_schema: Mapping[str, Any], call: str) -> ToolMethod:
    """A method ``name(self, **arguments) -> str`` forwarding to ``self.<call>(name, arguments)``."""
    if name in RESERVED or name.startswith("_"):
        raise InftoolError(f"tool {name!r} cannot be a TRL environment method (reserved or private name)")
    props = input_schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = set(input_schema.get("required") or ())
    back: dict[str, str] = {}
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    docs = []
    # Required first: a parameter without a default cannot follow one with a default.
    for prop in sorted(props, key=lambda p: p not in required):
        pname = python_name(prop)
        if pname in back:
            raise InftoolError(f"tool {name!r}: properties {back[pname]!r} and {prop!r} both become {pname!r}")
        back[pname] = prop
        annotations[pname] = hint(props[prop])
        default = inspect.Parameter.empty if prop in required else None
        params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=annotations[pname]))  # fmt: skip
        docs.append(f"    {pname}: {describe(prop, props[prop])}")
    annotations["return"] = str

    def method(self: Any, /, **arguments: Any) -> str:  # positional-only: an argument named "self" reaches the env
        return str(getattr(self, call)(name, {back.get(k, k): v for k, v in arguments.items()}))

    summary = _one_line(description) or f"Call the {name} tool."
    doc = summary + ("\n\nArgs:\n" + "\n".join(docs) if docs else "")
    method.__doc__ = doc + "\n\nReturns:\n    The tool's result, as text."
    method.__name__ = method.__qualname__ = name
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    return ToolMethod(name, method, back)
