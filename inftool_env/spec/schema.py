"""Normalise the schema dialects of API specs into JSON Schema 2020-12.

One ``SchemaCompiler`` per tool: it resolves local ``$ref`` (inlining them, except where a ref recurs
inside its own expansion, which becomes ``{"$ref": "#/$defs/…"}`` so cycles terminate), merges
``allOf``, keeps ``oneOf``/``anyOf``/``not`` (but for a ``oneOf`` no value could meet, below), and
rewrites dialect quirks:

- OpenAPI 3.0: ``nullable``, boolean ``exclusiveMinimum``/``exclusiveMaximum``, ``example``;
- Swagger 2.0: ``type: file``, ``x-nullable``;
- BFCL function docs: ``dict``, ``float``, ``tuple``, ``any``…; Java/JavaScript type names, which BFCL
  passes to the model as strings;
- a ``oneOf`` of object shapes that each take any object (no required field, other fields allowed, as
  1Password's "a cursor, or a time range") becomes ``anyOf``: a value of one shape is valid under every
  shape, so "exactly one" would refuse every call its authors meant.

Every expansion, and every node of the values a schema carries (``default``, ``enum``, ``examples``),
counts against a node budget, so a spec that would inline exponentially (or a YAML alias bomb)
becomes a ``SpecError`` instead of a hang.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from inftool_env.errors import SpecError
from inftool_env.spec.expand import expanded_size

Dialect = Literal["openapi-2.0", "openapi-3.0", "openapi-3.1", "functions"]
Mode = Literal["input", "output"]

JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
BFCL_TYPES = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "int": "integer",
    "tuple": "array",
    "list": "array",
    "str": "string",
    "bool": "boolean",
}
# Keywords that carry no validation meaning for a tool's caller; dropped to keep prompts lean.
_DROP = {"xml", "externalDocs", "discriminator", "collectionFormat", "nullable", "x-nullable", "example"}
_SCHEMA_MAP_KEYS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LIST_KEYS = ("allOf", "oneOf", "anyOf", "prefixItems")
_SCHEMA_ONE_KEYS = ("not", "additionalProperties", "items", "contains", "propertyNames", "if", "then", "else")

DEFAULT_NODE_BUDGET = 100_000
MAX_DEPTH = 120


def decode_pointer(ref: str) -> list[str]:
    """``#/components/schemas/A~1B`` -> ``["components", "schemas", "A/B"]``."""
    fragment = ref[1:] if ref.startswith("#") else ref
    if not fragment:
        return []
    if not fragment.startswith("/"):
        raise ValueError(f"not a JSON pointer: {ref!r}")
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in fragment[1:].split("/")]


def encode_pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve_pointer(document: Any, ref: str, *, source: str, at: str) -> Any:
    """Follow a local ``$ref`` inside ``document``; a SpecError names the ref and where it was used."""
    if not isinstance(ref, str):
        raise SpecError(f"$ref must be a string, got {type(ref).__name__}", source=source, pointer=at)
    if not ref.startswith("#"):
        raise SpecError(f"external $ref {ref!r} is not supported (only '#/...')", source=source, pointer=at)
    try:
        parts = decode_pointer(ref)
    except ValueError as exc:
        raise SpecError(str(exc), source=source, pointer=at) from None
    node = document
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SpecError(f"$ref {ref!r} does not resolve", source=source, pointer=at)
    return node


