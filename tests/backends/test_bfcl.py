"""BFCL's multi-turn domains served over MCP behave exactly like BFCL's own classes."""

from __future__ import annotations

import ast
import contextlib
import copy
import json
from importlib import resources

import pytest

from inftool_env import compile_spec
from inftool_env.backends.bfcl import BFCL_DOMAINS, BfclBackend, bfcl_class, bfcl_suite
from inftool_env.backends.python import match_suite
from inftool_env.mcp import CompiledServer, open_client

pytestmark = pytest.mark.anyio
DATA = resources.files("bfcl_eval").joinpath("data")


def entries(category: str, n: int) -> list[tuple[dict, dict]]:
    questions = DATA.joinpath(f"BFCL_v4_{category}.json").read_text().splitlines()[:n]
    answers = DATA.joinpath("possible_answer", f"BFCL_v4_{category}.json").read_text().splitlines()[:n]
    return [(json.loads(q), json.loads(a)) for q, a in zip(questions, answers, strict=True)]


def parse_call(text: str, suite) -> tuple[str, dict]:
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call)
    name = call.func.id
    params = list(suite.tool(name).input_schema["properties"])
    args = {params[i]: ast.literal_eval(a) for i, a in enumerate(call.args)}
    args.update({k.arg: ast.literal_eval(k.value) for k in call.keywords})
    return name, args


@pytest.mark.parametrize("domain", list(BFCL_DOMAINS))
def test_docs_match_the_class(domain):
    suite = bfcl_suite(domain)
    cls = bfcl_class(domain)
    assert suite.tools and all(callable(getattr(cls, t.original_name)) for t in suite.tools)
    assert all(t.output_schema is None for t in suite.tools)


@pytest.mark.parametrize("domain", list(BFCL_DOMAINS))
def test_the_class_check_at_load_skips_none_of_bfcls_tools(domain, tmp_path):
    # compile_spec matches docs served with a class against its methods; BFCL's docs and classes go
    # through it and must all pass, the long-context variant too.
    assert match_suite(bfcl_suite(domain), bfcl_class(domain), strict=True) is bfcl_suite(domain)
    for backend in (f"bfcl:{domain}", f"bfcl:{domain}:long_context"):
        compiled = compile_spec(f"bfcl:{domain}", backend=backend, strict=True)
        assert compiled.suite.skipped == [] and compiled.suite.tool_names == bfcl_suite(domain).tool_names
    # The check does run on this path: BFCL's docs plus one for a method the class lacks.
    text = resources.files("bfcl_eval").joinpath("data", "multi_turn_func_doc", BFCL_DOMAINS[domain][1]).read_text()
    ghost = {"name": "teleport", "description": "Nowhere.", "parameters": {"type": "dict", "properties": {}}}
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps([json.loads(line) for line in text.splitlines() if line.strip()] + [ghost]))
    skipped = compile_spec(docs, backend=f"bfcl:{domain}").suite.skipped
    assert [(s.name, s.reason) for s in skipped] == [("teleport", f"{domain} has no method 'teleport'")]


@pytest.mark.parametrize("question, answer", entries("multi_turn_base", 25), ids=lambda v: v.get("id", ""))
async def test_ground_truth_over_mcp_matches_direct_execution(question, answer):
    classes = question["involved_classes"]
    suites = {c: bfcl_suite(c) for c in classes}
    owner = {t.name: c for c, s in suites.items() for t in s.tools}
    servers = {
        c: CompiledServer(suites[c], BfclBackend(c), initial_state=question["initial_config"].get(c, {}))
        for c in classes
    }
    direct = {}
    for c in classes:
        instance = bfcl_class(c)()
        if hasattr(instance, "_load_scenario"):
            instance._load_scenario(copy.deepcopy(question["initial_config"].get(c, {})), long_context=False)
        direct[c] = instance

    async with contextlib.AsyncExitStack() as stack:
        clients = {c: await stack.enter_async_context(open_client(servers[c])) for c in classes}
        for turn in answer["ground_truth"]:
            for text in turn:
                name, args = parse_call(text, suites[owner[text.split("(")[0]]])
                over_mcp = await clients[owner[name]].call(name, args)
                expected = getattr(direct[owner[name]], name)(**copy.deepcopy(args))
                assert json.loads(over_mcp.text) == json.loads(json.dumps(expected, default=str)), text
    for c in classes:
        backend = servers[c].backend
        assert backend.snapshot(servers[c].episode_state()) == backend.snapshot(direct[c])


