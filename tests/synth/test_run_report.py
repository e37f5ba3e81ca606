"""What a synthesis run tells its user: which tools failed and how, which tools no task covers, the
operations the spec lost, counts that add up; and a reused ``--out`` refused before any work."""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

from inftool_env.cli import main
from inftool_env.errors import InftoolError
from inftool_env.synth import run as synth_run
from inftool_env.synth import synthesize
from inftool_env.synth.cli import add_commands
from inftool_env.synth.context import Context, Skip
from inftool_env.synth.world import open_world
from inftool_env.tasks import Task, ToolCall, load_tasks
from tests.synth.conftest import BOOKSHELF_ID

pytestmark = pytest.mark.anyio


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="inftool")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.run(args))


def _openapi(paths: dict, **extra: object) -> str:
    return json.dumps({"openapi": "3.0.0", "info": {"title": "Odd Shop", "version": "1"}, "paths": paths, **extra})


# -- which tool failed, and how ------------------------------------------------------------------


def test_a_dropped_candidate_names_its_tool_and_first_error(monkeypatch):
    # The table said "simple: execution: 4", and stats.json no more: which tool, what it said, nowhere.
    async def missing_book(ctx, focus):
        call = ToolCall(name="getBook", arguments={"bookId": "boo_999"})
        return Task(id="t", category="simple", turns=["Get book boo_999."], ground_truth=[[call]], one_shot=True)

    monkeypatch.setitem(synth_run.BUILDERS, "simple", missing_book)
    run = synthesize(BOOKSHELF_ID, n=1, categories=["simple"], seed=0, attempts_per_task=1)
    assert not run.tasks and run.dropped == {"simple: execution": 3}  # the short reason still counts
    ((reason, count),) = run.stats["dropped_reasons"].items()
    assert reason.startswith("simple: execution: getBook: ") and "boo_999" in reason and count == 3
    (failed,) = run.stats["failed_tools"]
    assert (failed["reason"], failed["tool"], failed["count"]) == ("execution", "getBook", 3)
    assert "boo_999" in failed["first_error"] and reason.endswith(failed["first_error"])
    line = next(line for line in run.table().splitlines() if line.startswith("  execution: getBook (3): "))
    assert "boo_999" in line and len(line) < 140


async def test_a_builders_failed_call_names_its_tool_and_error():
    # "a ground-truth call failed on the server: 5" never said which call.
    ctx = Context.create(open_world(BOOKSHELF_ID), seed=0)
    with pytest.raises(Skip, match="^a ground-truth call failed on the server$") as caught:
        await ctx.execute([[ToolCall(name="getBook", arguments={"bookId": "boo_999"})]], initial={})
    assert caught.value.tool == "getBook" and "boo_999" in caught.value.error


# -- what no task covers -------------------------------------------------------------------------


def test_the_tools_no_task_covers_are_named(tmp_path):
    # "tools covered 1/12" and not one name, in the table or in stats.json.
    topics = ["weather", "stocks", "news", "traffic", "tides", "pollen", "flights", "trains", "ferries", "parking",
              "museums", "concerts"]  # fmt: skip
    functions = [{"name": f"lookup_{t}", "description": f"Look up the {t} of a town.", "parameters": {
        "type": "object", "required": ["town"], "properties": {"town": {"type": "string", "description": "Town"}}}}
        for t in topics]  # fmt: skip
    spec = tmp_path / "lookups.json"
    spec.write_text(json.dumps(functions))
    run = synthesize(spec, n=1, categories=["simple"], seed=0)
    (covered,) = {c.name for t in run.tasks for turn in t.ground_truth for c in turn}
    uncovered = [f"lookup_{t}" for t in topics if f"lookup_{t}" != covered]
    assert run.stats["tools_uncovered"] == uncovered and run.stats["tools_covered"] == 1
    assert f"tools not covered: {', '.join(uncovered[:8])} and 3 more" in run.table().splitlines()


# -- counts that add up --------------------------------------------------------------------------


