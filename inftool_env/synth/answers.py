"""Ground truth in BFCL's possible-answer form, for the checker we already have (``rewards/bfcl_ast``).

A tool's JSON Schema becomes a BFCL function doc (``number`` -> ``float``, ``object`` -> ``dict``…);
a call becomes its possible answers: each given argument's value (dicts key by key, as BFCL writes
them), and each optional parameter left out listed with ``""`` (may be omitted) and its default.
"""

from __future__ import annotations

from typing import Any

from inftool_env.spec.ir import ToolSpec
from inftool_env.tasks import BfclReference, ToolCall

_BFCL_TYPES = {"string": "string", "integer": "integer", "number": "float", "boolean": "boolean",
               "array": "array", "object": "dict"}  # fmt: skip


def bfcl_type(schema: Any, value: Any = None) -> str:
    """The BFCL type of a schema (or, for an untyped one, of the value it holds)."""
    if isinstance(schema, dict):
        declared = schema.get("type")
        types = declared if isinstance(declared, list) else [declared] if declared else []
        for t in types:
            if t in _BFCL_TYPES:
                return _BFCL_TYPES[t]
        if "properties" in schema:
            return "dict"
        if "items" in schema:
            return "array"
        if "enum" in schema and schema["enum"]:
            value = schema["enum"][0] if value is None else value
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
                       (dict, "dict")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return "string"


def bfcl_doc(tool: ToolSpec, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tool as a BFCL function doc; ``example`` (a call's arguments) types what the schema leaves open."""
    example = example or {}
    root = tool.input_schema
    properties = {}
    for name, schema in root.get("properties", {}).items():
        schema = _resolve(schema, root)
        if not isinstance(schema, dict):  # JSON Schema allows `true` (anything) and `false` for a property
            schema = {}
        value = example.get(name)
        entry: dict[str, Any] = {"type": bfcl_type(schema, value), "description": str(schema.get("description", ""))}
        if entry["type"] == "array":
            items = _resolve(schema.get("items", {}), root)
            first = value[0] if isinstance(value, list) and value else None
            entry["items"] = {"type": bfcl_type(items, first)}
        if isinstance(schema, dict) and "default" in schema:
            entry["default"] = schema["default"]
        properties[name] = entry
    return {
        "name": tool.name,
        "description": tool.description,
        "parameters": {"type": "dict", "properties": properties, "required": list(root.get("required", []))},
    }


def possible_answer(tool: ToolSpec, call: ToolCall) -> dict[str, dict[str, list[Any]]]:
    root = tool.input_schema
    required = set(root.get("required", []))
    params: dict[str, list[Any]] = {}
    for name, value in call.arguments.items():
        options = [_option(value)]
        schema = _resolve(root.get("properties", {}).get(name, {}), root)
        if isinstance(value, float) and value.is_integer() and bfcl_type(schema) == "integer":
            options.append(int(value))
        if name not in required and isinstance(schema, dict) and schema.get("default") == value:
            options.append("")  # the default, given or not
        params[name] = options
    for name, schema in root.get("properties", {}).items():
        schema = _resolve(schema, root)
        if name not in params and name not in required and isinstance(schema, dict) and "default" in schema:
            params[name] = ["", schema["default"]]
    return {tool.name: params}


def reference(category: str, tools: list[ToolSpec], calls: list[ToolCall]) -> BfclReference:
    """What the AST checker needs: the offered docs (typed by the calls) and one possible answer per call."""
    by_name = {t.name: t for t in tools}
    examples: dict[str, dict[str, Any]] = {}
    for call in calls:
        examples.setdefault(call.name, {}).update(call.arguments)
    docs = [bfcl_doc(t, examples.get(t.name)) for t in tools]
    return BfclReference(category=category, docs=docs, possible=[possible_answer(by_name[c.name], c) for c in calls])


def _option(value: Any) -> Any:
    """BFCL writes a dict's possible value key by key (each a list of options), lists of dicts likewise."""
    if isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [{k: [x] for k, x in v.items()} for v in value]
    return value


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    if isinstance(schema, dict) and "$ref" in schema:
        target = root.get("$defs", {}).get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema
