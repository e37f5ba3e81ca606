"""Gap-targeted plans, and the verifier refusing what must not be kept."""

from __future__ import annotations

import json

import pytest

from inftool_env.eval.runner import evaluate
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make
from inftool_env.synth import CATEGORIES, SynthError, TargetPlan, plan_targets, synthesize, verify_task
from inftool_env.synth.categories import near_miss_irrelevance, resource
from inftool_env.synth.context import Context, Skip
from inftool_env.synth.target import ANY_TOOL, cell_of
from inftool_env.synth.verify import find_failure, near_duplicates
from inftool_env.synth.world import open_world
from inftool_env.tasks import ToolCall
from tests.synth.conftest import BOOKSHELF_ID, NeverCalls

pytestmark = pytest.mark.anyio


class OracleOnSimple:
    """Right on single-call tasks, silent everywhere else: a policy with a known gap."""

    def __init__(self, task):
        self.inner = OraclePolicy(task) if task.category == "simple" else NeverCalls(task)

    async def act(self, observation):
        return await self.inner.act(observation)


async def test_a_plan_goes_where_the_policy_fails(bookshelf_run, tmp_path):
    manifest = bookshelf_run.write(tmp_path)
    env = make(manifest)
    try:
        _, trajectories = await evaluate(env, OracleOnSimple, progress=False, out=tmp_path / "eval")
    finally:
        await env.close()
    plan = plan_targets(trajectories, bookshelf_run.tasks, n=200, keep_share=0.3, irrelevance_share=0.15)
    assert sum(plan.cells.values()) == 200
    simple = sum(k for (t, c), k in plan.cells.items() if c == "simple")
    failing = sum(k for (t, c), k in plan.cells.items() if c in ("multi_step", "parallel"))
    assert failing > simple > 0  # the kept share reaches the cells it already solves, the rest goes to its gaps
    assert plan.cells[(ANY_TOOL, "irrelevance")] >= 30
    assert plan.hard_tasks and all(t.category != "simple" for t in plan.hard_tasks)
    assert "hard tasks" in plan.describe()
    again = TargetPlan.model_validate_json(plan.model_dump_json())
    assert again.cells == plan.cells
    # the same plan from the eval's out dir, and from per-task group success rates
    assert plan_targets(tmp_path / "eval", bookshelf_run.tasks, n=200).cells == plan.cells
    rates = {t.id: (1.0 if t.category in ("simple", "irrelevance") else 0.0) for t in bookshelf_run.tasks}
    assert plan_targets(rates, bookshelf_run.tasks, n=200).cells == plan.cells

    targeted = synthesize("inftool/Bookshelf-v0", n=200, seed=8, plan=plan, round=1)
    assert {t.provenance["round"] for t in targeted.tasks} == {1}
    hard_cells = {cell_of(t) for t in plan.hard_tasks}
    varied = [t for t in targeted.tasks if t.provenance["parent"] is not None]
    parent_of = {h.id: h for h in plan.hard_tasks}
    assert varied and all(t.category == parent_of[t.provenance["parent"]].category for t in varied)
    on_target = [t for t in varied if cell_of(t) in hard_cells]
    assert len(on_target) >= 0.8 * len(varied)  # a chain may start elsewhere when the parent's tool feeds nothing
    planned = [t for t in targeted.tasks if "twin" not in t.provenance]  # a near miss's twin may be simple
    by_category = {c: sum(1 for t in planned if t.category == c) for c in ("simple", "multi_step")}
    assert by_category["multi_step"] > by_category["simple"]


def test_plan_errors(bookshelf_run):
    with pytest.raises(SynthError, match="shares no task"):
        plan_targets({"nope": 1.0}, bookshelf_run.tasks)
    with pytest.raises(SynthError, match="keep_share"):
        plan_targets({}, bookshelf_run.tasks, keep_share=0.9, irrelevance_share=0.5)


def test_a_bfcl_report_targets_categories(tmp_path, bookshelf_run):
    report = {"categories": {"simple_python": {"accuracy": 0.9}, "parallel": {"accuracy": 0.2},
                             "multi_turn_base": {"accuracy": 0.1}, "live_relevance": {"accuracy": 0.0},
                             "multi_turn_long_context": {"accuracy": 0.0}},
              "aggregates": {}, "entries": []}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    plan = plan_targets(tmp_path, bookshelf_run.tasks, n=40)
    assert plan.cells[(ANY_TOOL, "multi_turn")] > plan.cells[(ANY_TOOL, "simple")]
    # BFCL's categories synthesis does not make get no share (they took the largest, then were dropped unseen).
    assert set(plan.ignored) == {"relevance", "long_context"} and sum(plan.cells.values()) == 40
    assert {c for _, c in plan.cells} <= set(CATEGORIES)


