"""Verification of a synthesized task, before it is kept (APIGen's three stages, and then some).

1. format: every ground-truth call names a tool the task offers, and its arguments validate;
2. execution: the ground truth runs on *fresh* servers (compiled again, never the generator's), from
   the task's pinned initial state, under two different seeds, every call without error;
3. semantic: a one-shot task's ground truth passes the BFCL AST checker against its own possible
   answers; an irrelevance task calls nothing and its request avoids the tools' vocabulary;
4. inference: every argument value a solver could not infer (not a default, not the only enum value)
   is in the request so far (this turn and earlier ones), the hidden facts, or the result of a call
   before it (never its own: a record echoes what it was given); no tool name leaks;
5. order: the calls of a parallel turn run without error in every order (a model may emit them so).

``near_duplicates`` then drops tasks too close to one kept before them. Each failure is a ``Failure``:
its reason string (``verify_task`` returns it), and the tool whose call failed with what it said.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inftool_env.mcp.server import CompiledServer
from inftool_env.rewards.bfcl_ast import check_ast
from inftool_env.synth.phrasing import leaks
from inftool_env.synth.world import run_calls
from inftool_env.tasks import Task, ToolCall

SEEDS = (11, 29)
ERROR_CHARS = 300  # of a tool's error, kept in a reason


@dataclass(frozen=True)
class Failure:
    """Why a candidate fails: ``reason`` ("execution: getBuild: No project …", its kind before the first
    colon), and where one tool's call failed, that tool and what it said (``error``, without the tool)."""

    reason: str
    tool: str = ""
    error: str = ""

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]

    def __str__(self) -> str:
        return self.reason


def failed_call(kind: str, tool: str, error: str) -> Failure:
    """``kind: tool: error``, the error on one line and cut to ``ERROR_CHARS``."""
    error = " ".join(error.split())[:ERROR_CHARS]
    return Failure(f"{kind}: {tool}: {error}", tool, error)


async def verify_task(task: Task, servers: dict[str, CompiledServer]) -> str | None:
    """None when the task holds; else why not. ``servers``: fresh ones, by server name."""
    failure = await find_failure(task, servers)
    return None if failure is None else failure.reason


async def find_failure(task: Task, servers: dict[str, CompiledServer]) -> Failure | None:
    """``verify_task``'s check, its failure whole: which tool failed, and how."""
    names = task.servers or list(servers)
    missing = [n for n in names if n not in servers]
    if missing:
        return Failure(f"format: servers {missing} are not in the env")
    tools = {t.name: t for n in names for t in servers[n].suite.tools}
    offered = {t for t in tools if t not in task.excluded_tools}
    owner = {t.name: n for n in names for t in servers[n].suite.tools}
    for turn in task.ground_truth:
        for call in turn:
            if call.name not in offered:
                return failed_call("format", call.name, "not offered")
            problems = servers[owner[call.name]].argument_errors(tools[call.name], call.arguments)
            if problems:
                return failed_call("format", call.name, problems[0])
    truth = list(task.ground_truth)
    texts: list[list[str]] = []
    for seed in SEEDS:
        results, _ = await run_calls(servers, owner, truth, initial=task.initial_state, seed=seed)
        for turn, turn_results in zip(truth, results, strict=True):
            for call, result in zip(turn, turn_results, strict=True):
                if result.is_error:
                    return failed_call("execution", call.name, result.text)
        texts = [[r.text for r in turn_results] for turn_results in results]
    if task.category == "irrelevance":
        if any(truth):
            return Failure("semantic: an irrelevance task with calls")
    elif not any(truth):
        return Failure("semantic: no ground-truth call")
    if task.one_shot and task.bfcl is not None:
        decoded = [{c.name: dict(c.arguments)} for turn in truth for c in turn]
        verdict = check_ast(task.bfcl.docs, decoded, task.bfcl.possible, task.bfcl.category)
        if not verdict.valid:
            return Failure(f"semantic: the ground truth fails its own possible answers ({verdict.error_type})")
    leaked = leaks(" ".join(task.turns), list(tools.values()))  # names and HTTP paths
    if leaked:
        return Failure(f"leak: the request names {leaked[0]}")
    unsaid = _uninferable(task, tools, texts)
    if unsaid is not None:
        return unsaid
    # Last: up to five more replays, paid only by a task every cheaper check kept.
    if task.category in ("parallel", "parallel_multiple") and len(truth) == 1:
        return await _fails_in_some_order(truth[0], task, servers, owner)
    return None


