"""``inftool evolve`` end to end on the real Bookshelf server, the real synthesis and the real GRPO
trainer on a tiny randomly initialised Qwen2 (real tokenizer). The one fake is at the model boundary
of the evaluations: a scripted policy that plays the ground truth except on ``parallel`` tasks, where
it makes only the first call (the embedded model's measured gap), so the report has a known worst
cell. BFCL's data never reaches a training set: the guard scans every task the loop trained on."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inftool_env.errors import InftoolError
from inftool_env.registration import default_registry
from inftool_env.tasks import Task, load_tasks
from tests.train.tiny import tiny_qwen2

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="the loop trains: it needs torch and transformers (the `model` extra)",
)
ENV = "inftool/Bookshelf-v0"
EVOLVE = "inftool_env.train.loop.evolve"  # the module (the package exports a function of that name)
GRPO = {"steps": 1, "tasks_per_step": 2, "group": 2, "max_new_tokens": 48, "train_layers": 1, "lr": 1e-3,
        "device": "cpu"}  # fmt: skip


class FirstCallOnly:
    """Makes only the first of a turn's ground-truth calls (then answers): fails ``parallel``."""

    def __init__(self, task: Task) -> None:
        from inftool_env.policies.oracle import OraclePolicy

        self.oracle = OraclePolicy(task)

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        action = await self.oracle.act(observation)
        if action.get("tool_calls"):
            action = {**action, "tool_calls": action["tool_calls"][:1]}
        return action


class Scripted:
    """The evaluated 'model': remembers which policy string each evaluation asked for."""

    asked: list[str] = []

    def __init__(self, spec: str) -> None:
        Scripted.asked.append(spec)

    def __call__(self, task: Task) -> Any:
        from inftool_env.policies.oracle import OraclePolicy

        return FirstCallOnly(task) if task.category == "parallel" else OraclePolicy(task)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[Scripted]:
    E = importlib.import_module(EVOLVE)

    Scripted.asked = []
    monkeypatch.setattr(E, "_policy", Scripted)
    return Scripted