def test_a_plan_covers_only_the_runs_categories_and_an_evolve_report_steers_by_cell(tmp_path, bookshelf_run):
    report = {"round": 1, "categories": {}, "overall": {}, "cells": [
        {"tool": "addBook", "category": "multi_step", "n": 2, "accuracy": 0.0},
        {"tool": "(no tool)", "category": "irrelevance", "n": 4, "accuracy": 0.25},
        {"tool": "getBook", "category": "simple", "n": 1, "accuracy": 1.0}]}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    plan = plan_targets(tmp_path, bookshelf_run.tasks, n=40)  # was read as a BFCL report: "shares no task"
    assert plan.cells[("addBook", "multi_step")] > plan.cells[("getBook", "simple")] > 0
    # Restricted to two categories: irrelevance's share and the simple cell go to them, nothing is lost.
    narrow = plan_targets(tmp_path, bookshelf_run.tasks, n=40, categories=["multi_step", "parallel"])
    assert {c for _, c in narrow.cells} == {"multi_step"} and sum(narrow.cells.values()) == 40
    assert narrow.ignored == dict.fromkeys(["irrelevance", "simple"], "not among this run's categories")
    run = synthesize("inftool/Bookshelf-v0", n=40, categories=["multi_step", "parallel"], plan=narrow, seed=1)
    assert len(run.tasks) >= 30
    with pytest.raises(SynthError, match="the plan gives tasks to irrelevance, simple, which this run does not make"):
        synthesize("inftool/Bookshelf-v0", n=40, categories=["multi_step"], plan=plan, seed=1)


def test_a_cells_parent_is_its_hardest_task(bookshelf_run):
    first = next(t for t in bookshelf_run.tasks if t.category == "simple")
    twin = first.model_copy(update={"id": f"{first.id}-b"})  # the same cell, easier
    plan = plan_targets({first.id: 0.0, twin.id: 0.4}, [first, twin], n=8, categories=["simple"])
    run = synthesize("inftool/Bookshelf-v0", n=8, categories=["simple"], plan=plan, seed=2)
    parents = {t.provenance.get("parent") for t in run.tasks if t.provenance.get("parent")}
    assert parents == {first.id}


async def test_the_verifier_refuses_bad_tasks(bookshelf_run):
    fresh = open_world("inftool/Bookshelf-v0").fresh()
    simple = next(t for t in bookshelf_run.tasks if t.category == "simple" and t.ground_truth[0][0].name == "addBook")
    assert await verify_task(simple, fresh) is None

    call = simple.ground_truth[0][0]
    other = ToolCall(name=call.name, arguments={**call.arguments, "title": "Never Said"})
    unsaid = simple.model_copy(update={"ground_truth": [[other]]})
    assert (await verify_task(unsaid, fresh) or "").startswith(("inference", "semantic"))
    leaked = simple.model_copy(update={"turns": [simple.turns[0] + " Use addBook."]})
    assert (await verify_task(leaked, fresh) or "").startswith("leak")
    failing = simple.model_copy(update={"ground_truth": [[ToolCall(name="getBook", arguments={"bookId": "boo_999"})]],
                                        "excluded_tools": []})  # fmt: skip
    assert (await verify_task(failing, fresh) or "").startswith("execution: getBook: ")  # which tool failed, and how
    failure = await find_failure(failing, fresh)
    assert failure is not None and (failure.kind, failure.tool) == ("execution", "getBook")
    assert "boo_999" in failure.error and failure.reason.endswith(failure.error)
    invalid = simple.model_copy(update={"ground_truth": [[ToolCall(name="addBook", arguments={"title": 3})]]})
    assert (await verify_task(invalid, fresh) or "").startswith("format")

    kept, dropped = near_duplicates([simple, simple.model_copy(update={"id": "twin"})])
    assert len(kept) == 1 and dropped == 1


async def test_near_miss_irrelevance_offers_only_other_resources():
    """The hard irrelevance case: a real request for one operation, with only other resources' tools on
    offer (none of them can do it), and no call in the ground truth."""
    world = open_world(BOOKSHELF_ID)
    made = twinned = single_offers = 0
    for seed in range(12):
        ctx = Context.create(world, seed=seed)
        asked = {t.name: t for _, t in ctx.tools()}
        try:
            task, *twin = await near_miss_irrelevance(ctx, None)
        except Skip:
            continue
        made += 1
        offered = [name for name in asked if name not in task.excluded_tools]
        assert task.category == "irrelevance" and task.ground_truth == [] and 1 <= len(offered) <= 3
        wanted = asked[task.provenance["near_miss_of"]]
        assert wanted.name not in offered
        assert all(resource(asked[n]) != resource(wanted) for n in offered), (wanted.name, offered)
        if twin:  # the same words, the asked tool in place of one offered tool: to be called
            twinned += 1
            (pair,) = twin
            twin_offered = [name for name in asked if name not in pair.excluded_tools]
            assert pair.category == ("multiple" if len(offered) > 1 else "simple") and pair.turns == task.turns
            assert len(twin_offered) == len(offered)  # the number of tools is no cue to decline
            assert wanted.name in twin_offered and set(twin_offered) - {wanted.name} < set(offered)
            single_offers += len(offered) == 1
            assert [c.name for c in pair.ground_truth[0]] == [task.provenance["near_miss_of"]]
    assert made >= 6 and twinned >= made // 2 and single_offers, (made, twinned, single_offers)


def test_synthesis_keeps_a_near_miss_beside_its_twin():
    """Twins come beyond the quota (the irrelevance count is still what was asked), each verified and
    pointing at its near miss, which has the same words."""
    run = synthesize(BOOKSHELF_ID, n=8, categories=["irrelevance"], seed=3, progress=False)
    by_id = {t.id: t for t in run.tasks}
    twins = [t for t in run.tasks if t.provenance.get("twin") == "near_miss"]
    assert sum(t.category == "irrelevance" for t in run.tasks) == 8 and twins
    for twin in twins:
        miss = by_id[twin.provenance["companion_of"]]
        assert miss.category == "irrelevance" and miss.turns == twin.turns and miss.provenance["near_miss_of"]
        assert [c.name for c in twin.ground_truth[0]] == [miss.provenance["near_miss_of"]]
