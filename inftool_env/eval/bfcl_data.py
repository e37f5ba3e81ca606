"""BFCL v4's categories as our tasks and MCP servers, from the data in the bfcl-eval wheel.

Single-turn entries (AST and relevance categories) become one-shot tasks, each with its own
server compiled from the entry's function docs (calls validated and recorded, never executed:
BFCL judges their AST). Multi-turn entries run on the eight BFCL domain servers, a fresh backend
instance per episode; ``long_context`` gets servers that load BFCL's long-context scenarios.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from inftool_env.backends.bfcl import BFCL_DOMAINS, BfclBackend, bfcl_entries, bfcl_multi_turn_tasks, bfcl_suite
from inftool_env.backends.record import RecordingBackend
from inftool_env.errors import BackendError
from inftool_env.mcp.server import CompiledServer
from inftool_env.rewards.bfcl_lang import to_source
from inftool_env.spec.functions import load_functions
from inftool_env.tasks import BfclReference, Category, Task, ToolCall

Kind = Literal["ast", "relevance", "multi_turn", "not_run"]


@dataclass(frozen=True)
class BfclCategory:
    name: str
    group: Literal["non_live", "live", "irrelevance", "multi_turn", "agentic"]
    kind: Kind
    task_category: Category = "simple"
    language: Literal["python", "java", "javascript"] = "python"
    reason: str = ""  # why a category is not run


_NO_WEB = "needs live web search; these machines have no internet"
_NO_MEMORY = "needs BFCL's memory backends and their prerequisite conversations (not served yet)"
CATEGORIES: dict[str, BfclCategory] = {c.name: c for c in (
    BfclCategory("simple_python", "non_live", "ast", "simple"),
    BfclCategory("simple_java", "non_live", "ast", "simple", "java"),
    BfclCategory("simple_javascript", "non_live", "ast", "simple", "javascript"),
    BfclCategory("multiple", "non_live", "ast", "multiple"),
    BfclCategory("parallel", "non_live", "ast", "parallel"),
    BfclCategory("parallel_multiple", "non_live", "ast", "parallel_multiple"),
    BfclCategory("irrelevance", "irrelevance", "relevance", "irrelevance"),
    BfclCategory("live_simple", "live", "ast", "simple"),
    BfclCategory("live_multiple", "live", "ast", "multiple"),
    BfclCategory("live_parallel", "live", "ast", "parallel"),
    BfclCategory("live_parallel_multiple", "live", "ast", "parallel_multiple"),
    BfclCategory("live_irrelevance", "irrelevance", "relevance", "irrelevance"),
    BfclCategory("live_relevance", "live", "relevance", "relevance"),
    BfclCategory("multi_turn_base", "multi_turn", "multi_turn", "multi_turn"),
    BfclCategory("multi_turn_miss_func", "multi_turn", "multi_turn", "missing_function"),
    BfclCategory("multi_turn_miss_param", "multi_turn", "multi_turn", "missing_param"),
    BfclCategory("multi_turn_long_context", "multi_turn", "multi_turn", "long_context"),
    BfclCategory("web_search_base", "agentic", "not_run", reason=_NO_WEB),
    BfclCategory("web_search_no_snippet", "agentic", "not_run", reason=_NO_WEB),
    BfclCategory("memory_kv", "agentic", "not_run", reason=_NO_MEMORY),
    BfclCategory("memory_vector", "agentic", "not_run", reason=_NO_MEMORY),
    BfclCategory("memory_rec_sum", "agentic", "not_run", reason=_NO_MEMORY),
)}  # fmt: skip
GROUPS = {
    "all": list(CATEGORIES),  # the not-run ones are listed as such in the report
    "non_live": ["simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple"],
    "live": ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"],
    "relevance": ["irrelevance", "live_irrelevance", "live_relevance"],
    "multi_turn": ["multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"],
}


@dataclass
class CategoryData:
    category: BfclCategory
    tasks: list[Task]
    servers: dict[str, CompiledServer] = field(default_factory=dict)
    skipped_docs: dict[str, list[str]] = field(default_factory=dict)  # entry -> functions that did not compile


def resolve_categories(names: list[str] | None) -> list[BfclCategory]:
    """Category and group names -> categories, in BFCL's order; an unknown name is an error."""
    wanted: list[str] = []
    for name in names or ["all"]:
        if name in GROUPS:
            wanted += GROUPS[name]
        elif name in CATEGORIES:
            wanted.append(name)
        else:
            known = ", ".join([*GROUPS, *CATEGORIES])
            raise BackendError(f"unknown BFCL category {name!r}; known: {known}")
    return [c for n, c in CATEGORIES.items() if n in wanted]


