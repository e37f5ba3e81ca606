"""A schema compiled once into a closure that answers one question fast: is this value surely valid?

``jsonschema`` walks the schema on every call (~55 us for a typical tool's arguments, most of a
server's per-call cost). Most calls are valid, and a valid value needs no error messages, so the
server asks this first and runs ``jsonschema`` only when the answer is "not surely": the messages
stay ``jsonschema``'s own, and the verdict never differs.

It is one-sided by construction: ``True`` only where Draft 2020-12 says valid; anything it does not
model (a keyword it does not know, an ``enum`` of containers, a number that equals an enum value
of another type) answers ``False`` and goes to the full validator. A schema using a validation
keyword beyond the subset below compiles to ``None``: always the full validator. ``format`` is an
annotation here, as for the server's validator (``bounded_validator`` is given no format checker).
``pattern`` searches with the server validator's own bounded search (spec/patterns.py): the same time
budget, the same ``PatternTimeout``; a pattern that does not compile answers "not surely".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sized
from typing import Any

from jsonschema import Draft202012Validator

from inftool_env.spec.patterns import search

Check = Callable[[Any], bool]

_VALIDATION_KEYWORDS = frozenset(Draft202012Validator.VALIDATORS) - {"format"}
_SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "pattern",
})  # fmt: skip
_EXACT = frozenset({str, int, bool, type(None)})


def _applies(v: Any, kind: type | tuple[type, ...]) -> bool:
    """Whether a keyword for ``kind`` applies to ``v`` (a bool is no number); a subclass counts, and
    the checks then answer "not surely" for anything but the plain type."""
    return isinstance(v, kind) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    return (type(v) is int) or (type(v) is float and v.is_integer())


def _is_number(v: Any) -> bool:
    return type(v) is int or (type(v) is float and math.isfinite(v))


_TYPES: dict[str, Check] = {
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


def compile_check(schema: Any, _depth: int = 0) -> Check | None:
    """The fast check for ``schema``, or ``None`` when it uses what the check does not model."""
    if schema is True:
        return lambda v: True
    if not isinstance(schema, dict) or _depth > 32:
        return None
    keywords = _VALIDATION_KEYWORDS & schema.keys()
    if not keywords <= _SUPPORTED:
        return None
    checks: list[Check] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not all(isinstance(k, str) and k in _TYPES for k in kinds):
            return None
        tests = [_TYPES[k] for k in kinds]
        checks.append(tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests))
    for key in ("enum", "const"):
        if key in schema:
            allowed = schema["enum"] if key == "enum" else [schema["const"]]
            if not isinstance(allowed, list):
                return None
            # Plain scalars, matched with their type: jsonschema's own equality (1 == 1.0, True != 1) and
            # containers are left to it.
            checks.append(_member_of({(type(a), a) for a in allowed if type(a) in _EXACT}))
    bounds = _bounds(schema)
    if bounds is None:
        return None
    checks += bounds
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            return None
        checks.append(_matching(schema["pattern"]))
    if {"properties", "required", "additionalProperties"} & keywords:
        obj = _object_check(schema, _depth)
        if obj is None:
            return None
        checks.append(obj)
    if "items" in schema:
        item = compile_check(schema["items"], _depth + 1)
        if item is None:
            return None
        checks.append(lambda v: not _applies(v, list) or (type(v) is list and all(item(x) for x in v)))
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda v, b: v >= b, "maximum": lambda v, b: v <= b,
    "exclusiveMinimum": lambda v, b: v > b, "exclusiveMaximum": lambda v, b: v < b,
}  # fmt: skip
_SIZES: tuple[tuple[str, type[Sized], bool], ...] = (
    ("minLength", str, True), ("maxLength", str, False), ("minItems", list, True), ("maxItems", list, False),
)  # fmt: skip


def _number_bound(compare: Callable[[Any, Any], bool], bound: Any) -> Check:
    return lambda v: not _applies(v, (int, float)) or (_is_number(v) and compare(v, bound))


def _size_bound(kind: type[Sized], n: int, least: bool) -> Check:
    if least:
        return lambda v: not _applies(v, kind) or (type(v) is kind and len(v) >= n)
    return lambda v: not _applies(v, kind) or (type(v) is kind and len(v) <= n)


def _bounds(schema: dict[str, Any]) -> list[Check] | None:
    """Numeric, length and size bounds; each applies only to its own kind of value, as in jsonschema."""
    checks: list[Check] = []
    for key, compare in _COMPARE.items():
        if key in schema:
            if not _is_number(schema[key]):
                return None
            checks.append(_number_bound(compare, schema[key]))
    for key, kind, least in _SIZES:
        if key in schema:
            if type(schema[key]) is not int:
                return None
            checks.append(_size_bound(kind, schema[key], least))
    return checks


def _matching(pattern: str) -> Check:
    return lambda v: not _applies(v, str) or (type(v) is str and search(pattern, v) is True)


def _member_of(pairs: set[tuple[type, Any]]) -> Check:
    return lambda v: type(v) in _EXACT and (type(v), v) in pairs


def _object_check(schema: dict[str, Any], depth: int) -> Check | None:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    subs: dict[str, Check] = {}
    for name, sub in properties.items():
        compiled = compile_check(sub, depth + 1)
        if compiled is None:
            return None
        subs[name] = compiled
    extra_check = None if extra is False else compile_check(extra, depth + 1)
    if extra is not False and extra_check is None:
        return None
    needed = tuple(required)

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return not _applies(v, dict)  # they apply to objects only; "type" says if one is needed
        for key in needed:
            if key not in v:
                return False
        for key, value in v.items():
            sub = subs.get(key)
            if sub is not None:
                if not sub(value):
                    return False
            elif extra_check is None or not extra_check(value):
                return False
        return True

    return check