async def _fails_in_some_order(
    calls: list[ToolCall], task: Task, servers: dict[str, CompiledServer], owner: dict[str, str]
) -> Failure | None:
    """The first order (every one, up to three calls; else the reverse) in which the turn fails, and its first
    error: BFCL's parallel is order-free, so ``update`` then ``remove`` of one record must not be the only way.
    (Not the end state: two creates in either order number their records differently, and both are right.)"""
    orders = list(itertools.permutations(calls))[1:] if len(calls) <= 3 else [tuple(reversed(calls))]
    for order in orders:
        results, _ = await run_calls(servers, owner, [list(order)], initial=task.initial_state, seed=SEEDS[0])
        for call, result in zip(order, results[0], strict=True):
            if result.is_error:
                return failed_call("order", call.name, result.text)
    return None


def _uninferable(task: Task, tools: dict[str, Any], results: list[list[str]]) -> Failure | None:
    """The first argument value the solver was not told before making the call. ``results``: each
    ground-truth call's result text, per turn. Calls of a one-shot turn are emitted together, so none
    sees another's result; a multi-step turn's later calls see the earlier ones'."""
    hidden = json.dumps(task.facts, ensure_ascii=False).lower()
    seen: list[str] = []  # results of earlier calls
    for turn_index, turn in enumerate(task.ground_truth):
        told = " ".join([*task.turns[: turn_index + 1], hidden]).lower()
        before_turn = len(seen)
        for call_index, call in enumerate(turn):
            schema = tools[call.name].input_schema.get("properties", {})
            earlier = " ".join(seen[:before_turn] if task.one_shot else seen).lower()
            for param, value in call.arguments.items():
                spec = schema.get(param, {}) if isinstance(schema.get(param), dict) else {}
                if spec.get("default") == value or len(spec.get("enum") or [0, 1]) == 1 or "const" in spec:
                    continue
                for leaf in _leaves(value):
                    if not _mentioned(leaf, told) and not _mentioned(leaf, earlier):
                        unsaid = f"{param}={leaf!r} is nowhere in the request"
                        return Failure(f"inference: {call.name}.{unsaid}", call.name, unsaid)
            turn_results = results[turn_index] if turn_index < len(results) else []
            seen.append(turn_results[call_index] if call_index < len(turn_results) else "")
    if task.category == "missing_param" and task.ground_truth and task.ground_truth[-1]:
        first = task.turns[0].lower()
        facts = list(task.facts.values())
        if not facts or all(_mentioned(leaf, first) for f in facts for leaf in _leaves(f)):
            return Failure("semantic: the missing value is already in the first request")
    return None


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


_YES = re.compile(r"\b(true|yes|enable|enabled)\b")
_NO = re.compile(r"\b(false|no|disable|disabled)\b")
# A number standing alone: not a piece of a date (2026-01-19), an id (boo_12) or a version (1.2.3).
_NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w]|[.\-]\d)")
_ENUMERATOR = re.compile(r"\(\d+\)")  # "(1) list the books; (2) ..." numbers requests, not values


def _mentioned(leaf: Any, text: str) -> bool:
    """Whether ``text`` (lower case) states the value: a whole word or token, a number as a number."""
    if leaf is None:
        return True
    if isinstance(leaf, bool):
        return bool((_YES if leaf else _NO).search(text))
    if isinstance(leaf, int | float):
        return any(float(n) == leaf for n in _NUMBER.findall(_ENUMERATOR.sub(" ", text)))
    return re.search(r"(?<!\w)" + re.escape(str(leaf).lower()) + r"(?!\w)", text) is not None


class Deduper:
    """Keeps a task unless its calls repeat a kept one's, or its words nearly do (Jaccard >= threshold)."""

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold
        self.calls: set[str] = set()
        self.words: dict[str, list[set[str]]] = {}

    def add(self, task: Task) -> bool:
        calls = json.dumps([[c.model_dump() for c in t] for t in task.ground_truth], sort_keys=True)
        key = f"{task.category}|{calls}" if any(task.ground_truth) else f"{task.category}|{task.turns}"
        words = set(re.findall(r"[a-z0-9]+", " ".join(task.turns).lower()))
        same = self.words.setdefault(task.category, [])
        close = any(len(words & other) / max(len(words | other), 1) >= self.threshold for other in same)
        if key in self.calls or close:
            return False
        self.calls.add(key)
        same.append(words)
        return True


def near_duplicates(tasks: list[Task], *, threshold: float = 0.9) -> tuple[list[Task], int]:
    """Tasks kept in order, without the near-duplicates of earlier ones; and how many were dropped."""
    dedup = Deduper(threshold)
    kept = [t for t in tasks if dedup.add(t)]
    return kept, len(tasks) - len(kept)
