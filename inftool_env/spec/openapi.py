"""OpenAPI 2.0 (Swagger), 3.0.x and 3.1 -> ToolSuite: one tool per operation.

Every parameter location (path, query, header, cookie, body, formData) lands in one flat input
schema. Argument names are sanitised and de-duplicated; each keeps a ``ParamBinding`` back to its
location and original name. An object request body is flattened into top-level arguments when its
property names collide with nothing; any other body is one ``body`` argument.

A spec mistake that leaves a usable tool (a duplicate operationId, a path parameter the path lacks) is
worked around and reported in ``ToolSuite.warnings``; ``strict`` raises it like any other.
"""

from __future__ import annotations

import re
from typing import Any

from inftool_env.errors import SpecError
from inftool_env.spec.ir import (
    HttpOperation,
    ParamBinding,
    SkippedOperation,
    Source,
    SpecWarning,
    ToolAnnotations,
    ToolSpec,
    ToolSuite,
)
from inftool_env.spec.naming import UniqueNames, name_from_http, sanitize_arg_name, sanitize_tool_name
from inftool_env.spec.schema import Dialect, SchemaCompiler, checked, encode_pointer

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM_LOCATIONS = ("path", "query", "header", "cookie", "body", "formData")
# Swagger 2.0 puts schema keywords directly on non-body parameters.
_V2_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "multipleOf", "x-nullable",
)  # fmt: skip

ANNOTATIONS = {
    "get": ToolAnnotations(read_only=True, destructive=False, idempotent=True),
    "head": ToolAnnotations(read_only=True, destructive=False, idempotent=True),
    "options": ToolAnnotations(read_only=True, destructive=False, idempotent=True),
    "trace": ToolAnnotations(read_only=True, destructive=False, idempotent=True),
    "put": ToolAnnotations(read_only=False, destructive=True, idempotent=True),
    "patch": ToolAnnotations(read_only=False, destructive=True, idempotent=False),
    "delete": ToolAnnotations(read_only=False, destructive=True, idempotent=True),
    "post": ToolAnnotations(read_only=False, destructive=False, idempotent=False),
}
_MEDIA_PREFERENCE = ("application/json", "+json", "application/x-www-form-urlencoded", "multipart/form-data")
# OpenAPI 3 says header parameters of these names SHALL be ignored: media types and security say them.
# Swagger 2.0 has no such rule (Spotify's Accept, Yelp's Authorization are its parameters).
_IGNORED_HEADERS = ("accept", "content-type", "authorization")
_TEMPLATE = re.compile(r"\{([^{}]*)\}")
# A worked-around mistake: the error ``strict`` raises, and what was done instead.
_Note = tuple[SpecError, str]


def openapi_dialect(document: dict[str, Any], source: str) -> Dialect:
    if "swagger" in document:
        if str(document["swagger"]).startswith("2."):
            return "openapi-2.0"
        raise SpecError(f"unsupported swagger version {document['swagger']!r}", source=source, pointer="/swagger")
    version = str(document.get("openapi", ""))
    if version.startswith("3.0"):
        return "openapi-3.0"
    if version.startswith("3.1"):
        return "openapi-3.1"
    raise SpecError(f"unsupported openapi version {version!r}", source=source, pointer="/openapi")


def load_openapi(document: dict[str, Any], *, source: str, strict: bool = False) -> ToolSuite:
    dialect = openapi_dialect(document, source)
    raw_info = document.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    paths = document.get("paths", {})
    if not isinstance(paths, dict):
        raise SpecError("'paths' must be an object", source=source, pointer="/paths")

    names = UniqueNames()
    tools: list[ToolSpec] = []
    skipped: list[SkippedOperation] = []
    warnings: list[SpecWarning] = []
    first_use: dict[str, str] = {}  # operationId -> the operation that compiled under it first
    for path, item in paths.items():
        item_pointer = "/paths" + encode_pointer([str(path)])
        operations = _operations(document, path, item, item_pointer, source)
        if isinstance(operations, SpecError):
            _skip_or_raise(operations, str(path), skipped, strict)
            continue
        for method, operation, op_pointer, shared in operations:
            label = f"{method.upper()} {path}"
            notes: list[_Note] = []
            try:
                tool = _compile_operation(
                    document, dialect, source, str(path), method, operation, op_pointer, shared, names, notes
                )
            except SpecError as err:
                _skip_or_raise(err, label, skipped, strict)
            except RecursionError:
                _skip_or_raise(
                    SpecError("nested too deeply", source=source, pointer=op_pointer), label, skipped, strict
                )
            else:
                notes += _reused_id(operation, tool, label, op_pointer, first_use, source)
                _warn_or_raise(notes, label, warnings, strict)
                tools.append(tool)
    return ToolSuite(
        name=sanitize_tool_name(str(info.get("title") or source)),
        version=str(info.get("version", "0")),
        description=str(info.get("description") or ""),
        format=dialect,
        source=source,
        tools=tools,
        skipped=skipped,
        warnings=warnings,
    )


