"""``load_spec``: any spec source -> ToolSuite, with every failure a SpecError naming file and node.

Sources: a path (OpenAPI 2/3/3.1 or function JSON; YAML, JSON or JSONL), an already-parsed object,
``bfcl:<Class>`` (a BFCL multi-turn domain's tool docs), or a live MCP server (``stdio:<command>``
or an ``http(s)://`` URL), whose tools are listed over MCP.

Bounded: a file over ``max_bytes`` is refused unread, and a document whose YAML aliases expand past
``MAX_DOCUMENT_NODES`` (an alias bomb) or into themselves is a SpecError before anything walks it;
inside one tool, schema nodes and the values they carry (``default``, ``enum``…) share its node budget.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from inftool_env.errors import SpecError
from inftool_env.spec.expand import CYCLE, expanded_size
from inftool_env.spec.functions import load_functions, looks_like_functions
from inftool_env.spec.ir import ToolSuite
from inftool_env.spec.openapi import load_openapi

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Written out as a tree. A 32 MiB JSON spec has a few million nodes; aliases may add some, not billions.
MAX_DOCUMENT_NODES = 8_000_000

try:  # libyaml's parser where PyYAML was built with it, else the pure-Python one
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):
    """A safe loader that refuses a key written twice in one mapping: PyYAML keeps the last, so a path
    written twice lost the first one's operations unseen. Keys a merge (``<<: *base``) brings may be
    overridden, as YAML allows. A timestamp stays the text it was written as (the string the same spec
    in JSON gives), and a value a constructor refuses (``!!int abc``) is a YAML error naming its line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # int() of an !!int, float() of an !!float, an int past 4300 digits
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            what = f"{node.value[:40]!r} as {tag}" if isinstance(node, yaml.ScalarNode) else tag
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read {what}: {exc}", problem_mark=node.start_mark
            ) from None

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Every mapping is flattened before it is built, and a merge flattens its source first: checked
        # here, each node's own keys are seen once and before merged ones join them.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            first: dict[str, yaml.Node] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                str_key = key_node.tag == "tag:yaml.org,2002:str"  # nearly all: no need to build them twice
                key = key_node.value if str_key else _json_key(self.construct_object(key_node))
                if key in first:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key!r} (first at line {first[key].start_mark.line + 1})",
                        problem_mark=key_node.start_mark,
                    )
                first[key] = key_node
        super().flatten_mapping(node)


def _as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


# PyYAML reads 2023-02-30 as a date and fails ("day is out of range for month"). A valid date became its
# isoformat(), the text as written; a date-time now keeps its own form too ("…Z", not "…+00:00"), as the
# same spec in JSON (or YAML 1.2, which has no timestamps) gives it.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)


def is_live_source(source: str) -> bool:
    return source.startswith(("stdio:", "http://", "https://"))


def load_spec(
    source: str | os.PathLike[str] | dict[str, Any] | list[Any],
    *,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    language: str | None = None,
) -> ToolSuite:
    """Compile a spec into a ToolSuite. Bad operations are skipped and reported unless ``strict``."""
    if isinstance(source, dict | list):
        return compile_document(source, source=name or "<object>", strict=strict, name=name, language=language)
    text_source = os.fspath(source)
    if text_source.startswith("bfcl:"):
        from inftool_env.backends.bfcl import bfcl_suite

        return bfcl_suite(text_source.removeprefix("bfcl:"))
    if is_live_source(text_source):
        from inftool_env.mcp.introspect import load_live_suite

        return load_live_suite(text_source)
    document = read_document(Path(text_source), max_bytes=max_bytes)
    return compile_document(document, source=text_source, strict=strict, name=name, language=language)


def compile_document(
    document: Any, *, source: str, strict: bool = False, name: str | None = None, language: str | None = None
) -> ToolSuite:
    size = expanded_size(document, MAX_DOCUMENT_NODES)
    if size > MAX_DOCUMENT_NODES:
        what = "contains itself (a recursive YAML alias)" if size == CYCLE else (
            f"expands to over {MAX_DOCUMENT_NODES:,} nodes (YAML aliases repeating one node: an alias bomb?)"
        )  # fmt: skip
        raise SpecError(f"the spec {what}", source=source)
    try:
        if isinstance(document, dict) and ("openapi" in document or "swagger" in document):
            return load_openapi(document, source=source, strict=strict)
        if looks_like_functions(document):
            return load_functions(document, source=source, name=name, language=language, strict=strict)
    except RecursionError:
        raise SpecError("spec is nested too deeply", source=source) from None
    kind = type(document).__name__
    raise SpecError(
        f"not an OpenAPI document or function list (top level is a {kind} with no 'openapi'/'swagger' key)",
        source=source,
    )