def test_the_verification_rate_says_what_it_counts(tmp_path):
    # "verification rate 100% (8 attempts)" for a run that kept one task: 7 attempts had found their
    # category does not apply, and the rate was of another count.
    spec = tmp_path / "one.json"
    spec.write_text(_openapi({"/pets": {"get": {"operationId": "listPets", "summary": "List the pets.",
                                                "responses": {"200": {"description": "ok"}}}}}))  # fmt: skip
    run = synthesize(spec, n=8, seed=0)
    assert len(run.tasks) == 1 and run.attempts == 8 and not run.dropped
    assert "verification rate 100%: 1 of 1 candidates kept; 8 attempts, 7 of which found their category does not " \
           "apply" in run.table().splitlines()  # fmt: skip
    s = run.stats
    assert (s["kept"], s["candidates"], s["not_applicable_attempts"], s["companions"]) == (1, 1, 7, 0)


def test_attempts_and_candidates_add_up(bookshelf_run):
    s = bookshelf_run.stats
    assert s["companions"] > 0  # near misses' twins: candidates no attempt of their own made
    assert s["attempts"] - s["not_applicable_attempts"] + s["companions"] == s["candidates"]
    assert s["candidates"] == s["kept"] + sum(s["dropped"].values()) and s["kept"] == len(bookshelf_run.tasks)
    assert sum(s["dropped_reasons"].values()) == sum(s["dropped"].values())
    assert f"{s['kept']} of {s['candidates']} candidates kept" in bookshelf_run.table()


def test_the_counts_add_up_when_a_companions_check_raises(monkeypatch):
    # review31_diff #10: every companion was counted before any was checked, so one whose check raised
    # (an internal error, one drop) left the others counted as candidates that were never kept or dropped.
    simple = synth_run.BUILDERS["simple"]

    async def with_companions(ctx, focus):
        task = await simple(ctx, focus)
        return [task, task.model_copy(update={"id": "raises"}), task.model_copy(update={"id": "after"})]

    keep = synth_run._keep

    async def checked(task, *args, **kwargs):
        if task.id == "raises":
            raise RuntimeError("a bug met by one companion")
        return await keep(task, *args, **kwargs)

    monkeypatch.setitem(synth_run.BUILDERS, "simple", with_companions)
    monkeypatch.setattr(synth_run, "_keep", checked)
    run = synthesize(BOOKSHELF_ID, n=1, categories=["simple"], seed=0, attempts_per_task=1)
    s = run.stats
    assert s["kept"] == 1 and s["dropped"]["simple: internal error (RuntimeError: a bug met by one companion)"] == 1
    assert s["attempts"] - s["not_applicable_attempts"] + s["companions"] == s["candidates"]
    assert s["candidates"] == s["kept"] + sum(s["dropped"].values())


def test_a_candidate_the_caller_refuses_is_a_counted_drop_and_another_is_drawn_in_its_place():
    # evolve refuses answers longer than a turn's tokens (synth/budget.py); the quota is still met.
    def admit(task):
        calls = sum(len(turn) for turn in task.ground_truth)
        return f"answer past the token budget: {calls} calls > 2" if calls > 2 else None

    run = synthesize(BOOKSHELF_ID, n=6, categories=["parallel"], seed=3, admit=admit)
    assert len(run.tasks) == 6 and all(sum(len(turn) for turn in t.ground_truth) <= 2 for t in run.tasks)
    refused = run.dropped["parallel: answer past the token budget"]
    assert refused > 0 and run.stats["dropped_reasons"]["parallel: answer past the token budget: 3 calls > 2"] > 0
    assert f"answer past the token budget ({refused}): 3 calls > 2" in run.table()
    s = run.stats
    assert s["candidates"] == s["kept"] + sum(s["dropped"].values())


# -- the CLI -------------------------------------------------------------------------------------


