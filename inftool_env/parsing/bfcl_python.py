"""BFCL's prompt style: ``[func(a=1), mod.f(b="x")]`` — Python call syntax, parsed with ``ast``.

Only literals are accepted as argument values (``ast.literal_eval`` semantics, never ``eval``), so a
model's output cannot run code. Dotted names are kept as written; mapping them to sanitised tool
names is the caller's job (the ToolSpec keeps both).
"""

from __future__ import annotations

import ast
import json
from typing import Any

from inftool_env.parsing.base import ParsedCall, ParseResult, json_problem

MAX_CHARS = 200_000


class BfclPythonFormat:
    name = "bfcl"

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        functions = [t.get("function", t) for t in tools]
        return (
            "You are an expert in composing functions. You are given a question and a set of possible "
            "functions. Based on the question, you will need to make one or more function/tool calls to "
            "achieve the purpose. If none of the functions can be used, point it out. If the given question "
            "lacks the parameters required by the function, also point it out.\n\n"
            "If you decide to invoke any of the function(s), you MUST put it in the format of "
            "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]\n"
            "You SHOULD NOT include any other text in the response.\n\n"
            "Here is a list of functions in JSON format that you can invoke.\n"
            + json.dumps(functions, ensure_ascii=False)
        )

    def parse(self, text: str) -> ParseResult:
        body = text.strip().strip("`").removeprefix("python").strip()
        if not body.startswith("["):
            return ParseResult(content=text.strip())
        if len(body) > MAX_CHARS:
            return ParseResult(content=text, error="tool call list too long")
        try:
            tree = ast.parse(body, mode="eval")
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
            return ParseResult(content=text, error=f"not a Python call list: {type(exc).__name__}")
        if not isinstance(tree.body, ast.List):
            return ParseResult(content=text, error="expected a list of calls")
        calls = []
        for i, node in enumerate(tree.body.elts):
            if not isinstance(node, ast.Call):
                return ParseResult(content=text, error=f"item {i} is not a call")
            if node.args:
                return ParseResult(content=text, error=f"item {i}: arguments must be keyword arguments")
            name = _dotted(node.func)
            if name is None:
                return ParseResult(content=text, error=f"item {i}: the callee must be a (dotted) name")
            try:
                args = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}
            except (ValueError, TypeError, SyntaxError, OverflowError, RecursionError, MemoryError):
                return ParseResult(content=text, error=f"item {i}: argument values must be literals")
            if len(args) != len(node.keywords):
                return ParseResult(content=text, error=f"item {i}: **kwargs are not allowed")
            problem = json_problem(args)  # literals include sets, bytes, complex numbers and 1e999
            if problem is not None:
                return ParseResult(content=text, error=f"item {i}: {problem}")
            calls.append(ParsedCall(name, args))
        return ParseResult(calls=tuple(calls))

    def render_calls(self, calls: list[ParsedCall]) -> str:
        return (
            "[" + ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.arguments.items())})" for c in calls) + "]"
        )


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])
