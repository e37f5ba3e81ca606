"""BFCL's multi-turn API classes as backends, with BFCL's own tool docs.

Both ship in the ``bfcl-eval`` wheel (``pip install --no-deps bfcl-eval==2026.3.23`` plus mpmath).
Every episode gets a fresh instance loaded through the class's own ``_load_scenario`` — never the
module-global instance cache BFCL's harness keeps — so rollouts cannot see each other's writes. A
scenario seen again is a copy of the instance its first load made, taken before any call (pickle, in C:
loading again costs a deep copy of the class's default state, the checker's largest per-case cost).
"""

from __future__ import annotations

import ast
import datetime
import functools
import importlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from importlib import resources
from types import SimpleNamespace
from typing import Any

from inftool_env.backends.base import PickledState, StatePickler, copy_tree, data_key
from inftool_env.backends.python import PythonBackend
from inftool_env.errors import BackendError
from inftool_env.spec.functions import load_functions
from inftool_env.spec.ir import ToolSuite
from inftool_env.tasks import BfclReference, Category, Task, ToolCall

_SOURCE_PACKAGE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
# class -> (module in the wheel, tool doc file in bfcl_eval/data/multi_turn_func_doc/)
BFCL_DOMAINS: dict[str, tuple[str, str]] = {
    "GorillaFileSystem": ("gorilla_file_system", "gorilla_file_system.json"),
    "MathAPI": ("math_api", "math_api.json"),
    "MessageAPI": ("message_api", "message_api.json"),
    "TwitterAPI": ("posting_api", "posting_api.json"),
    "TicketAPI": ("ticket_api", "ticket_api.json"),
    "TradingBot": ("trading_bot", "trading_bot.json"),
    "TravelAPI": ("travel_booking", "travel_booking.json"),
    "VehicleControlAPI": ("vehicle_control", "vehicle_control.json"),
}
INSTALL_HINT = "install it with: pip install --no-deps bfcl-eval==2026.3.23 mpmath"
_ABSENT = object()
LOADED_KEPT = 64  # loaded scenarios kept per backend (a GRPO group's rollouts share one; long-context ones are large)


def _domain(class_name: str) -> tuple[str, str]:
    if class_name not in BFCL_DOMAINS:
        raise BackendError(f"unknown BFCL domain {class_name!r}; known: {', '.join(BFCL_DOMAINS)}")
    return BFCL_DOMAINS[class_name]


@functools.cache
def bfcl_suite(class_name: str) -> ToolSuite:
    """The domain's tools, from BFCL's own JSONL docs (cached: suites are read-only by convention)."""
    _, doc_file = _domain(class_name)
    try:
        text = resources.files("bfcl_eval").joinpath("data", "multi_turn_func_doc", doc_file).read_text()
    except ModuleNotFoundError:
        raise BackendError(f"BFCL domain {class_name} needs the bfcl-eval package; {INSTALL_HINT}") from None
    docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    suite = load_functions(docs, source=f"bfcl:{class_name}", name=class_name, strict=True)
    # BFCL's classes do not honour the "response" schemas of their docs (mkdir returns None), and an
    # advertised outputSchema makes MCP clients reject such results: these tools advertise none.
    return suite.model_copy(update={"tools": [t.model_copy(update={"output_schema": None}) for t in suite.tools]})


def bfcl_class(class_name: str) -> type:
    module_name, _ = _domain(class_name)
    try:
        module = importlib.import_module(f"{_SOURCE_PACKAGE}.{module_name}")
    except ImportError as exc:
        raise BackendError(f"BFCL domain {class_name} cannot be imported ({exc}); {INSTALL_HINT}") from None
    cls: type = getattr(module, class_name)
    return cls


class _UnclockedPickler(StatePickler):
    """GorillaFileSystem stamps a file with ``datetime.now()`` at each write (``File._last_modified``), a
    stamp none of its methods reads. Frozen as one fixed time, two states that made the same writes freeze
    alike, so a checker can see that a rollout rejoined the ground truth's state (multi_turn.TruthCache)."""

    dispatch_table = {**StatePickler.dispatch_table, datetime.datetime: lambda _: (datetime.datetime, (2000, 1, 1))}