def _skip_or_raise(err: SpecError, label: str, skipped: list[SkippedOperation], strict: bool) -> None:
    if strict:
        raise err
    skipped.append(SkippedOperation(name=label, pointer=err.pointer, reason=err.message))


def _warn_or_raise(notes: list[_Note], label: str, warnings: list[SpecWarning], strict: bool) -> None:
    for err, instead in notes:
        if strict:
            raise err
        warnings.append(SpecWarning(name=label, pointer=err.pointer, message=f"{err.message}; {instead}"))


def _reused_id(
    operation: dict[str, Any], tool: ToolSpec, label: str, pointer: str, first_use: dict[str, str], source: str
) -> list[_Note]:
    """OpenAPI wants operationIds unique; tool names must be, so a second use was renamed (``fetch_2``), and a
    task or a user naming the operationId gets the first one."""
    op_id = _operation_id(operation)
    if op_id is None:
        return []
    if op_id not in first_use:
        first_use[op_id] = label
        return []
    why = f"operationId {op_id!r} is used twice (first by {first_use[op_id]})"
    return [(SpecError(why, source=source, pointer=f"{pointer}/operationId"), f"this tool is named {tool.name!r}")]


def _operations(
    document: dict[str, Any], path: Any, item: Any, pointer: str, source: str
) -> list[tuple[str, Any, str, tuple[list[Any], str]]] | SpecError:
    compiler = SchemaCompiler(document, source=source, dialect="openapi-3.0")
    try:
        item, pointer = compiler.resolve(item, pointer)
    except SpecError as err:
        return err
    if not isinstance(item, dict):
        return SpecError("a path item must be an object", source=source, pointer=pointer)
    shared = item.get("parameters", [])
    if not isinstance(shared, list):
        return SpecError("'parameters' must be a list", source=source, pointer=f"{pointer}/parameters")
    return [
        (method, item[method], f"{pointer}/{method}", (shared, f"{pointer}/parameters"))
        for method in HTTP_METHODS
        if method in item
    ]


def _compile_operation(
    document: dict[str, Any],
    dialect: Dialect,
    source: str,
    path: str,
    method: str,
    operation: Any,
    pointer: str,
    shared_params: tuple[list[Any], str],
    names: UniqueNames,
    notes: list[_Note],
) -> ToolSpec:
    if not isinstance(operation, dict):
        raise SpecError("an operation must be an object", source=source, pointer=pointer)
    compiler = SchemaCompiler(document, source=source, dialect=dialect)
    raw_name = _operation_id(operation)

    builder = _InputBuilder(compiler, source)
    params = _merged_parameters(compiler, shared_params, operation.get("parameters", []), pointer, source)
    if dialect != "openapi-2.0":
        params = [(p, at) for p, at in params if p["in"] != "header" or p["name"].lower() not in _IGNORED_HEADERS]
    params = _path_params(path, params, pointer, source, notes)
    form_params = []
    for param, param_pointer in params:
        location = param.get("in")
        if location == "body":
            builder.add_body(param.get("schema", {}), f"{param_pointer}/schema", bool(param.get("required")), None)
        elif location == "formData":
            form_params.append((param, param_pointer))
        else:
            builder.add_param(param, param_pointer, dialect)
    if form_params:
        builder.add_form(form_params, dialect)
    if "requestBody" in operation:
        builder.add_request_body(operation["requestBody"], f"{pointer}/requestBody")

    input_schema = checked(compiler.finish(builder.schema()), source=source, pointer=pointer)
    # A compiler of its own, so the output's recursive $defs do not leak into the input schema.
    out_compiler = SchemaCompiler(document, source=source, dialect=dialect)
    output_schema, status = _output_schema(out_compiler, dialect, operation, pointer, source)
    if output_schema is not None:
        output_schema = checked(_finish_output(out_compiler, output_schema), source=source, pointer=pointer)

    summary = str(operation.get("summary") or "").strip()
    details = str(operation.get("description") or "").strip()
    description = summary if not details or details == summary else f"{summary}\n\n{details}".strip()
    return ToolSpec(
        # Claimed last: an operation skipped on the way holds no name.
        name=names.claim(sanitize_tool_name(raw_name) if raw_name else name_from_http(method, path)),
        original_name=raw_name or f"{method.upper()} {path}",
        description=description or f"{method.upper()} {path}",
        input_schema=input_schema,
        output_schema=output_schema,
        annotations=ANNOTATIONS[method],
        bindings=builder.bindings,
        http=HttpOperation(method=method.upper(), path=path, success_status=status, body_media_type=builder.media_type),
        security=_security(operation.get("security", document.get("security"))),
        deprecated=operation.get("deprecated") is True,
        source=Source(file=source, pointer=pointer),
    )


