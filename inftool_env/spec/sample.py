"""Deterministic instances of a JSON Schema: results of the simulated backend, arguments in tests.

``sample(schema, rng, hint=…)`` builds a value that validates against the schema for the keywords
real API specs use (types, enum/const, examples/default, formats, bounds, required, items, oneOf…),
taking values from ``hint`` wherever they fit, so a stored record shows through a response schema.
The same rng state gives the same value, byte for byte.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import re
import string
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from inftool_env.spec.patterns import PatternTimeout, bounded_validator
from inftool_env.spec.patterns import search as bounded_search

_MISSING = object()
_FORMATS = {
    "date-time": "2024-05-{day:02d}T10:{minute:02d}:00Z",
    "date": "2024-05-{day:02d}",
    "time": "10:{minute:02d}:00",
    "email": "user{n}@example.com",
    "uri": "https://example.com/r/{n}",
    "url": "https://example.com/r/{n}",
    "uuid": "00000000-0000-4000-8000-{n:012d}",
    "byte": "aGVsbG8=",
    "ipv4": "192.0.2.{minute}",
    "hostname": "host{n}.example.com",
}
_COMPOSED = frozenset(("$ref", "const", "enum", "oneOf", "anyOf", "allOf"))  # keywords sample() resolves first
_JSON_TYPE = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}  # fmt: skip


def matches_type(value: Any, schema_type: Any) -> bool:
    types = schema_type if isinstance(schema_type, list) else [schema_type]
    for t in types:
        if t == "integer" and _is_whole(value):  # 2000.0 is an integer to JSON Schema, and stays as given
            return True
        if t == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if t in _JSON_TYPE and isinstance(value, _JSON_TYPE[t]) and not (t != "boolean" and isinstance(value, bool)):
            return True
    return False


def _is_whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def _type_of(value: Any) -> str | None:
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if matches_type(value, name):
            return name
    return None


def sample(
    schema: Any,
    rng: random.Random,
    *,
    hint: Any = _MISSING,
    root: dict[str, Any] | None = None,
    optional: float = 1.0,
    depth: int = 0,
) -> Any:
    """A value valid against ``schema``; ``optional`` is the chance of including a non-required property."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    if schema is True or not isinstance(schema, dict):
        return hint if hint is not _MISSING else None
    if _COMPOSED.isdisjoint(schema):  # most nodes: a plain typed schema (one look instead of six)
        return _sample_typed(schema, rng, hint, root, optional, depth)
    if "$ref" in schema:
        target = root.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
        return sample(target, rng, hint=hint, root=root, optional=0.0 if depth > 3 else optional, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return hint if hint is not _MISSING and hint in schema["enum"] else rng.choice(schema["enum"])
    if isinstance(schema.get("oneOf"), list) and schema["oneOf"]:
        return _sample_one_of(schema, rng, hint, root, optional, depth)
    if isinstance(schema.get("anyOf"), list) and schema["anyOf"]:
        branch = schema["anyOf"][0] if hint is not _MISSING else rng.choice(schema["anyOf"])
        merged = _merge({k: v for k, v in schema.items() if k != "anyOf"}, branch)
        return sample(merged, rng, hint=hint, root=root, optional=optional, depth=depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged = _merge(merged, part)
        return sample(merged, rng, hint=hint, root=root, optional=optional, depth=depth + 1)
    return _sample_typed(schema, rng, hint, root, optional, depth)


def _sample_typed(
    schema: dict[str, Any], rng: random.Random, hint: Any, root: dict[str, Any], optional: float, depth: int
) -> Any:
    schema_type = _pick_type(schema, hint)
    if hint is not _MISSING and schema_type not in ("object", "array") and _fits(hint, schema, schema_type):
        return hint
    if schema_type not in ("object", "array") and ("default" in schema or "examples" in schema):
        for key in ("default", "examples"):
            value = schema.get(key, _MISSING)
            if key == "examples" and isinstance(value, list) and value:
                value = value[0]
            if value is not _MISSING and _fits(value, schema, schema_type):
                return value
    if schema_type == "object":
        return _sample_object(schema, rng, hint, root, optional, depth)
    if schema_type == "array":
        return _sample_array(schema, rng, hint, root, optional, depth)
    if schema_type == "string":
        return _sample_string(schema, rng)
    if schema_type in ("integer", "number"):
        return _sample_number(schema, rng, schema_type)
    if schema_type == "boolean":
        return rng.random() < 0.5
    return None


def _pick_type(schema: dict[str, Any], hint: Any) -> str:
    declared = schema.get("type")
    if declared and isinstance(declared, str):  # one declared type is the answer whatever the hint
        return declared
    types = declared if isinstance(declared, list) else [declared] if declared else []
    if hint is not _MISSING and hint is not None:
        for t in types:
            if matches_type(hint, t):
                return str(t)
        if not types and (hinted := _type_of(hint)) is not None:  # untyped: what was written is what reads back
            return "number" if hinted == "integer" else hinted
    for t in types:
        if t != "null":
            return str(t)
    if types:
        return "null"
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
        return "number"
    return "string"


def _fits(value: Any, schema: dict[str, Any], schema_type: str) -> bool:
    if not matches_type(value, schema_type):
        return False
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, value):
            return False
        return len(value) >= schema.get("minLength", 0) and len(value) <= schema.get("maxLength", len(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_fits(value, schema)
    return True


def _number_fits(value: float, schema: dict[str, Any]) -> bool:
    lo, hi, lo_open, hi_open = _bounds(schema)
    if lo is not None and (value < lo or (lo_open and value == lo)):
        return False
    if hi is not None and (value > hi or (hi_open and value == hi)):
        return False
    step = schema.get("multipleOf")
    return not (isinstance(step, int | float) and _num(step) and step > 0 and not _is_multiple(value, step))


def _sample_object(
    schema: dict[str, Any], rng: random.Random, hint: Any, root: dict[str, Any], optional: float, depth: int
) -> dict[str, Any]:
    hint = hint if isinstance(hint, dict) else {}
    raw_props = schema.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema.get("required"), list) else set()
    out: dict[str, Any] = {}
    chance = optional if depth < 4 else 0.0
    for name, sub in props.items():
        if name in hint:
            out[name] = sample(sub, rng, hint=hint[name], root=root, optional=optional, depth=depth + 1)
        elif name in required or rng.random() < chance:
            out[name] = sample(sub, rng, root=root, optional=optional, depth=depth + 1)
        elif isinstance(sub, dict) and "default" in sub:  # as a server would apply it (if it fits: specs lie)
            out[name] = sample(sub, rng, hint=sub["default"], root=root, optional=0.0, depth=depth + 1)
    for name in required - out.keys():  # required names with no declared property schema
        out[name] = hint.get(name, "value")
    extra = schema.get("additionalProperties")
    free_form = extra is None and not props and "patternProperties" not in schema  # {type: object}: anything goes
    if extra not in (None, False) or free_form:
        for name, value in hint.items():
            if name not in props:
                out[name] = (
                    copy.deepcopy(value)
                    if free_form
                    else sample(extra, rng, hint=value, root=root, optional=optional, depth=depth + 1)
                )
    min_props = schema.get("minProperties", 0)
    if isinstance(min_props, int) and len(out) < min_props and extra is not False:
        for i in range(min_props - len(out)):
            out[f"key{i}"] = sample(extra if isinstance(extra, dict) else {}, rng, root=root, depth=depth + 1)
    return out


def _sample_array(
    schema: dict[str, Any], rng: random.Random, hint: Any, root: dict[str, Any], optional: float, depth: int
) -> list[Any]:
    items = schema.get("items", {})
    lo = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
    hi = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
    if isinstance(hint, list):
        values = [sample(items, rng, hint=h, root=root, optional=optional, depth=depth + 1) for h in hint]
    else:
        count = max(lo, 1 if depth < 3 else 0)
        values = [sample(items, rng, root=root, optional=optional, depth=depth + 1) for _ in range(count)]
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        values = [sample(p, rng, root=root, depth=depth + 1) for p in prefix] + values[len(prefix) :]
    if hi is not None:
        values = values[:hi]
    if schema.get("uniqueItems"):
        unique: list[Any] = []
        for v in values:
            if v not in unique:
                unique.append(v)
        values = unique
    return values


def _sample_one_of(
    schema: dict[str, Any], rng: random.Random, hint: Any, root: dict[str, Any], optional: float, depth: int
) -> Any:
    """Exactly one branch must match: try branches (fuller ones second) until one value does."""
    base = {k: v for k, v in schema.items() if k != "oneOf"}
    branches = list(schema["oneOf"])
    start = 0 if hint is not _MISSING else rng.randrange(len(branches))
    order = branches[start:] + branches[:start]
    check = bounded_validator({**schema, "$defs": root.get("$defs", {})})
    first = None
    for fullness in (optional, 1.0, 0.0):
        for branch in order:
            merged = _merge(base, branch) if isinstance(branch, dict) else base
            value = sample(merged, rng, hint=hint, root=root, optional=fullness, depth=depth + 1)
            first = value if first is None else first
            with contextlib.suppress(PatternTimeout):  # too slow to tell: try another
                if check.is_valid(value):
                    return value
    return first


def _sample_string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    n = 1 + _below(rng, 9_999)  # rng.randrange(1, 10_000)
    pattern = schema.get("pattern")
    lo = schema.get("minLength", 0) if isinstance(schema.get("minLength"), int) else 0
    hi = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    if isinstance(pattern, str):
        for _ in range(8):  # the pattern and the length bounds must hold together
            generated = regex_sample(pattern, rng)
            if generated is not None and len(generated) >= lo and (hi is None or len(generated) <= hi):
                return generated
    if fmt in _FORMATS:
        text = _FORMATS[fmt].format(n=n, day=rng.randrange(1, 29), minute=rng.randrange(0, 60))
    else:
        text = _letters(rng, string.ascii_lowercase, 8)
    if len(text) < lo:
        text += "x" * (lo - len(text))
    if hi is not None:
        text = text[:hi]
    return text


def _below(rng: random.Random, n: int) -> int:
    """``rng._randbelow(n)``, the draw ``choice`` and ``randrange`` make (the same value, the same rng
    state after), without their frames: strings are most of a seeded world's cost."""
    if type(rng) is not random.Random:
        return rng.randrange(n)
    bits, k = rng.getrandbits, n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def _letters(rng: random.Random, alphabet: str, count: int) -> str:
    """``count`` draws of ``rng.choice(alphabet)``, joined (the same text, the same rng state after)."""
    if type(rng) is not random.Random:
        return "".join(rng.choice(alphabet) for _ in range(count))
    bits, n = rng.getrandbits, len(alphabet)
    k = n.bit_length()
    out: list[str] = []
    while len(out) < count:
        r = bits(k)
        if r < n:
            out.append(alphabet[r])
    return "".join(out)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """(low, high, low is open, high is open): 2020-12 numeric exclusive bounds and draft-4 boolean ones."""
    lo = schema.get("minimum") if _num(schema.get("minimum")) else None
    hi = schema.get("maximum") if _num(schema.get("maximum")) else None
    lo_open = schema.get("exclusiveMinimum") is True and lo is not None
    hi_open = schema.get("exclusiveMaximum") is True and hi is not None
    emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _num(emin) and (lo is None or emin >= lo):
        lo, lo_open = emin, True
    if _num(emax) and (hi is None or emax <= hi):
        hi, hi_open = emax, True
    return lo, hi, lo_open, hi_open


def _is_multiple(value: float, step: float) -> bool:
    """The test jsonschema applies (a float step divides, an integer one takes the remainder)."""
    if isinstance(step, float):
        quotient = value / step
        return math.isfinite(quotient) and int(quotient) == quotient
    return value % step == 0


def _sample_number(schema: dict[str, Any], rng: random.Random, schema_type: str) -> int | float:
    low, high, lo_open, hi_open = _bounds(schema)
    step = schema.get("multipleOf") if _num(schema.get("multipleOf")) and schema["multipleOf"] > 0 else None
    integer = schema_type == "integer"
    # An open side gets a range of 100 from the other (or from 0): specs bound one side more often than both.
    lo: float = low if low is not None else (min(0, high - 100) if high is not None else 0)
    hi: float = high if high is not None else max(lo, 0) + 100
    if integer:  # the integers inside the (possibly open) interval
        lo = math.floor(lo) + 1 if lo_open and float(lo).is_integer() else math.ceil(lo)
        hi = math.ceil(hi) - 1 if hi_open and float(hi).is_integer() else math.floor(hi)
        lo_open = hi_open = False
    if step is not None:
        value = _multiple_in(lo, hi, lo_open, hi_open, step, integer, rng)
        if value is not None:
            return value
    if integer:
        return rng.randint(int(lo), int(max(lo, hi)))
    value = round(rng.uniform(lo, hi), 2)
    inside = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not inside:
        value = (lo + hi) / 2
    return value


def _multiple_in(
    lo: float, hi: float, lo_open: bool, hi_open: bool, step: float, integer: bool, rng: random.Random
) -> int | float | None:
    """A multiple of ``step`` inside the bounds that passes jsonschema's own test (0.3 / 0.1 does not)."""
    k_lo, k_hi = math.ceil(lo / step), math.floor(hi / step)
    if lo_open and k_lo * step <= lo:
        k_lo += 1
    if hi_open and k_hi * step >= hi:
        k_hi -= 1
    if k_lo > k_hi:
        return None
    decimals = max(0, -math.floor(math.log10(step))) + 2 if step < 1 else 0
    tries = [rng.randint(k_lo, k_hi) for _ in range(8)] + list(range(k_lo, min(k_hi, k_lo + 50) + 1))
    for k in tries:
        raw = k * step
        for value in (raw, round(raw, decimals), float(round(raw))):
            if integer and not float(value).is_integer():
                continue
            value = int(value) if integer or (isinstance(step, int) and float(value).is_integer()) else value
            inside = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
            if inside and _is_multiple(value, step):
                return value
    return None


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            out["required"] = [*out.get("required", []), *value]
        else:
            out.setdefault(key, value)
    return out


_CATEGORY_CHARS = {
    sre_c.CATEGORY_DIGIT: string.digits,
    sre_c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_c.CATEGORY_SPACE: " ",
    sre_c.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre_c.CATEGORY_NOT_WORD: "-",
    sre_c.CATEGORY_NOT_SPACE: string.ascii_letters,
}


def regex_sample(pattern: str, rng: random.Random, tries: int = 5) -> str | None:
    """A string that ``re.search(pattern)`` accepts, or None when the pattern is beyond this sampler."""
    try:
        parsed = sre_parse.parse(pattern)
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    for _ in range(tries):
        try:
            text = _emit(parsed, rng, {})
        except (_Unsupported, RecursionError):
            return None
        if _search(pattern, text):
            return text
    return None


def _search(pattern: str, value: str) -> bool:
    """Time-bounded (a spec's pattern may backtrack without end): too slow to tell is a no."""
    try:
        return bounded_search(pattern, value) is not False  # an unusable pattern constrains nothing
    except PatternTimeout:
        return False


class _Unsupported(Exception):
    pass


def _emit(items: Any, rng: random.Random, groups: dict[int, str]) -> str:
    out = []
    for op, arg in items:
        if op is sre_c.LITERAL:
            out.append(chr(arg))
        elif op is sre_c.ANY:
            out.append(rng.choice(string.ascii_letters))
        elif op is sre_c.IN:
            out.append(_emit_class(arg, rng))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = arg
            count = rng.randint(lo, min(hi, lo + 3))
            out.extend(_emit(sub, rng, groups) for _ in range(count))
        elif op is sre_c.SUBPATTERN:
            group, _, _, sub = arg
            text = _emit(sub, rng, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op is sre_c.BRANCH:
            out.append(_emit(rng.choice(arg[1]), rng, groups))
        elif op is sre_c.GROUPREF:
            out.append(groups.get(arg, ""))
        elif op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
            continue  # anchors and lookarounds: the final re.search decides
        else:
            raise _Unsupported(str(op))
    return "".join(out)


def _emit_class(items: Any, rng: random.Random) -> str:
    if items and items[0][0] is sre_c.NEGATE:
        banned = _emit_pool(items[1:])
        allowed = [c for c in string.ascii_letters + string.digits if c not in banned]
        return rng.choice(allowed or ["~"])
    pool = _emit_pool(items)
    return rng.choice(pool) if pool else "a"


def _emit_pool(items: Any) -> str:
    pool = []
    for op, arg in items:
        if op is sre_c.LITERAL:
            pool.append(chr(arg))
        elif op is sre_c.RANGE:
            lo, hi = arg
            pool.extend(chr(c) for c in range(lo, min(hi, lo + 200) + 1))
        elif op is sre_c.CATEGORY:
            pool.extend(_CATEGORY_CHARS.get(arg, "a"))
    return "".join(pool)
