"""OpenAI function/tool JSON and BFCL function docs -> ToolSuite.

Accepted shapes: one function, a list of them, ``{"type": "function", "function": …}`` wrappers,
``{"tools": [...]}``, and JSONL (BFCL's ``multi_turn_func_doc`` files). BFCL's dotted names
(``math.factorial``) are sanitised (``math_factorial``) with the original kept on the ToolSpec.
"""

from __future__ import annotations

from typing import Any

from inftool_env.errors import SpecError
from inftool_env.spec.ir import ParamBinding, SkippedOperation, Source, ToolSpec, ToolSuite
from inftool_env.spec.naming import UniqueNames, sanitize_tool_name
from inftool_env.spec.schema import SchemaCompiler, checked


def looks_like_functions(document: Any) -> bool:
    items = document.get("tools") if isinstance(document, dict) and "tools" in document else document
    items = items if isinstance(items, list) else [items]
    # One recognisable function makes it a function list; the other items are skipped with reasons.
    return any(isinstance(i, dict) and ("name" in i or i.get("type") == "function" or "function" in i) for i in items)


def load_functions(
    document: Any, *, source: str, name: str | None = None, language: str | None = None, strict: bool = False
) -> ToolSuite:
    if isinstance(document, dict) and isinstance(document.get("tools"), list):
        items, base = document["tools"], "/tools"
    else:
        items, base = (document if isinstance(document, list) else [document]), ""
    names = UniqueNames()
    tools: list[ToolSpec] = []
    skipped: list[SkippedOperation] = []
    for i, item in enumerate(items):
        pointer = f"{base}/{i}" if isinstance(document, list) or base else ""
        try:
            tools.append(_compile_function(item, pointer, source, language, names))
        except SpecError as err:
            if strict:
                raise
            label = str(item.get("name", f"#{i}")) if isinstance(item, dict) else f"#{i}"
            skipped.append(SkippedOperation(name=label, pointer=err.pointer, reason=err.message))
        except RecursionError:
            if strict:
                raise SpecError("nested too deeply", source=source, pointer=pointer) from None
            skipped.append(SkippedOperation(name=f"#{i}", pointer=pointer, reason="nested too deeply"))
    return ToolSuite(
        name=sanitize_tool_name(name or source.rsplit("/", 1)[-1].split(".")[0]),
        format="functions",
        source=source,
        tools=tools,
        skipped=skipped,
    )


def _compile_function(item: Any, pointer: str, source: str, language: str | None, names: UniqueNames) -> ToolSpec:
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item, pointer = item["function"], f"{pointer}/function"
    if not isinstance(item, dict):
        raise SpecError(f"a function must be an object, got {type(item).__name__}", source=source, pointer=pointer)
    raw_name = item.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise SpecError("a function needs a non-empty string 'name'", source=source, pointer=f"{pointer}/name")

    compiler = SchemaCompiler(item, source=source, dialect="functions", language=language)
    params = item.get("parameters", item.get("input_schema", {"type": "object", "properties": {}}))
    key = "parameters" if "parameters" in item else "input_schema"
    schema = compiler.compile(params, f"{pointer}/{key}")
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise SpecError("'parameters' must be an object schema", source=source, pointer=f"{pointer}/{key}")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    schema = checked(compiler.finish(schema), source=source, pointer=pointer)

    output_schema = None
    if isinstance(item.get("response"), dict):  # BFCL docs describe results too
        out = SchemaCompiler(item, source=source, dialect="functions", language=language)
        compiled = out.compile(item["response"], f"{pointer}/response", mode="output")
        if isinstance(compiled, dict) and compiled.get("type") == "object":
            output_schema = checked(out.finish(compiled), source=source, pointer=f"{pointer}/response")

    description = item.get("description", "")
    return ToolSpec(
        name=names.claim(sanitize_tool_name(raw_name)),
        original_name=raw_name,
        description=description if isinstance(description, str) else str(description),
        input_schema=schema,
        output_schema=output_schema,
        bindings={k: ParamBinding(location="argument", name=k) for k in schema["properties"]},
        source=Source(file=source, pointer=pointer),
    )