def read_document(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse a YAML / JSON / JSONL file, refusing oversized input before reading it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", source=str(path)) from None
    if size > max_bytes:
        raise SpecError(
            f"spec is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit "
            "(raise max_bytes / --max-bytes)",
            source=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec as UTF-8 text: {exc}", source=str(path)) from None
    return parse_text(text, source=str(path))


def parse_text(text: str, *, source: str) -> Any:
    stripped = text.lstrip()
    if not stripped:
        raise SpecError("spec is empty", source=source)
    if stripped[0] in "[{":
        try:
            return _json_once_keyed(text, source)
        except json.JSONDecodeError as exc:
            jsonl = _try_jsonl(text, source)
            if jsonl is not None:
                return jsonl
            raise SpecError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source) from None
        except RecursionError:
            raise SpecError("JSON nested too deeply", source=source) from None
        except ValueError as exc:  # not a JSONDecodeError: a number past Python's 4,300-digit limit
            raise SpecError(f"invalid JSON: {exc}", source=source) from None
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (C or pure Python)
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(exc), source=source) from None
    except RecursionError:
        raise SpecError("YAML nested too deeply", source=source) from None
    if not isinstance(document, dict | list):
        raise SpecError(f"top level is a {type(document).__name__}, not an object or list", source=source)
    try:
        return _jsonable(document, {})
    except RecursionError:
        raise SpecError("YAML nested too deeply", source=source) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line. Its problem mark is often where it gave up (the end of the file, for an
    unclosed quote); the context says what it was reading and where that began."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = _at(getattr(exc, "problem_mark", None))
    context = getattr(exc, "context", None)
    if context:
        return f"invalid YAML: {context}{_at(getattr(exc, 'context_mark', None))}, {problem}{where}"
    return f"invalid YAML{where}: {problem}"


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""


def _json_key(key: Any) -> str:
    """The key a YAML one becomes in JSON: ``200`` -> "200", ``true`` -> "true"."""
    return key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)


def _jsonable(node: Any, memo: dict[int, Any]) -> Any:
    """YAML gives integer keys (``200:``) and sets; tools speak JSON. Shared (aliased) nodes are
    converted once and stay shared, so an alias bomb costs nothing here."""
    if isinstance(node, str | int | float | bool) or node is None:
        return node
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        memo[id(node)] = out
        for key, value in node.items():
            out[_json_key(key)] = _jsonable(value, memo)
        return out
    if isinstance(node, list):
        items: list[Any] = []
        memo[id(node)] = items
        items.extend(_jsonable(v, memo) for v in node)
        return items
    return str(node)


def _try_jsonl(text: str, source: str) -> list[Any] | None:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    try:
        return [_json_once_keyed(line, f"{source} line {n}") for n, line in enumerate(lines, 1)]
    except (json.JSONDecodeError, RecursionError):
        return None


def _json_once_keyed(text: str, source: str) -> Any:
    """JSON that refuses a key written twice in one object, as the YAML loader does: ``json`` keeps the
    last, so a path written twice lost the first one's operations unseen. The hook costs ~60 ms a MiB."""
    twice: list[tuple[dict[str, Any], str]] = []

    def once_keyed(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(pairs)
        if len(built) != len(pairs) and not twice:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    twice.append((built, key))
                    break
                seen.add(key)
        return built

    document = json.loads(text, object_pairs_hook=once_keyed)
    if twice:
        holder, key = twice[0]
        where = _pointer_to(document, holder) or "the top level"
        raise SpecError(f"invalid JSON: duplicate key {key!r} in the object at {where}", source=source)
    return document


def _pointer_to(node: Any, target: dict[str, Any], at: str = "") -> str | None:
    """The JSON pointer (RFC 6901) of ``target`` inside ``node``, found by identity."""
    if node is target:
        return at
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        if isinstance(child, dict | list):
            found = _pointer_to(child, target, f"{at}/{str(key).replace('~', '~0').replace('/', '~1')}")
            if found is not None:
                return found
    return None