def load_category(category: BfclCategory, *, limit: int | None = None) -> CategoryData:
    if category.kind == "not_run":
        raise BackendError(f"BFCL category {category.name} is not run: {category.reason}")
    if category.kind == "multi_turn":
        long_context = category.name == "multi_turn_long_context"
        tasks = bfcl_multi_turn_tasks(category.name, limit=limit)
        return CategoryData(category, tasks, domain_servers(long_context))
    data = CategoryData(category, [])
    for entry, possible in bfcl_entries(category.name, limit=limit):
        task, server = _single_turn(category, entry, possible)
        data.tasks.append(task)
        data.servers[entry["id"]] = server
        if server.suite.skipped:
            data.skipped_docs[entry["id"]] = [s.name for s in server.suite.skipped]
    return data


def domain_servers(long_context: bool = False) -> dict[str, CompiledServer]:
    """The eight BFCL domains as compiled servers (fresh objects: each holds its own episodes)."""
    return {c: CompiledServer(bfcl_suite(c), BfclBackend(c, long_context=long_context)) for c in BFCL_DOMAINS}


def _single_turn(category: BfclCategory, entry: dict[str, Any], possible: list[Any]) -> tuple[Task, CompiledServer]:
    docs = entry["function"]
    offered = docs if category.language == "python" else as_source_docs(docs, category.language)
    suite = load_functions(offered, source=f"bfcl:{entry['id']}", name=entry["id"])
    tool_names = {t.name: t.original_name for t in suite.tools}
    offered_name = {original: name for name, original in tool_names.items()}
    truth = []
    for answer in possible:
        original, args = next(iter(ground_truth_call(answer).items()))
        if category.language != "python":
            args = next(iter(as_source({original: args}, docs, category.language).values()))
        truth.append(ToolCall(name=offered_name.get(original, original), arguments=args))
    system = [m["content"] for turn in entry["question"] for m in turn if m["role"] == "system"]
    user = [m["content"] for turn in entry["question"] for m in turn if m["role"] == "user"]
    task = Task(
        id=entry["id"],
        category=category.task_category,
        turns=["\n\n".join(user)],
        system_prompt="\n\n".join(system),
        servers=[entry["id"]],
        one_shot=True,
        ground_truth=[truth] if truth else [],
        bfcl=BfclReference(
            category=category.name, language=category.language, docs=docs, possible=possible, tool_names=tool_names
        ),  # fmt: skip
        provenance={"source": f"bfcl-eval 2026.3.23 {category.name}"},
    )
    return task, CompiledServer(suite, RecordingBackend())


# -- ground truths as answers ---------------------------------------------------------------------
def ground_truth_call(possible: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A concrete answer: each parameter's first real option (dict options resolved key by key);
    parameters whose options are all "" (optional, may be left out) are left out."""
    name, params = next(iter(possible.items()))
    return {name: {k: _concrete(first) for k, v in params.items() if (first := _first_real(v)) is not _NONE}}


_NONE = object()


def _first_real(options: Any) -> Any:
    if not isinstance(options, list):  # a few entries give a bare value instead of a list of options
        return options
    return next((o for o in options if o != ""), _NONE)


def _concrete(option: Any) -> Any:
    """Possible-answer dicts map each key to its options; a list of such dicts likewise."""
    if isinstance(option, dict):
        return {k: _concrete(first) for k, v in option.items() if (first := _first_real(v)) is not _NONE}
    if isinstance(option, list) and option and all(isinstance(x, dict) for x in option):
        return [_concrete(x) for x in option]
    return option


def as_source(call: dict[str, dict[str, Any]], docs: list[dict[str, Any]], language: str) -> dict[str, dict[str, Any]]:
    """Java/JS categories: every argument written as source code, the way models answer them."""
    name, args = next(iter(call.items()))
    props = next(d for d in docs if d["name"] == name)["parameters"]["properties"]
    return {name: {k: to_source(language, v, props[k]["type"], props[k].get("items", {}).get("type"))
                   for k, v in args.items()}}  # fmt: skip


def as_source_docs(docs: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    """Java/JS docs as offered to a model: every parameter a string of source code, its declared
    type (and item type) said in its description, as BFCL offers them to function-calling models."""
    label = "Java 8" if language == "java" else "JavaScript"
    out = copy.deepcopy(docs)
    for doc in out:
        doc["description"] = (
            f"{doc.get('description', '')} (Written in {label}; give every argument as {label} source.)"
        )
        for param in doc["parameters"].get("properties", {}).values():
            declared = param.get("type", "any")
            items = param.pop("items", {}).get("type")
            param.pop("properties", None)
            note = f"{label} {declared}" + (f" of {items}" if items else "")
            param["description"] = f"{param.get('description', '')} ({note}, as {label} source text.)".strip()
            param["type"] = "string"
    return out