def def_name(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", ref.lstrip("#/")) or "root"


class SchemaCompiler:
    """Compiles schema nodes of one document for one tool; collects ``$defs`` for recursive refs."""

    def __init__(
        self,
        document: Any,
        *,
        source: str,
        dialect: Dialect,
        language: str | None = None,
        node_budget: int = DEFAULT_NODE_BUDGET,
    ) -> None:
        self.document = document
        self.source = source
        self.dialect = dialect
        self.language = language
        self.budget: float = node_budget
        self.defs: dict[str, Any] = {}
        self._pending: dict[str, tuple[str, Mode]] = {}

    # -- public -------------------------------------------------------------------------------
    def compile(self, node: Any, pointer: str, mode: Mode = "input") -> Any:
        return self._compile(node, pointer, mode, stack=(), depth=0)

    def finish(self, root: dict[str, Any]) -> dict[str, Any]:
        """Compile the recursive ``$defs`` still pending and attach them to ``root``."""
        while self._pending:
            name, (ref, mode) = self._pending.popitem()
            target = resolve_pointer(self.document, ref, source=self.source, at=ref[1:])
            self.defs[name] = self._compile(target, ref[1:], mode, stack=(ref,), depth=0)
        if self.defs:
            root = {**root, "$defs": dict(sorted(self.defs.items()))}
        return root

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow ``$ref`` chains on a non-schema node (parameters, request bodies, responses)."""
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str):
                raise SpecError(f"$ref must be a string, got {type(ref).__name__}", source=self.source, pointer=pointer)
            if ref in seen:
                raise SpecError(f"$ref cycle through {ref!r}", source=self.source, pointer=pointer)
            seen.add(ref)
            node = resolve_pointer(self.document, ref, source=self.source, at=pointer)
            pointer = ref[1:]
        return node, pointer

    # -- internals ----------------------------------------------------------------------------
    def _spend(self, pointer: str, nodes: float = 1) -> None:
        self.budget -= nodes
        if self.budget < 0:
            raise SpecError(
                "schema expands past the node budget (deep $ref fan-out or alias bomb)",
                source=self.source,
                pointer=pointer,
            )

    def _compile(self, node: Any, pointer: str, mode: Mode, stack: tuple[str, ...], depth: int) -> Any:
        self._spend(pointer)
        if depth > MAX_DEPTH:
            raise SpecError(f"schema nested deeper than {MAX_DEPTH} levels", source=self.source, pointer=pointer)
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise SpecError(
                f"a schema must be an object, got {type(node).__name__}", source=self.source, pointer=pointer
            )
        if "$ref" in node:
            return self._compile_ref(node, pointer, mode, stack, depth)

        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise SpecError(f"non-string key {key!r}", source=self.source, pointer=pointer)
            if key in _DROP or key.startswith("x-"):
                continue
            at = f"{pointer}/{key}"
            if key in _SCHEMA_MAP_KEYS:
                if not isinstance(value, dict):
                    raise SpecError(f"'{key}' must be an object", source=self.source, pointer=at)
                target = "$defs" if key == "definitions" else key
                out[target] = {
                    str(k): self._compile(v, f"{at}/{encode_pointer([str(k)])[1:]}", mode, stack, depth + 1)
                    for k, v in value.items()
                }
            elif key in _SCHEMA_LIST_KEYS:
                if not isinstance(value, list) or not value:
                    raise SpecError(f"'{key}' must be a non-empty list", source=self.source, pointer=at)
                out[key] = [self._compile(v, f"{at}/{i}", mode, stack, depth + 1) for i, v in enumerate(value)]
            elif key in _SCHEMA_ONE_KEYS:
                if key == "items" and isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [
                        self._compile(v, f"{at}/{i}", mode, stack, depth + 1) for i, v in enumerate(value)
                    ]
                else:
                    out[key] = self._compile(value, at, mode, stack, depth + 1)
            else:
                if isinstance(value, dict | list):  # a default or enum is served (and walked) in full
                    self._spend(at, expanded_size(value, self.budget + 1))
                out[key] = value

        self._rewrite_dialect(node, out, pointer)
        self._check_keywords(out, pointer)
        if "properties" in out:
            self._drop_one_sided(node, out, mode)
        if "allOf" in out:
            out = merge_all_of(out)
        if "oneOf" in out and "anyOf" not in out and all(map(_takes_any_object, out["oneOf"])):
            out["anyOf"] = out.pop("oneOf")
        return out

    def _compile_ref(self, node: dict[str, Any], pointer: str, mode: Mode, stack: tuple[str, ...], depth: int) -> Any:
        ref = node["$ref"]
        if not isinstance(ref, str):
            raise SpecError(f"$ref must be a string, got {type(ref).__name__}", source=self.source, pointer=pointer)
        if ref in stack:  # recursion: refer to a shared definition instead of inlining forever
            name = def_name(ref)
            if name not in self.defs and name not in self._pending:
                self._pending[name] = (ref, mode)
            return {"$ref": f"#/$defs/{name}"}
        target = resolve_pointer(self.document, ref, source=self.source, at=pointer)
        compiled = self._compile(target, ref[1:], mode, (*stack, ref), depth + 1)
        siblings = {k: v for k, v in node.items() if k != "$ref" and not k.startswith("x-")}
        if siblings and isinstance(compiled, dict):
            # OpenAPI 3.1 allows siblings beside $ref; 3.0 tools often add a description there.
            compiled = {**compiled, **{k: v for k, v in siblings.items() if k in ("description", "title")}}
        return compiled

    def _rewrite_dialect(self, node: dict[str, Any], out: dict[str, Any], pointer: str) -> None:
        if "type" in out:
            out.pop("type")
            schema_type = self._normalise_type(node["type"], f"{pointer}/type", out)
            if schema_type is not None:
                out["type"] = schema_type
        if self.dialect in ("openapi-2.0", "openapi-3.0"):
            nullable = node.get("nullable") is True or node.get("x-nullable") is True
            if nullable and "type" in out:
                types = out["type"] if isinstance(out["type"], list) else [out["type"]]
                if "null" not in types:
                    out["type"] = [*types, "null"]
                if isinstance(out.get("enum"), list) and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                if isinstance(out.get(bound), bool):
                    if out.pop(bound) and isinstance(out.get(limit), int | float):
                        out[bound] = out.pop(limit)
        if "example" in node and "examples" not in out:
            self._spend(pointer, expanded_size(node["example"], self.budget + 1))
            out["examples"] = [node["example"]]
        elif "examples" in out and not isinstance(out["examples"], list):
            out["examples"] = [out["examples"]]  # 3.0 media-type style map mistakenly used in a schema
        pattern = out.get("pattern")
        if pattern is not None and not _python_regex_ok(pattern):
            # ECMA regex Python's `re` cannot compile (e.g. \p{Han}); keep it, out of the validator's way.
            out["x-ecma-pattern"] = out.pop("pattern")

    def _normalise_type(self, raw: Any, pointer: str, out: dict[str, Any]) -> Any:
        if isinstance(raw, list):
            types = [self._normalise_type(t, pointer, out) for t in raw]
            flat = [t for t in types if t is not None]
            return flat if len(flat) == len(types) else None  # any member "any" -> no constraint
        if not isinstance(raw, str):
            raise SpecError(f"'type' must be a string or list, got {raw!r}", source=self.source, pointer=pointer)
        if raw in JSON_TYPES:
            return raw
        if self.dialect == "openapi-2.0" and raw == "file":
            out.setdefault("format", "binary")
            return "string"
        if self.dialect == "functions":
            if raw in BFCL_TYPES:
                return BFCL_TYPES[raw]
            if raw == "any":
                return None
            if self.language in ("java", "javascript"):
                # BFCL hands Java/JavaScript arguments to the model as source strings of that type.
                out["x-language-type"] = raw
                return "string"
        raise SpecError(f"unknown type {raw!r}", source=self.source, pointer=pointer)

    def _check_keywords(self, out: dict[str, Any], pointer: str) -> None:
        required = out.get("required")
        if required is not None and (not isinstance(required, list) or not all(isinstance(r, str) for r in required)):
            raise SpecError("'required' must be a list of strings", source=self.source, pointer=pointer)
        if "enum" in out and not isinstance(out["enum"], list):
            raise SpecError("'enum' must be a list", source=self.source, pointer=pointer)

    @staticmethod
    def _drop_one_sided(node: dict[str, Any], out: dict[str, Any], mode: Mode) -> None:
        """readOnly properties are not sent by callers; writeOnly ones never come back."""
        hidden = "readOnly" if mode == "input" else "writeOnly"
        drop = [k for k, v in out["properties"].items() if isinstance(v, dict) and v.get(hidden) is True]
        for key in drop:
            del out["properties"][key]
        if drop and isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in drop]


def checked(schema: dict[str, Any], *, source: str, pointer: str) -> dict[str, Any]:
    """Refuse a compiled schema that is not valid JSON Schema 2020-12 (it would fail at call time)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise SpecError(
            f"invalid JSON Schema at '{where}': {exc.message[:200]}", source=source, pointer=pointer
        ) from None
    return schema


def _takes_any_object(branch: Any) -> bool:
    """An object shape that every object meets where it does not define the field: no required field, no
    bound on the field count, other fields allowed, and nothing but properties and annotations."""
    if not isinstance(branch, dict) or not isinstance(branch.get("properties"), dict):
        return False
    shape = {"type", "properties", "description", "title", "examples", "default", "additionalProperties"}
    return (
        branch.keys() <= shape
        and branch.get("type", "object") == "object"
        and branch.get("additionalProperties", True) is not False
        and not branch.get("required")
    )


def merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """Merge ``allOf`` parts into their parent where they do not conflict; keep the rest as ``allOf``."""
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    leftovers = []
    for part in schema["allOf"]:
        if not isinstance(part, dict) or "$ref" in part:
            leftovers.append(part)
            continue
        part = merge_all_of(part) if "allOf" in part else part
        rest: dict[str, Any] = {}
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                props = merged.setdefault("properties", {})
                for name, sub in value.items():
                    props[name] = sub if name not in props or props[name] == sub else {"allOf": [props[name], sub]}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            elif key in ("description", "title", "examples") and key in merged:
                continue  # annotations: the outer one wins
            elif key not in merged or merged[key] == value:
                merged[key] = value
            else:
                rest[key] = value
        if rest:
            leftovers.append(rest)
    if "properties" in merged and "type" not in merged:
        merged["type"] = "object"
    if leftovers:
        merged["allOf"] = leftovers
    return merged


def _python_regex_ok(pattern: Any) -> bool:
    if not isinstance(pattern, str):
        return False
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
