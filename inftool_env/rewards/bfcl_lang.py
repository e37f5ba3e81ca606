"""Java and JavaScript arguments for BFCL's simple_java / simple_javascript categories.

Models answer those categories with every argument as a source-code string (``"5L"``,
``"new ArrayList<>(Arrays.asList(\\"a\\"))"``, ``"[1, 2]"``). Before BFCL compares them with its
possible answers it turns each string into a Python value by the parameter's declared type, with
lenient, regex-based rules: text that does not look like the type stays a string (and then fails
the type check). ``to_python`` follows those rules, quirks included — e.g. a ``String`` element of
a Java ``Array`` keeps its quotes while one of an ``ArrayList`` loses them, and a JS object's
first ``}`` ends it — because a checker that is "more right" than the benchmark disagrees with it.

``to_source`` is the inverse used to render a ground truth as a model would write it (the oracle).
"""

from __future__ import annotations

import json
import re
from typing import Any

JAVA_TYPES: dict[str, type] = {
    "byte": int, "short": int, "integer": int, "long": int, "float": float, "double": float,
    "boolean": bool, "char": str, "String": str, "any": str, "Array": list, "ArrayList": list,
    "Set": set, "HashMap": dict, "Hashtable": dict, "Queue": list, "Stack": list,
}  # fmt: skip
JS_TYPES: dict[str, type] = {
    "String": str, "integer": int, "float": float, "Bigint": int, "Boolean": bool,
    "dict": dict, "array": list, "any": str,
}  # fmt: skip
COLLECTIONS = ("Array", "ArrayList", "array")  # types whose item type is converted too
UNSUPPORTED = ("Set", "Hashtable", "Queue", "Stack")  # declared by BFCL, never converted by it

_INT = re.compile(r"-?\d+")
_JAVA_FLOAT = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]")
_JAVA_DOUBLE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_JAVA_LONG = re.compile(r"-?\d+[lL]")
_JS_FLOAT = re.compile(r"-?\d+(\.\d+)?")
_JS_BIGINT = re.compile(r"-?\d+n")


class UnsupportedType(ValueError):
    """A declared type the benchmark itself cannot convert (its checker raises on it)."""


def to_python(language: str, value: str, type_name: str, item_type: str | None = None) -> Any:
    if language == "java":
        return _java(value, type_name, item_type)
    if language == "javascript":
        return _js(value, type_name, item_type)
    raise ValueError(f"no source conversion for language {language!r}")


# -- Java ------------------------------------------------------------------------------------------
def _java(value: str, type_name: str, item_type: str | None = None) -> Any:
    if type_name in ("byte", "short", "integer"):
        return int(value) if _INT.fullmatch(value) else value
    if type_name == "float":
        return float(value[:-1]) if _JAVA_FLOAT.fullmatch(value) else value
    if type_name == "double":
        return float(value) if _JAVA_DOUBLE.fullmatch(value) else value
    if type_name == "long":
        return int(value[:-1]) if _JAVA_LONG.fullmatch(value) else value
    if type_name == "boolean":
        return value == "true" if value in ("true", "false") else value
    if type_name in ("char", "String", "any"):
        return value  # BFCL's char pattern can never match, so a char stays as written too
    if type_name == "ArrayList":
        return _java_arraylist(value, item_type)
    if type_name == "Array":
        return _java_array(value, item_type)
    if type_name == "HashMap":
        return _java_hashmap(value)
    raise UnsupportedType(f"Java type {type_name!r} is not converted by BFCL")


def _java_item(text: str, item_type: str | None, *, unquote_strings: bool) -> Any:
    if unquote_strings and item_type in ("char", "String"):
        return text[1:-1]
    return _java(text, item_type) if item_type else _java_literal(text)


def _java_arraylist(text: str, item_type: str | None) -> Any:
    if m := re.search(r"new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)", text):
        return [_java_item(e.strip(), item_type, unquote_strings=True) for e in m.group(1).split(",")]
    if m := re.search(r"new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}", text, re.DOTALL):
        adds = re.findall(r"add\((.+?)\)", m.group(1))
        return [_java_item(a.strip(), item_type, unquote_strings=True) for a in adds]
    if re.search(r"new\s+ArrayList<\w*>\(\)", text):
        return []
    return text


def _java_array(text: str, item_type: str | None) -> Any:
    m = re.search(r"new\s+\w+\[\]\s*\{(.*?)\}", text)
    if not m:
        return text
    return [_java_item(e.strip(), item_type, unquote_strings=False) for e in m.group(1).split(",") if e.strip()]


def _java_hashmap(text: str) -> Any:
    m = re.search(r"new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}", text, re.DOTALL)
    if m:
        puts = re.findall(r"put\(\"(.*?)\",\s*(.*?)\)", m.group(1))
        return {key: _java_literal(v.strip()) for key, v in puts}
    if re.search(r"new\s+HashMap<.*?>\s*\(\)", text):
        return {}
    return text


def _java_literal(text: str) -> Any:
    """A value whose type is not declared (HashMap values, untyped items)."""
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if _JAVA_LONG.fullmatch(text):
        return int(text[:-1])
    if _JAVA_FLOAT.fullmatch(text):
        return float(text[:-1])
    return _number_or_text(text)


# -- JavaScript ------------------------------------------------------------------------------------
def _js(value: str, type_name: str, item_type: str | None = None) -> Any:
    if type_name == "String":
        return value[1:-1] if _quoted(value) else value
    if type_name == "integer":
        return int(value) if _INT.fullmatch(value) else value
    if type_name == "float":
        return float(value) if _JS_FLOAT.fullmatch(value) else value
    if type_name == "Bigint":
        return int(value[:-1]) if _JS_BIGINT.fullmatch(value) else value
    if type_name == "Boolean":
        return value == "true" if value in ("true", "false") else value
    if type_name == "any":
        return value
    if type_name == "array":
        return _js_array(value.strip(), item_type)
    if type_name == "dict":
        return _js_object(value.strip())
    raise UnsupportedType(f"JavaScript type {type_name!r} is not converted by BFCL")


_JS_2D = re.compile(r"\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]|\bnew\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\)")
_JS_1D = re.compile(r"\[(.*?)\]|\bnew\s+Array\((.*?)\)")


def _js_array(code: str, item_type: str | None) -> Any:
    if m := _JS_2D.match(code):
        rows = []
        for i, row in enumerate(re.findall(r"\[(.*?)\]", m.group(0))):
            row = row.strip()
            if i == 0 and row.startswith("["):
                row = row[1:]
            rows.append([_js_literal(e) for e in row.split(",")])
        return rows
    m = _JS_1D.match(code)
    if not m:
        return code
    inner = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
    items = [e.strip() for e in inner.split(",")] if inner else []
    if not item_type:
        return [_js_literal(e) for e in items]
    try:  # an item type BFCL cannot convert makes it keep the whole text
        return [_js(e, item_type) for e in items]
    except UnsupportedType:
        return code


def _js_object(code: str) -> Any:
    if code == "{}":
        return {}
    m = re.match(r"\{(.*?)\}", code)
    if not m:
        return code
    out: dict[str, Any] = {}
    for key, value in re.findall(r"([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)", m.group(1)):
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            out[key.strip().strip("'\"")] = _js_array(value, None)
        elif value.startswith("{") and value.endswith("}"):
            out[key.strip().strip("'\"")] = _js_object(value)
        else:
            out[key.strip().strip("'\"")] = _js_literal(value.strip("'\""))
    return out


def _js_literal(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if _quoted(text):
        return text[1:-1]
    return _number_or_text(text)


def _quoted(text: str) -> bool:
    return bool(text) and text[0] == text[-1] and text[0] in "'\""


def _number_or_text(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


# -- rendering a ground-truth value as source ------------------------------------------------------
def to_source(language: str, value: Any, type_name: str, item_type: str | None = None) -> str:
    """How a model would write ``value`` for a parameter of this type (round-trips via to_python
    wherever BFCL's rules allow)."""
    if language == "java":
        return _java_source(value, type_name, item_type)
    return _js_source(value, type_name, item_type)


def _java_source(value: Any, type_name: str, item_type: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if type_name == "long" and isinstance(value, int):
        return f"{value}L"
    if type_name == "float" and isinstance(value, int | float):
        return f"{float(value)}f"
    if type_name == "ArrayList" and isinstance(value, list):
        items = ", ".join(_java_item_source(v, item_type, quote=True) for v in value)
        return f"new ArrayList<>(Arrays.asList({items}))" if value else "new ArrayList<>()"
    if type_name == "Array" and isinstance(value, list):
        items = ", ".join(_java_item_source(v, item_type, quote=False) for v in value)
        return f"new {_JAVA_ARRAY_OF.get(item_type or '', 'Object')}[]{{{items}}}"
    if type_name == "HashMap" and isinstance(value, dict):
        puts = " ".join(f'put("{k}", {_java_item_source(v, None, quote=True)});' for k, v in value.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    return str(value)


_JAVA_ARRAY_OF = {"String": "String", "integer": "int", "long": "long", "char": "char", "double": "double"}


def _java_item_source(value: Any, item_type: str | None, *, quote: bool) -> str:
    if isinstance(value, str):
        if item_type == "char" and quote:
            return f"'{value}'"
        return f'"{value}"' if quote and item_type in (None, "String") else value
    return _java_source(value, item_type or "any", None)


def _js_source(value: Any, type_name: str, item_type: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if type_name == "Bigint" and isinstance(value, int):
        return f"{value}n"
    if type_name == "array" and isinstance(value, list):
        return "[" + ", ".join(_js_item_source(v) for v in value) + "]"
    if type_name == "dict" and isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_js_item_source(v)}" for k, v in value.items()) + "}"
    return str(value)


def _js_item_source(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_js_item_source(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_js_item_source(v)}" for k, v in value.items()) + "}"
    return _js_source(value, "any", None)