def test_a_tokenizer_without_max_answer_tokens_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InftoolError, match=r"--tokenizer counts tokens for --max-answer-tokens N only"):
        _cli(["synth", BOOKSHELF_ID, "--n", "6", "--tokenizer", "embedded", "--out", str(out)])
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="counting tokens needs transformers")
def test_synth_keeps_answers_within_max_answer_tokens_by_the_tokenizers_template(tmp_path, capsys):
    from inftool_env.llm.tokenizers import load_tokenizer
    from inftool_env.synth.budget import TemplateOnly, answer_tokens

    out = tmp_path / "out"
    with pytest.raises(InftoolError, match="--tokenizer /nowhere: no such directory"):
        _cli(["synth", BOOKSHELF_ID, "--n", "6", "--max-answer-tokens", "60", "--tokenizer", "/nowhere",
              "--out", str(out)])  # fmt: skip
    assert not out.exists()  # refused before any work
    argv = ["synth", BOOKSHELF_ID, "--n", "6", "--categories", "parallel", "--seed", "3", "--out", str(out)]
    assert _cli([*argv, "--max-answer-tokens", "60"]) == 0
    chat = TemplateOnly(load_tokenizer("embedded"))
    kept = load_tasks(out / "tasks.jsonl")
    assert len(kept) == 6 and max(answer_tokens(chat, t) for t in kept) <= 60
    refused = json.loads((out / "stats.json").read_text())["dropped"]["parallel: answer past the token budget"]
    assert f"answer past the token budget ({refused}): " in capsys.readouterr().out
    assert _cli(argv) == 0  # without the flag, the same seed keeps longer answers
    assert max(answer_tokens(chat, t) for t in load_tasks(out / "tasks.jsonl")) > 60


def test_synth_warns_of_the_operations_its_spec_lost_as_check_and_rollout_do(tmp_path, capsys):
    # serve and check named them; synth said nothing, and no task used them.
    spec = tmp_path / "shop.json"
    ok = {"200": {"description": "ok"}}
    owner = {"$ref": "#/components/schemas/Owner"}
    spec.write_text(_openapi({
        "/pets": {"get": {"operationId": "listPets", "summary": "List the pets.", "responses": ok, "parameters": [
            {"name": "species", "in": "query", "required": True, "schema": {"type": "string"}}]}},
        "/owners": {"post": {"operationId": "addOwner", "summary": "Add an owner.", "responses": ok,
                             "requestBody": {"content": {"application/json": {"schema": owner}}}}},
    }))  # fmt: skip
    out = tmp_path / "out"
    assert _cli(["synth", str(spec), "--n", "2", "--categories", "simple", "--out", str(out)]) == 0
    warned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARN")]
    assert len(warned) == 1 and "1 operation skipped: " in warned[0] and "Owner" in warned[0]
    main(["check", str(next(out.glob("*-v0.toml")))])
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARN")] == warned
    # rollout's episodes run in workers that build their own envs: it said nothing
    main(
        [
            "rollout",
            str(next(out.glob("*-v0.toml"))),
            "--policy",
            "oracle",
            "--n",
            "1",
            "--out",
            str(tmp_path / "r.jsonl"),
        ]
    )
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARN")] == warned


def test_a_reused_out_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    # It was refused only once every task was made and the table printed.
    out = tmp_path / "out"
    assert _cli(["synth", BOOKSHELF_ID, "--n", "2", "--categories", "simple", "--out", str(out)]) == 0
    capsys.readouterr()

    def no_work(*args, **kwargs):
        raise AssertionError("synthesized before --out was checked")

    monkeypatch.setattr(synth_run, "synthesize", no_work)
    spec = tmp_path / "one.json"
    spec.write_text(json.dumps([{"name": "rename", "description": "Rename a file.", "parameters": {
        "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}]))  # fmt: skip
    with pytest.raises(InftoolError, match=r"holds another env's synthesized tasks \(Bookshelf-v0.toml\); pick"):
        _cli(["synth", str(spec), "--n", "2", "--out", str(out)])
    assert capsys.readouterr().out == ""