def config(tiny: Path, **overrides: Any) -> Any:
    from inftool_env.train.loop import EvolveConfig

    # A tiny model's 48-token turns fit no Bookshelf parallel answer, which these tests train on: the
    # budget (fit_budget) has its own test.
    base = {"sources": [ENV], "policy": str(tiny), "rounds": 2, "tasks_per_round": 10, "eval_tasks": 16,
            "eval_via": "hf", "grpo": GRPO, "fit_budget": False}  # fmt: skip
    return EvolveConfig(**{**base, **overrides})


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_two_rounds_follow_the_report_write_every_file_and_resume_after_an_interrupt(
    tiny: Path, scripted: type[Scripted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inftool_env.synth as synth

    E = importlib.import_module(EVOLVE)

    calls: Counter[int] = Counter()
    real_synthesize = synth.synthesize

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[kwargs["round"]] += 1
        if kwargs["round"] == 2 and calls[2] == 1:  # Ctrl-C in the middle of round 2's synthesis
            real_synthesize(*args, **kwargs).write(tmp_path / "run" / "round_2" / "tasks" / "0-inftool-Bookshelf-v0")
            raise KeyboardInterrupt
        return real_synthesize(*args, **kwargs)

    monkeypatch.setattr(synth, "synthesize", counted)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        E.evolve(config(tiny), out, progress=False)
    state = json.loads((out / "state.json").read_text())
    assert state["done"] == ["heldout", "0/eval", "1/plan", "1/synth", "1/train", "1/eval", "2/plan"]
    assert list(state["seconds"]) == state["done"]  # each finished stage's wall time; the interrupted one's none
    with pytest.raises(InftoolError, match="--resume"):
        E.evolve(config(tiny), out, progress=False)
    with pytest.raises(InftoolError, match="different settings"):
        E.evolve(config(tiny, tasks_per_round=11), out, resume=True, progress=False)
    # Ctrl-C again, in round 2's training after its last step was saved and before its checkpoint was written:
    # the next resume continues that training run (same tasks, so its state is taken) to the same end.
    M = importlib.import_module("inftool_env.train.grpo.model")
    real_save, cut = M.save_checkpoint, []

    def save_checkpoint(model: Any, tokenizer: Any, target: Path) -> Path:
        if "round_2" in str(target) and not cut:
            cut.append(target)
            raise KeyboardInterrupt
        return real_save(model, tokenizer, target)

    monkeypatch.setattr(M, "save_checkpoint", save_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        E.evolve(config(tiny), out, resume=True, progress=False)
    assert "2/train" not in json.loads((out / "state.json").read_text())["done"]
    T = importlib.import_module("inftool_env.train.grpo.trainer")
    real_rollouts, steps_played = T.rollout_groups, []

    async def rollout_groups(*args: Any, **kwargs: Any) -> Any:
        steps_played.append(kwargs["step"])
        return await real_rollouts(*args, **kwargs)

    monkeypatch.setattr(T, "rollout_groups", rollout_groups)
    table = E.evolve(config(tiny), out, resume=True, progress=False)
    assert calls == {0: 1, 1: 1, 2: 2}  # finished stages were not redone; the interrupted one was
    assert cut and steps_played == []  # round 2's saved step was not played again
    assert [m["step"] for m in lines(out / "round_2" / "train" / "metrics.jsonl")] == [0]

    # every stage's files, per round
    source = "0-inftool-Bookshelf-v0"
    held = load_tasks(out / "heldout" / source / "tasks.jsonl")  # 16 asked, and near misses' twins beside them
    assert sum("companion_of" not in t.provenance for t in held) == 16
    for r in (0, 1, 2):
        assert (out / f"round_{r}" / "eval" / source / "trajectories.jsonl").is_file()
        assert json.loads((out / f"round_{r}" / "eval" / "report.json").read_text())["overall"]["n"] == len(held)
    for r in (1, 2):
        rd = out / f"round_{r}"
        for name in (f"plan/{source}.json", f"plan/{source}.txt", f"tasks/{source}/tasks.jsonl",
                     f"tasks/{source}/train_tasks.jsonl", f"tasks/{source}/allocation.json", "train/metrics.jsonl",
                     "train/rollouts.jsonl", "train/task_success.json", "train/checkpoint/config.json"):  # fmt: skip
            assert (rd / name).is_file(), name
    assert scripted.asked == [f"hf:{p}?max_tokens=128&temperature=0" for p in
                              (tiny, out / "round_1/train/checkpoint", out / "round_2/train/checkpoint")]  # fmt: skip

    # the allocation follows the report: parallel fails, so its cells get the most tasks
    report = json.loads((out / "round_0" / "eval" / "report.json").read_text())
    assert report["categories"]["parallel"]["accuracy"] == 0.0
    assert all(v["accuracy"] == 1.0 for c, v in report["categories"].items() if c != "parallel")
    assert {e["category"] for e in report["errors"]} == {"parallel"}
    plan = json.loads((out / "round_1" / "plan" / f"{source}.json").read_text())
    counts = {(c["tool"], c["category"]): c["count"] for c in plan["allocation"]}
    top = max(counts.values())
    assert {cat for (_, cat), k in counts.items() if k == top} == {"parallel"}
    by_category = Counter()
    for (_, cat), k in counts.items():
        by_category[cat] += k
    assert by_category.most_common(1)[0][0] == "parallel"
    held_ids = {t.id for t in load_tasks(out / "heldout" / source / "tasks.jsonl")}
    assert not held_ids & {t["id"] for t in plan["hard_tasks"]}  # held-out tasks never parent training tasks
    trained = load_tasks(out / "round_1" / "tasks" / source / "train_tasks.jsonl")
    assert Counter(t.category for t in trained)["parallel"] >= max(Counter(t.category for t in trained).values()) - 1
    assert any(t.category == "irrelevance" for t in trained)  # restraint stays in the training mix
    round2 = load_tasks(out / "round_2" / "tasks" / source / "train_tasks.jsonl")
    assert any(t.provenance.get("round") == 1 for t in round2)  # earlier rounds' tasks are replayed
    plan2 = json.loads((out / "round_2" / "plan" / f"{source}.json").read_text())
    assert sum(c["seen"] for c in plan2["allocation"]) > 16  # steered by training rollouts too

    # metrics, plot and the closing table
    metrics = lines(out / "metrics.jsonl")
    assert [(m["kind"], m["round"]) for m in metrics] == [("eval", 0), ("train", 1), ("eval", 1), ("train", 2),
                                                          ("eval", 2)]  # fmt: skip
    assert metrics[1]["steps"] == 1 and metrics[1]["reward_mean"] is not None
    assert (out / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.txt").read_text().strip() == table
    assert re.search(r"parallel\s+0\.0%\s+0\.0%\s+\+0\.0", table) and "all held-out" in table
    seconds = json.loads((out / "state.json").read_text())["seconds"]
    assert set(seconds) == set(json.loads((out / "state.json").read_text())["done"])
    times = table.split("\n\n")[-1].splitlines()  # where the time went: each kind of stage, its runs summed
    assert re.fullmatch(r"wall time of the finished stages: \d+m\d\ds", times[0])
    assert [line.split()[0] for line in times[2:]] == ["heldout", "eval", "plan", "synth", "train"]
    assert [int(line.split()[-1]) for line in times[2:]] == [1, 3, 2, 2, 2]
    R = importlib.import_module("inftool_env.train.loop.report")  # a run folder from before stages were timed:
    assert R.format_times({}, untimed=9).startswith("wall time of the finished stages: 0m00s (9 finished before")

    # the guard: nothing BFCL wrote reaches what the loop trained on
    trained_all = [t for p in sorted(out.glob("round_*/tasks/*/train_tasks.jsonl")) for t in load_tasks(p)]
    assert trained_all and bfcl_leaks(trained_all) == []
    entry, tainted = bfcl_sample()  # the guard can fail: a BFCL entry slipped into a training set is caught
    leaks = bfcl_leaks([*trained_all, tainted])
    assert len(leaks) == 1 and leaks[0].startswith(tainted.id), (entry["id"], leaks)


def test_an_answers_tokens_are_what_the_trainer_measures_of_the_oracles_episode(tiny: Path) -> None:
    """Synthesis's budget check renders a task's answer without playing it; the trainer measures the
    verified episode the oracle played. On synthesized Bookshelf tasks of every category the two agree."""
    import asyncio

    from transformers import AutoTokenizer

    from inftool_env.synth import synthesize
    from inftool_env.synth.budget import TemplateOnly, answer_tokens
    from inftool_env.train.grpo.rollout import EnvPool
    from inftool_env.train.grpo.sft import oracle_examples

    tasks = synthesize(ENV, n=16, seed=0).tasks
    chat = TemplateOnly(AutoTokenizer.from_pretrained(tiny))
    pool = EnvPool([(ENV, tasks)])

    async def played() -> list[Any]:
        try:
            return await oracle_examples(pool, chat, seed=0)
        finally:
            await pool.close()

    measured = {e.task_id: e.longest for e in asyncio.run(played())}
    assert len(measured) == len(tasks) and len({t.category for t in tasks}) >= 7
    assert {t.id: answer_tokens(chat, t) for t in tasks} == measured
    assert max(measured.values()) > 60  # a parallel answer: the budget below has something to refuse


def test_the_budget_keeps_an_answer_of_exactly_its_tokens_and_refuses_a_template_that_renders_nothing(
    tiny: Path,
) -> None:
    from transformers import AutoTokenizer

    from inftool_env.synth.budget import TemplateOnly, answer_tokens, within_budget

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    task = load_tasks(Path(__file__).resolve().parents[2] / "servers" / "bookshelf" / "tasks.jsonl")[0]
    needs = answer_tokens(TemplateOnly(tokenizer), task)
    assert within_budget(tokenizer, needs)(task) is None  # as the trainer: only a longer answer is left out
    assert within_budget(tokenizer, needs - 1)(task) == f"answer past the token budget: {needs} tokens > {needs - 1}"
    tokenizer.chat_template = None
    with pytest.raises(InftoolError, match=r"^--tokenizer x: its chat template renders no conversation \(.+\)$"):
        within_budget(tokenizer, 128, name="--tokenizer x")


def test_a_run_from_before_the_budget_resumes_only_as_it_was_made(tiny: Path, tmp_path: Path) -> None:
    """Its config.json has no fit_budget: it synthesized without one, and a resume does not turn it on unsaid."""
    E = importlib.import_module(EVOLVE)
    saved = json.loads(config(tiny).model_dump_json())
    del saved["fit_budget"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    (tmp_path / "state.json").write_text(json.dumps({"done": ["heldout"], "seconds": {"heldout": 1.0}}))
    with pytest.raises(InftoolError, match="fit_budget False -> True"):
        E.Evolve(config(tiny, fit_budget=True), tmp_path, resume=True, progress=False)
    assert E.Evolve(config(tiny, fit_budget=False), tmp_path, resume=True, progress=False).done == ["heldout"]


def test_the_loop_synthesizes_only_answers_that_fit_a_turns_tokens(
    tiny: Path, scripted: type[Scripted], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Held-out tasks within the evaluation's max_tokens, training tasks within the trainer's; a refused
    candidate is a counted drop and another is drawn in its place."""
    from transformers import AutoTokenizer

    from inftool_env.synth.budget import TemplateOnly, answer_tokens

    E = importlib.import_module(EVOLVE)
    run = E.Evolve(config(tiny, fit_budget=True, eval_max_tokens=60, eval_tasks=8, tasks_per_round=8,
                          categories=["simple", "parallel", "irrelevance"]), tmp_path)  # fmt: skip
    run.heldout()
    run.evaluate(0)
    run.plan(1)
    run.synth(1)
    chat = TemplateOnly(AutoTokenizer.from_pretrained(tiny))
    source = tmp_path / "heldout" / "0-inftool-Bookshelf-v0"
    held = load_tasks(source / "tasks.jsonl")
    trained = load_tasks(tmp_path / "round_1" / "tasks" / "0-inftool-Bookshelf-v0" / "train_tasks.jsonl")
    assert held and max(answer_tokens(chat, t) for t in held) <= 60
    assert trained and max(answer_tokens(chat, t) for t in trained) <= GRPO["max_new_tokens"]
    assert any(t.category == "parallel" for t in held)  # two short calls fit 60 tokens
    dropped = json.loads((source / "stats.json").read_text())["dropped"]
    refused = dropped.get("parallel: answer past the token budget", 0)
    assert refused > 0 and f"{ENV}, held-out: {refused} synthesized tasks needed more than 60 tokens" in (
        capsys.readouterr().out
    )


def test_bfcl_sources_are_refused_and_bad_settings_fail_before_any_work(tiny: Path, tmp_path: Path) -> None:
    E = importlib.import_module(EVOLVE)

    manifest = default_registry().entry("inftool/BfclMathAPI-v0").base_dir / "BfclMathAPI-v0.toml"
    for source in ("bfcl:MathAPI", "inftool/BfclMathAPI-v0", str(manifest), "stdio:inftool serve bfcl:MathAPI"):
        with pytest.raises(InftoolError, match="BFCL"):
            E.evolve(config(tiny, sources=[source]), tmp_path / "x", progress=False)
    with pytest.raises(InftoolError, match="grpo settings: group"):
        E.evolve(config(tiny, grpo={"group": 1}), tmp_path / "x", progress=False)
    # What the first training stage would find only after the held-out synthesis and evaluation, found now.
    with pytest.raises(InftoolError, match="grpo settings: temperature 0 samples"):
        E.evolve(config(tiny, grpo={"temperature": 0}), tmp_path / "x", progress=False)
    with pytest.raises(InftoolError, match=r"train_layers \(--train-layers\) must be between 1 and 2 .*, not 9"):
        E.evolve(config(tiny, grpo={"train_layers": 9}), tmp_path / "x", progress=False)
    # A generation-only model string names no weights to train: refused before a run folder exists, so the
    # corrected command is not told the folder already holds a run.
    with pytest.raises(InftoolError, match="for this model: 'embedded'"):
        E.evolve(config(tiny, policy="gguf:embedded?max_tokens=128"), tmp_path / "x", progress=False)
    with pytest.raises(InftoolError, match="not an HF model directory"):
        E.evolve(config(tiny, policy=str(tmp_path)), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    # --resume where no run was started (a mistyped --out) must not start a new one.
    with pytest.raises(InftoolError, match="nothing to resume"):
        E.evolve(config(tiny), tmp_path / "x", resume=True, progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_registers_evolve_and_reports_mistakes_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from inftool_env.train.loop.cli import add_commands

    parser = argparse.ArgumentParser(prog="inftool")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evolve", ENV, "--rounds", "3", "--eval-bfcl", "parallel,irrelevance",
                              "--eval-bfcl-limit", "50", "--grpo", "[1]"])  # fmt: skip
    assert args.rounds == 3 and args.eval_bfcl_limit == 50
    with pytest.raises(InftoolError, match="JSON object"):
        args.run(args)
    args = parser.parse_args(["evolve", ENV, "--irrelevance-share", "0.3", "--replay-share", "0"])
    assert (args.irrelevance_share, args.replay_share, args.keep_best) == (0.3, 0.0, True)
    assert not parser.parse_args(["evolve", ENV, "--no-keep-best"]).keep_best
    assert (
        parser.parse_args(["evolve", ENV]).fit_budget
        and not parser.parse_args(["evolve", ENV, "--no-fit-budget"]).fit_budget
    )
    assert parser.parse_args(["evolve", ENV]).foreign_requests == 0
    assert parser.parse_args(["evolve", ENV, "--foreign-requests", "8"]).foreign_requests == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["evolve", ENV, "--foreign-requests", "-1"])
    assert "0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["evolve", ENV, "--irrelevance-share", "1.5"])
    assert "share in [0, 1)" in capsys.readouterr().err
    args = parser.parse_args(["evolve", ENV, "--eval-bfcl", "paralel", "--out", "/nonexistent/x"])
    with pytest.raises(InftoolError, match="paralel"):
        args.run(args)


# -- the BFCL guard ----------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _bfcl_texts() -> tuple[dict[str, str], dict[str, str]]:
    """(normalised question text -> entry id, normalised function doc -> function name) over BFCL v4."""
    from inftool_env.backends.bfcl import bfcl_entries
    from inftool_env.eval.bfcl_data import CATEGORIES

    questions: dict[str, str] = {}
    docs: dict[str, str] = {}
    for name, cat in CATEGORIES.items():
        if cat.kind == "not_run":
            continue
        for entry, _ in bfcl_entries(name):
            for turn in entry.get("question") or []:
                for message in turn if isinstance(turn, list) else [turn]:
                    text = _norm(str(message.get("content", "")) if isinstance(message, dict) else str(message))
                    if len(text) >= 24:
                        questions[text] = entry["id"]
            for fn in entry.get("function") or []:
                doc = _norm(str(fn.get("description", "")))
                if len(doc) >= 24:
                    docs[doc] = fn.get("name", "")
    return questions, docs


def bfcl_leaks(tasks: list[Task]) -> list[str]:
    """Each training task holding a BFCL question, or offering a tool with a BFCL function's doc."""
    questions, docs = _bfcl_texts()
    leaks = []
    for task in tasks:
        said = _norm(" ".join([*task.turns, task.goal, task.system_prompt]))
        hit = next((i for q, i in questions.items() if q in said), None)
        offered = task.bfcl.docs if task.bfcl else []
        doc_hit = next((docs[_norm(str(d.get("description", "")))] for d in offered
                        if _norm(str(d.get("description", ""))) in docs), None)  # fmt: skip
        if hit or doc_hit:
            leaks.append(f"{task.id}: {hit or ''} {doc_hit or ''}".strip())
    return leaks


def bfcl_sample() -> tuple[dict[str, Any], Task]:
    from inftool_env.backends.bfcl import bfcl_entries

    entry, _ = next(bfcl_entries("parallel", limit=1))
    question = entry["question"][0][0]["content"]
    return entry, Task(id=f"leak-{entry['id']}", category="parallel", turns=[question])


def test_a_round_on_gguf_exports_the_checkpoint_and_evaluates_the_export(
    tiny: Path, scripted: type[Scripted], tmp_path: Path
) -> None:
    """eval_via gguf (the default): the starting HF model converted once, each checkpoint exported
    against it, and each evaluation asks for the GGUF file that llama.cpp then loads."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("the `gguf` extra is not installed")
    import llama_cpp

    E = importlib.import_module(EVOLVE)
    out = tmp_path / "run"
    grpo = {**GRPO, "sft_warmup_steps": 1}  # a supervised step on verified episodes: the weights surely move
    E.evolve(config(tiny, rounds=1, eval_tasks=8, tasks_per_round=6, eval_via="gguf", grpo=grpo), out, progress=False)
    files = (out / "base.gguf", out / "round_1" / "model.gguf")
    assert scripted.asked == [f"gguf:{p}?max_tokens=128&temperature=0" for p in files]
    exported = json.loads((out / "round_1" / "export.json").read_text())
    assert exported["kept"] + len(exported["replaced"]) == 27
    assert exported["replaced"] and all(n.startswith(("blk.1.", "output_norm")) for n in exported["replaced"])
    engine = llama_cpp.Llama(str(out / "round_1" / "model.gguf"), n_ctx=64, verbose=False)
    engine.close()


class Declines:
    """A collapsed policy: answers every request in text, calling nothing."""

    def __init__(self, task: Task) -> None:
        pass

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {"content": "I cannot help with that."}


def test_a_round_that_scores_worse_is_not_built_on(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Round 1's checkpoint collapses on the held-out split (as an embedded-model run once did): round 2
    plans from and trains round 0's policy, and the closing table names the best round."""
    E = importlib.import_module(EVOLVE)

    class CollapsesAfterTraining(Scripted):
        def __call__(self, task: Task) -> Any:
            return Declines(task) if "/round_" in Scripted.asked[-1] else super().__call__(task)

    Scripted.asked = []
    monkeypatch.setattr(E, "_policy", CollapsesAfterTraining)
    out = tmp_path / "run"
    table = E.evolve(config(tiny), out, progress=False)
    assert json.loads((out / "round_1" / "train" / "start.json").read_text())["from_round"] == 0
    start = json.loads((out / "round_2" / "train" / "start.json").read_text())
    assert start["from_round"] == 0 and start["model"] == str(tiny)
    assert [m.get("from_round") for m in lines(out / "metrics.jsonl") if m["kind"] == "train"] == [0, 0]
    best = json.loads((out / "round_0" / "eval" / "report.json").read_text())["overall"]["accuracy"]
    assert f"best on the held-out split: round 0 ({100 * best:.1f}%), hf:{tiny}" in table
    assert (out / "summary.txt").read_text().strip() == table


def test_categories_given_comma_separated_reach_synthesis_and_the_plan_alike() -> None:
    # Synthesis split "simple,parallel"; the plan took it for one unknown category and failed at round 1.
    E = importlib.import_module(EVOLVE)

    assert E.EvolveConfig(sources=["x"], categories=["simple,parallel", "irrelevance"]).categories == [
        "simple", "parallel", "irrelevance"]  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown categories \['telepathy'\]"):
        E.EvolveConfig(sources=["x"], categories=["simple,telepathy"])