@pytest.mark.parametrize("domain", ["GorillaFileSystem", "TradingBot", "TravelAPI"])
async def test_a_scenario_seen_again_is_a_fresh_copy_of_its_first_load(domain):
    question = next(q for q, _ in entries("multi_turn_base", 200) if domain in q["involved_classes"])
    initial = question["initial_config"].get(domain, {})
    backend = BfclBackend(domain)
    first = backend.new_state(seed=0, initial=initial)
    pristine = backend.snapshot(first)
    for name, value in list(vars(first).items()):  # the first state moves on ...
        if isinstance(value, dict | list):
            value.clear()  # in place, where a shallow copy would share it
        elif not name.startswith("_"):
            setattr(first, name, "changed")
    assert backend.snapshot(first) != pristine
    again = backend.new_state(seed=1, initial=copy.deepcopy(initial))  # the same scenario, another object
    assert again is not first and backend.snapshot(again) == pristine  # ... the copy is as loaded
    assert backend.snapshot(again) == backend.snapshot(loaded(domain, initial))  # and is what a load gives
    other = backend.new_state(seed=0, initial={})  # another scenario is loaded, not copied
    assert backend.snapshot(other) == backend.snapshot(loaded(domain, {}))


def test_a_scenario_pickle_cannot_hold_is_loaded_anew_each_time():
    """A loaded instance too deeply nested to pickle (RecursionError, as a class with a lock or a local
    class gives its own errors) is not kept: each new state loads it, never a traceback (review31_diff #7)."""
    backend = BfclBackend("TravelAPI")
    load = backend._load_scenario

    def nested(instance, initial):
        load(instance, initial)
        deep: list = []
        for _ in range(100_000):
            deep = [deep]
        instance.deep = deep

    backend._load_scenario = nested  # type: ignore[method-assign]
    first, second = backend.new_state(seed=0, initial={}), backend.new_state(seed=0, initial={})
    assert first is not second and first.deep is not second.deep and not backend._loaded


FROZEN_CASES = [(d, False) for d in sorted(BFCL_DOMAINS)] + [("TravelAPI", True)]


@pytest.mark.parametrize(("domain", "long_context"), FROZEN_CASES)
async def test_the_first_state_of_a_scenario_freezes_as_its_later_copies_do(domain, long_context):
    """States of one scenario that made the same calls freeze alike (a checker's shortcut needs it),
    the first one made included; one whose generator moved does not."""
    backend = BfclBackend(domain, long_context=long_context)
    server = CompiledServer(bfcl_suite(domain), backend)
    tools = {t.name for t in bfcl_suite(domain).tools}
    category = "multi_turn_long_context" if long_context else "multi_turn_base"
    among = [(q, a) for q, a in entries(category, 200) if domain in q["involved_classes"]]
    for question, answer in among[:12]:
        initial = question["initial_config"].get(domain, {})
        first, later = (backend.new_state(seed=0, initial=copy.deepcopy(initial)) for _ in range(2))
        assert backend.freeze_state(first) == backend.freeze_state(later)
        texts = [text for turn in answer["ground_truth"] for text in turn if text.split("(")[0] in tools]
        for name, args in [parse_call(text, bfcl_suite(domain)) for text in texts]:
            for state in (first, later):
                await server.call(name, copy.deepcopy(args), state)
        assert backend.freeze_state(first) == backend.freeze_state(later), question["id"]
        assert backend.state_matches(backend.thaw_state(backend.freeze_state(first)), first)
        if hasattr(later, "_random"):
            later._random.random()  # the private generator moved: the public state still matches
            assert backend.state_matches(later, first) and backend.freeze_state(later) != backend.freeze_state(first)
        backend.forget_loaded()  # each entry's first state is a load


def loaded(domain: str, initial: dict) -> object:
    instance = bfcl_class(domain)()
    instance._load_scenario(copy.deepcopy(initial), long_context=False)
    return instance