class BfclBackend(PickledState, PythonBackend):
    """One BFCL domain. ``initial`` is that class's entry of a task's ``initial_config``;
    ``long_context`` loads BFCL's long-context variant of every scenario."""

    def __init__(self, class_name: str, *, long_context: bool = False) -> None:
        self.class_name = class_name
        self.long_context = long_context
        cls = bfcl_class(class_name)
        super().__init__(cls, load_state=self._load_scenario)
        if class_name == "GorillaFileSystem":
            self.pickler = _UnclockedPickler
        self._loaded: OrderedDict[bytes, bytes] = OrderedDict()  # scenario -> its freshly loaded instance, pickled

    def _load_scenario(self, instance: Any, initial: Mapping[str, Any]) -> None:
        loader = getattr(instance, "_load_scenario", None)
        if loader is not None:
            loader(dict(initial), long_context=self.long_context)

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> Any:
        # BFCL's scenarios carry their own random_seed; the episode seed does not override it, so
        # ground-truth replays match BFCL's. An empty scenario still goes through _load_scenario, on a
        # copy: the classes keep (and later change) the lists and dicts they are given.
        key = _scenario_key(initial)
        if key is not None and (loaded := self._loaded.get(key)) is not None:
            self._loaded.move_to_end(key)
            return self.thaw_state(loaded)
        instance = self.factory()
        self._load_scenario(instance, copy_tree(initial) if initial is not None else {})
        if key is not None:
            if (loaded := self.freeze_state(instance)) is None:
                return instance  # a class pickle cannot copy: each of its states is loaded anew
            self._loaded[key] = loaded
            if len(self._loaded) > LOADED_KEPT:
                self._loaded.popitem(last=False)
            # The first state a copy too, as every later one is: which of its strings are one object (the
            # code's constants, or each its own) is then the same in all, and so are their frozen bytes.
            return self.thaw_state(loaded)
        return instance

    def forget_loaded(self) -> None:
        """Drop the kept scenarios (a benchmark's round starts cold, as a fresh process would)."""
        self._loaded.clear()

    # The same calls on a new state of the same scenario give the same results and state (the classes
    # draw from their own seeded random.Random): a checker may keep a ground truth's side.
    deterministic = True

    @staticmethod
    def state_matches(state: Any, expected: Any) -> bool:
        """BFCL's state check: each public attribute of ``expected`` equals ``state``'s by ``==``
        (its File and Directory compare by name and contents), compared in place, not serialised."""
        return all(
            getattr(state, name, _ABSENT) == value for name, value in vars(expected).items() if not name.startswith("_")
        )

    @staticmethod
    def copy_state(state: Any) -> Any:
        """The public attributes, deep-copied, for ``state_matches`` to take as ``expected`` long after
        ``state`` has moved on (only compared with ``==``, so parts shared in ``state`` need not be).
        One copy of them all: a file tree, which marshal cannot hold, fails marshal at its root."""
        return SimpleNamespace(**copy_tree({k: v for k, v in vars(state).items() if not k.startswith("_")}))


def _scenario_key(initial: Mapping[str, Any] | None) -> bytes | None:
    """The scenario's identity (``data_key``); None where marshal cannot hold it: then every state is loaded."""
    return data_key(dict(initial) if initial is not None else None)


# -- BFCL's data -----------------------------------------------------------------------------------
@functools.cache
def _data_dir() -> Any:
    try:
        return resources.files("bfcl_eval").joinpath("data")
    except ModuleNotFoundError:
        raise BackendError(f"BFCL's data ships in the bfcl-eval package; {INSTALL_HINT}") from None


def bfcl_entries(category: str, *, limit: int | None = None) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """(entry, possible answers) of a BFCL v4 category, in file order; categories without answers give []."""
    data = _data_dir()
    answers = data.joinpath("possible_answer", f"BFCL_v4_{category}.json")
    possible = {}
    if answers.is_file():
        possible = {(a := json.loads(line))["id"]: a["ground_truth"] for line in answers.read_text().splitlines()}
    for n, line in enumerate(data.joinpath(f"BFCL_v4_{category}.json").read_text().splitlines()):
        if limit is not None and n >= limit:
            return
        entry = json.loads(line)
        yield entry, possible.get(entry["id"], [])


# -- BFCL multi-turn entries as tasks --------------------------------------------------------------
MULTI_TURN_CATEGORIES = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
TASK_CATEGORY: dict[str, Category] = {
    "multi_turn_base": "multi_turn", "multi_turn_miss_func": "missing_function",
    "multi_turn_miss_param": "missing_param", "multi_turn_long_context": "long_context",
}  # fmt: skip
# What the user says at the turn a withheld function becomes available (BFCL's turn has no text).
TOOLS_ADDED_PROMPT = "More tools are available to you now: {names}. Please carry on with my request."


def bfcl_multi_turn_tasks(category: str, *, domain: str | None = None, limit: int | None = None) -> list[Task]:
    """BFCL v4 multi-turn entries (questions + possible answers) as Tasks, optionally of one domain."""
    if category not in MULTI_TURN_CATEGORIES:
        raise BackendError(f"BFCL category {category!r} is not served; served: {', '.join(MULTI_TURN_CATEGORIES)}")
    suites = {name: bfcl_suite(name) for name in BFCL_DOMAINS}
    tasks = []
    for entry, ground_truth in bfcl_entries(category):
        if domain is not None and domain not in entry["involved_classes"]:
            continue
        classes = entry["involved_classes"]
        owner = {t.name: suites[c] for c in classes for t in suites[c].tools}
        added = {int(k): list(v) for k, v in entry.get("missed_function", {}).items()}
        turns = ["\n\n".join(m["content"] for m in turn if m["role"] == "user") for turn in entry["question"]]
        for at, names in added.items():
            turns[at] = turns[at] or TOOLS_ADDED_PROMPT.format(names=", ".join(names))
        tasks.append(
            Task(
                id=entry["id"],
                category=TASK_CATEGORY[category],
                turns=turns,
                tools_added=added,
                bfcl=BfclReference(category=category),
                servers=classes,
                excluded_tools=entry.get("excluded_function", []),
                initial_state={c: entry["initial_config"].get(c, {}) for c in classes},
                ground_truth=[[_parse_call(text, owner, entry["id"]) for text in turn] for turn in ground_truth],
                provenance={"source": f"bfcl-eval 2026.3.23 {category}"},
            )
        )
        if limit is not None and len(tasks) >= limit:
            break
    return tasks


def _parse_call(text: str, owner: dict[str, ToolSuite], entry_id: str) -> ToolCall:
    try:
        call = ast.parse(text, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError("not a call")
        name = call.func.id
        params = list(owner[name].tool(name).input_schema["properties"])
        args = {params[i]: ast.literal_eval(a) for i, a in enumerate(call.args)}
        args.update({k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg})
    except (ValueError, SyntaxError, KeyError, IndexError) as exc:
        raise BackendError(f"{entry_id}: cannot read ground-truth call {text!r}: {exc}") from None
    return ToolCall(name=name, arguments=args)
