"""`inftool eval bfcl`: policies through our envs on the real BFCL v4 data, and scoring of results
files in BFCL's own format."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from inftool_env.cli import main
from inftool_env.eval.bfcl import evaluate_bfcl, score_path
from inftool_env.eval.bfcl_data import CATEGORIES, GROUPS, resolve_categories
from inftool_env.eval.bfcl_known import UNPASSABLE
from inftool_env.eval.bfcl_report import BfclReport, bfcl_aggregates, format_report
from inftool_env.llm import Completion
from inftool_env.tasks import Task
from tests.rewards.cases import other_value
from tests.rewards.official import official_python

RUNNABLE = [n for n, c in CATEGORIES.items() if c.kind != "not_run"]


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The oracle on the first 30 entries of every category, through the CLI."""
    out = tmp_path_factory.mktemp("bfcl")
    assert main(["eval", "bfcl", "--policy", "oracle", "--limit", "30", "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_the_oracle_passes_every_entry_whose_ground_truth_can_pass(oracle_run):
    _, report = oracle_run
    assert set(report["categories"]) == set(RUNNABLE)
    failed = {e["id"]: e["error_type"] for e in report["entries"] if not e["valid"] and not e["known_issue"]}
    assert failed == {}
    excused = {e["id"] for e in report["entries"] if e["known_issue"]}
    expected = {e["id"] for e in report["entries"] if e["id"] in UNPASSABLE or e["category"] == "live_relevance"}
    assert excused == expected == {"parallel_multiple_12", "parallel_multiple_26"} | {
        e["id"] for e in report["entries"] if e["category"] == "live_relevance"}  # fmt: skip
    assert set(report["not_run"]) == {n for n, c in CATEGORIES.items() if c.kind == "not_run"}
    assert report["aggregates"]["multi_turn"] == 1.0 and report["aggregates"]["irrelevance"] == 1.0


def test_results_round_trip_through_the_bfcl_format(oracle_run):
    out, report = oracle_run
    files = sorted(p.name for p in (out / "results").iterdir())
    assert files == sorted(f"BFCL_v4_{c}_result.json" for c in RUNNABLE)
    rescored = anyio.run(lambda: score_path(out / "results", progress=False))
    ours = {e["id"]: e["valid"] for e in report["entries"]}
    assert {e.id: e.valid for e in rescored.entries} == ours
    assert rescored.missing["simple_python"] == 400 - 30  # partial results are reported, not scored


def test_the_summary_table_and_plot_are_written(oracle_run, capsys):
    out, _ = oracle_run
    summary = (out / "summary.txt").read_text()
    assert "multi_turn_long_context" in summary and "web_search_base" in summary and "not run" in summary
    assert (out / "accuracy.png").stat().st_size > 10_000 or not _has_matplotlib()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


class _Says:
    """A policy that answers every turn with fixed text (a message dict)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, task: Task) -> _Says:
        return self

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": self.text}


@pytest.mark.parametrize(
    ("text", "fmt", "irrelevance_ok"),
    [("I cannot help with that.", "openai", True), ("[broken_call(x=", "bfcl", False)],
    ids=["prose", "undecodable"],
)
def test_no_call_wins_only_irrelevance_and_garbage_wins_nothing(text, fmt, irrelevance_ok):
    categories = resolve_categories(["simple_python", "irrelevance", "multi_turn_base"])
    report = anyio.run(lambda: evaluate_bfcl("says", _Says(text), categories, limit=10, format=fmt, progress=False))
    acc = {c: v["accuracy"] for c, v in report.accuracy().items()}
    assert acc == {"simple_python": 0.0, "irrelevance": 1.0 if irrelevance_ok else 0.0, "multi_turn_base": 0.0}
    errors = report.errors_by_tool()
    assert sum(errors.get("calculate_triangle_area", {}).values()) == 1  # simple_python_0's function


class _CutShort:
    """A chat policy whose every reply ran into its token limit after the first of its calls (the one
    the entry's ground truth names first), as a completion with finish_reason "length" says."""

    def __init__(self) -> None:
        self.samples: list[Completion] = []

    def __call__(self, task: Task) -> _CutShort:
        fresh = _CutShort()
        fresh.task = task
        return fresh

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        first = self.task.ground_truth[0][0]
        call = {"id": "c0", "type": "function", "function": {"name": first.name, "arguments": first.arguments}}
        message = {"role": "assistant", "content": "", "tool_calls": [call]}
        self.samples.append(Completion(message, finish_reason="length" if not self.samples else "stop"))
        return message if len(self.samples) == 1 else {"role": "assistant", "content": "Done."}


def test_failures_with_a_reply_cut_at_the_token_limit_are_counted_and_said(tmp_path):
    categories = resolve_categories(["simple_python", "parallel"])
    report = anyio.run(lambda: evaluate_bfcl("cut", _CutShort(), categories, limit=6, progress=False))
    acc = report.accuracy()
    # Parallel asks for several calls and got one: each failure was cut. Simple's one call is whole, but its
    # reply was cut all the same (no stop token), so its failures, if any, are counted too.
    assert acc["parallel"]["correct"] == 0 and acc["parallel"]["failed_cut"] == 6
    assert acc["simple_python"]["failed_cut"] == acc["simple_python"]["total"] - acc["simple_python"]["correct"]
    assert all(e.cut for e in report.entries)
    assert any("cut at the token limit" in err for e in report.entries if not e.valid for err in e.errors)
    assert "6 failed with a reply cut at the token limit" in format_report(report)
    fine = anyio.run(lambda: evaluate_bfcl("says", _Says("No."), categories, limit=2, progress=False))
    assert not any(e.cut for e in fine.entries) and "cut" not in format_report(fine)


def test_replies_that_write_a_call_as_text_are_counted_and_said():
    # BFCL reads a fenced JSON call as no call at all: a pass on irrelevance, a failure where a call was
    # asked. The report keeps the verdict and says how many such replies it holds.
    fenced = '```json\n{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}\n```'
    categories = resolve_categories(["simple_python", "irrelevance"])
    report = anyio.run(lambda: evaluate_bfcl("as-text", _Says(fenced), categories, limit=3, progress=False))
    acc = report.accuracy()
    assert acc["irrelevance"]["correct"] == 3 and acc["irrelevance"]["call_as_text"] == 3
    assert acc["simple_python"]["correct"] == 0 and acc["simple_python"]["call_as_text"] == 3
    assert format_report(report).count("3 with a call written as text") == 2
    prose = anyio.run(lambda: evaluate_bfcl("says", _Says("No."), categories, limit=2, progress=False))
    assert not any(e.call_as_text for e in prose.entries) and "as text" not in format_report(prose)


def test_bfcl_prompting_style_results_are_scored(tmp_path):
    results = tmp_path / "BFCL_v4_simple_python_result.json"
    results.write_text(
        json.dumps({"id": "simple_python_0", "result": "[calculate_triangle_area(base=10, height=5)]"}) + "\n"
        + json.dumps({"id": "simple_python_1", "result": "[math.factorial(number=6)]"}) + "\n"
        + json.dumps({"id": "simple_python_2", "result": "[math.hypot(x=4, y=5"}) + "\n"
    )  # fmt: skip
    report = anyio.run(lambda: score_path(results, progress=False))
    verdicts = {e.id: (e.valid, e.error_type) for e in report.entries}
    assert verdicts["simple_python_0"] == (True, "")
    assert verdicts["simple_python_1"][0] is False  # factorial of 5 was asked
    assert verdicts["simple_python_2"] == (False, "ast_decoder:decoder_failed")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "bfcl"], "--policy is required"),
        (["eval", "bfcl", "--policy", "oracle", "--from-results", "x"], "not both"),
        (["eval", "bfcl", "--policy", "oracle", "--categories", "simple_cobol"], "unknown BFCL category"),
        (["eval", "bfcl", "--from-results", "/nonexistent/results"], "no such file"),
    ],
)
def test_bfcl_command_mistakes_are_one_line_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_bad_results_line_names_its_file_and_line(capsys, tmp_path):
    bad = tmp_path / "BFCL_v4_simple_python_result.json"
    bad.write_text(json.dumps({"id": "simple_python_0", "result": "[]"}) + "\n{not json\n")
    assert main(["eval", "bfcl", "--from-results", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 2" in err


def test_v4_aggregates_follow_bfcl_weights():
    scores = dict.fromkeys(GROUPS["non_live"], (1.0, 10)) | {"irrelevance": (0.5, 10), "live_irrelevance": (1.0, 10)}
    agg = bfcl_aggregates(scores)
    assert agg["non_live"] == 1.0 and agg["irrelevance"] == 0.75 and agg["live"] == 0.0
    assert agg["overall"] == pytest.approx(0.10 * 1.0 + 0.10 * 0.75)
    live = bfcl_aggregates({"live_simple": (1.0, 30), "live_multiple": (0.0, 10)})["live"]
    assert live == pytest.approx(0.75)  # weighted by entry count, as BFCL weights the live categories


def test_an_empty_report_has_no_categories():
    assert BfclReport("none", [], {}).accuracy() == {}


class _Noisy:
    """The oracle, but every third task's first argument is changed: a mix of right and wrong answers."""

    def __call__(self, task: Task) -> Any:
        from inftool_env.policies.oracle import OraclePolicy

        if zlib.crc32(task.id.encode()) % 3 or not task.ground_truth or not any(task.ground_truth):
            return OraclePolicy(task)
        turn = next(k for k, calls in enumerate(task.ground_truth) if calls)
        first = task.ground_truth[turn][0]
        key = next(iter(first.arguments), None)
        args = dict(first.arguments)
        if key is not None:
            args[key] = other_value(args[key])
        calls = [first.model_copy(update={"arguments": args}), *task.ground_truth[turn][1:]]
        truth = [*task.ground_truth[:turn], calls, *task.ground_truth[turn + 1 :]]
        return OraclePolicy(task.model_copy(update={"ground_truth": truth}))


@pytest.mark.skipif(not official_python().exists(), reason="BFCL's own harness is not installed (.venv-bfcl)")
def test_our_results_files_get_the_same_verdicts_from_bfcls_own_harness(tmp_path):
    categories = resolve_categories(["all"])
    report = anyio.run(lambda: evaluate_bfcl("noisy", _Noisy(), categories, limit=12, out=tmp_path, progress=False))
    ours = {e.id: e.valid for e in report.entries}
    proc = subprocess.run(  # noqa: S603 - our own script, our own interpreter
        [str(official_python()), str(Path(__file__).with_name("official_score_results.py"))],
        input=json.dumps({"results": str(tmp_path / "results")}), capture_output=True, text=True, check=True,
        timeout=600,
    )  # fmt: skip
    theirs = {v["id"]: v["valid"] for v in map(json.loads, proc.stdout.splitlines())}
    assert set(theirs) == set(ours)
    assert 0.2 < sum(ours.values()) / len(ours) < 0.9  # both right and wrong answers were scored
    differ = {i: (ours[i], theirs[i]) for i in ours if ours[i] != theirs[i]}
    print(f"\n{len(ours)} entries over {len(report.accuracy())} categories, {sum(ours.values())} valid; "
          f"{len(differ)} verdicts differ")  # fmt: skip
    assert differ == {}