def _operation_id(operation: dict[str, Any]) -> str | None:
    op_id = operation.get("operationId")
    return str(op_id) if isinstance(op_id, str | int) and str(op_id).strip() else None


def _path_params(
    path: str, params: list[tuple[dict[str, Any], str]], pointer: str, source: str, notes: list[_Note]
) -> list[tuple[dict[str, Any], str]]:
    """Every ``{name}`` in the path needs an ``in: path`` parameter of that name: without one the tool cannot
    say which item it means, and no call of it can succeed. One the path lacks has nowhere to go: dropped."""
    template = _TEMPLATE.findall(path)
    declared = [p["name"] for p, _ in params if p["in"] == "path"]
    for name in template:
        if name not in declared:
            near = [d for d in declared if d.lower() == name.lower()]
            if near:
                why = f"{near[0]!r} is, and names are case-sensitive"
            else:
                why = f"no parameter with in: path and name: {name}, at the operation or its path item"
            raise SpecError(f"path parameter {{{name}}} is not declared: {why}", source=source, pointer=pointer)
    kept = []
    for param, at in params:
        if param["in"] == "path" and param["name"] not in template:
            err = SpecError(f"path parameter {param['name']!r} is not in the path {path}", source=source, pointer=at)
            notes.append((err, "it is left out of the tool"))
        else:
            kept.append((param, at))
    return kept


def _merged_parameters(
    compiler: SchemaCompiler, shared: tuple[list[Any], str], own: Any, pointer: str, source: str
) -> list[tuple[dict[str, Any], str]]:
    """Path-level parameters overridden by operation-level ones with the same (name, in)."""
    if not isinstance(own, list):
        raise SpecError("'parameters' must be a list", source=source, pointer=f"{pointer}/parameters")
    merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for items, base in (shared, (own, f"{pointer}/parameters")):
        for i, raw in enumerate(items):
            param, at = compiler.resolve(raw, f"{base}/{i}")
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                raise SpecError("a parameter needs a string 'name'", source=source, pointer=at)
            if param.get("in") not in _PARAM_LOCATIONS:
                raise SpecError(f"unknown parameter location {param.get('in')!r}", source=source, pointer=at)
            merged[(param["name"], param["in"])] = (param, at)
    return list(merged.values())


class _InputBuilder:
    """Accumulates the flat input schema and its bindings for one operation."""

    def __init__(self, compiler: SchemaCompiler, source: str) -> None:
        self.compiler = compiler
        self.source = source
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.bindings: dict[str, ParamBinding] = {}
        self.media_type: str | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": self.properties}
        if self.required:
            schema["required"] = self.required
        schema["additionalProperties"] = False
        return schema

    def _arg_name(self, raw: str, location: str) -> str:
        name = sanitize_arg_name(raw)
        if name in self.properties:
            name = f"{name}_{location.lower()}"
        base, n = name, 1
        while name in self.properties:
            n += 1
            name = f"{base}_{n}"
        return name

    def _add(self, raw: str, location: Any, schema: Any, required: bool) -> None:
        name = self._arg_name(raw, location)
        self.properties[name] = schema
        self.bindings[name] = ParamBinding(location=location, name=raw)
        if required:
            self.required.append(name)

    def add_param(self, param: dict[str, Any], pointer: str, dialect: Dialect) -> None:
        if "schema" in param:
            schema = self.compiler.compile(param["schema"], f"{pointer}/schema")
        elif "content" in param and isinstance(param["content"], dict) and param["content"]:
            media, media_schema = next(iter(param["content"].items()))
            schema = self.compiler.compile(
                (media_schema or {}).get("schema", {}), f"{pointer}/content/{encode_pointer([media])[1:]}/schema"
            )
        elif dialect == "openapi-2.0":
            schema = self.compiler.compile({k: param[k] for k in _V2_SCHEMA_KEYS if k in param}, pointer)
        else:
            schema = {}
        schema = _with_description(schema, param.get("description"))
        required = param.get("required") is True or param["in"] == "path"
        self._add(param["name"], param["in"], schema, required)

    def add_form(self, params: list[tuple[dict[str, Any], str]], dialect: Dialect) -> None:
        self.media_type = "application/x-www-form-urlencoded"
        for param, pointer in params:
            if param.get("type") == "file":
                self.media_type = "multipart/form-data"
            self.add_param(param, pointer, dialect)

    def add_request_body(self, raw: Any, pointer: str) -> None:
        body, pointer = self.compiler.resolve(raw, pointer)
        if not isinstance(body, dict):
            raise SpecError("a requestBody must be an object", source=self.source, pointer=pointer)
        content = body.get("content", {})
        if not isinstance(content, dict):
            raise SpecError("'content' must be an object", source=self.source, pointer=f"{pointer}/content")
        if not content:
            return
        media = _pick_media_type(content)
        media_obj = content[media] if isinstance(content[media], dict) else {}
        at = f"{pointer}/content/{encode_pointer([media])[1:]}/schema"
        self.add_body(media_obj.get("schema", {}), at, body.get("required") is True, media)

    def add_body(self, raw_schema: Any, pointer: str, required: bool, media: str | None) -> None:
        self.media_type = media or "application/json"
        schema = self.compiler.compile(raw_schema, pointer)
        props = schema.get("properties") if isinstance(schema, dict) else None
        flattenable = (
            isinstance(props, dict)
            and props
            and not any(k in schema for k in ("oneOf", "anyOf", "allOf", "not", "$ref", "patternProperties"))
            and schema.get("additionalProperties") in (None, False)
            and not any(sanitize_arg_name(k) in self.properties for k in props)
            and len({sanitize_arg_name(k) for k in props}) == len(props)
        )
        if flattenable and isinstance(props, dict):
            body_required = set(schema.get("required", [])) if required else set()
            for key, sub in props.items():
                self._add(key, "body", sub, key in body_required)
        else:
            self._add("body", "body", schema, required)
            self.bindings[next(reversed(self.bindings))] = ParamBinding(location="body", name="")


def _pick_media_type(content: dict[str, Any]) -> str:
    for wanted in _MEDIA_PREFERENCE:
        for media in content:
            if media == wanted or (wanted.startswith("+") and str(media).endswith(wanted)):
                return str(media)
    return str(next(iter(content)))


def _output_schema(
    compiler: SchemaCompiler, dialect: Dialect, operation: dict[str, Any], pointer: str, source: str
) -> tuple[Any, str | None]:
    responses = operation.get("responses", {})
    if not isinstance(responses, dict):
        raise SpecError("'responses' must be an object", source=source, pointer=f"{pointer}/responses")
    codes = [str(c) for c in responses]
    # The first 2xx (or "2XX" range) response, else "default".
    status = next((c for c in codes if c.startswith("2")), None) or ("default" if "default" in codes else None)
    if status is None:
        return None, None
    key = next(k for k in responses if str(k) == status)
    at = f"{pointer}/responses/{encode_pointer([status])[1:]}"
    response, at = compiler.resolve(responses[key], at)
    if not isinstance(response, dict):
        raise SpecError("a response must be an object", source=source, pointer=at)
    if dialect == "openapi-2.0":
        raw = response.get("schema")
        produces = operation.get("produces")
        if raw is None or (isinstance(produces, list) and produces and not any("json" in str(p) for p in produces)):
            return None, status
        return compiler.compile(raw, f"{at}/schema", mode="output"), status
    content = response.get("content")
    if not isinstance(content, dict) or not content:
        return None, status
    json_media = [m for m in content if m == "application/json" or str(m).endswith("+json")]
    if not json_media or not isinstance(content[json_media[0]], dict) or "schema" not in content[json_media[0]]:
        return None, status
    media = json_media[0]
    schema_at = f"{at}/content/{encode_pointer([media])[1:]}/schema"
    return compiler.compile(content[media]["schema"], schema_at, mode="output"), status


def _finish_output(compiler: SchemaCompiler, schema: Any) -> dict[str, Any]:
    """MCP output schemas must be objects at the root: wrap anything else as ``{"result": …}``."""
    if isinstance(schema, dict) and schema.get("type") == "object" and "$ref" not in schema:
        root = schema
    else:
        root = {"type": "object", "properties": {"result": schema}, "required": ["result"], "x-wrapped": True}
    return compiler.finish(root)


def _with_description(schema: Any, description: Any) -> Any:
    if isinstance(description, str) and description.strip() and isinstance(schema, dict):
        return {**schema, "description": description.strip()} if "description" not in schema else schema
    return schema


def _security(requirements: Any) -> list[str]:
    if not isinstance(requirements, list):
        return []
    out = ["+".join(sorted(str(k) for k in req)) or "none" for req in requirements if isinstance(req, dict)]
    return list(dict.fromkeys(out))
