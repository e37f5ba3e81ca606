"""`inftool eval bfcl --policy …` and its --out: made, locked and checked before any request, each entry's
result line written as its episode ends, an interrupted run's entries and report kept (marked incomplete),
and no category file of an earlier run left beside a later one's."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from inftool_env.cli import main
from inftool_env.eval.bfcl import evaluate_bfcl
from inftool_env.eval.bfcl_data import resolve_categories
from inftool_env.llm.scripted import ScriptedChat
from inftool_env.policies import ChatPolicyFactory
from inftool_env.tasks import Task

LOCK = ".eval.lock"  # held in --out by a running eval (README)
DECLINE = "I cannot help with that."  # no call: fails simple_python, passes irrelevance


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


class Requests:
    """What the scripted model behind `--policy scripted:…` was asked: each request's number. It declines
    every entry; request number ``interrupt_at`` sends this process SIGINT first: a real Ctrl-C, landing
    while the entry runs."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.interrupt_at: int | None = None
        self.built = 0  # policies built (a real model's load: seconds to minutes)

    def reply(self, messages: list[dict[str, Any]], tools: Any) -> str:
        self.asked.append(len(self.asked) + 1)
        if self.asked[-1] == self.interrupt_at:
            signal.raise_signal(signal.SIGINT)
        return DECLINE


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Requests]:
    import inftool_env.policies as policies

    made = Requests()
    factory = ChatPolicyFactory(ScriptedChat([made.reply], cycle=True), {})

    def build(spec: str, **kwargs: Any) -> ChatPolicyFactory:
        made.built += 1
        return factory

    monkeypatch.setattr(policies, "resolve_policy", build)
    # Python's own SIGINT handler, as in a terminal (a test runner's worker may set another): anyio.run then
    # turns SIGINT into a cancellation of the run, and KeyboardInterrupt once the run has unwound.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield made
    finally:
        signal.signal(signal.SIGINT, previous)


def bfcl(out: Path, *categories: str, limit: int = 3) -> int:
    return main(["eval", "bfcl", "--policy", "scripted:declines", "--categories", ",".join(categories),
                 "--limit", str(limit), "--concurrency", "1", "--out", str(out)])  # fmt: skip


@pytest.fixture
def interrupted(requests: Requests, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """Ctrl-C during the 4th request, irrelevance_0's (its episode still ends: nothing in it waits, where the
    cancellation would land): simple_python's 3 entries and irrelevance_0 ended; irrelevance_1, irrelevance_2
    and live_simple never ran."""
    requests.interrupt_at = 4
    out = tmp_path / "out"
    assert bfcl(out, "simple_python", "irrelevance", "live_simple") == 130
    return out, capsys.readouterr().err


def test_ctrl_c_keeps_the_finished_entries_and_a_report_marked_incomplete(interrupted):
    # Ctrl-C lost every entry of the category running (its file was written when it ended) and the report
    # of those before it (written at the very end).
    out, err = interrupted
    results = out / "results"
    assert sorted(p.name for p in results.iterdir()) == [
        "BFCL_v4_irrelevance_result.json", "BFCL_v4_simple_python_result.json"]  # fmt: skip
    assert ids_in(results / "BFCL_v4_simple_python_result.json") == [f"simple_python_{i}" for i in range(3)]
    assert ids_in(results / "BFCL_v4_irrelevance_result.json") == ["irrelevance_0"]
    report = json.loads((out / "report.json").read_text())
    assert report["incomplete"] is True
    assert report["unfinished"] == {"irrelevance": ["irrelevance_1", "irrelevance_2"]}
    assert report["not_started"] == ["live_simple"]
    assert {c: (v["correct"], v["total"]) for c, v in report["categories"].items()} == {
        "simple_python": (0, 3), "irrelevance": (1, 1)}  # fmt: skip
    assert "INCOMPLETE (interrupted)" in (out / "summary.txt").read_text()
    assert err.splitlines()[-1] == (
        f"inftool: interrupted: 4 entries finished, kept in {results} ({out / 'report.json'} marked incomplete; "
        "not run: 2 entries of irrelevance (irrelevance_1, irrelevance_2), all of live_simple)"
    )
    assert not (out / LOCK).exists()


def test_from_results_scores_an_interrupted_runs_entries(interrupted, tmp_path):
    out, _ = interrupted
    scored = tmp_path / "scored"
    assert main(["eval", "bfcl", "--from-results", str(out / "results"), "--out", str(scored)]) == 0
    report = json.loads((scored / "report.json").read_text())
    assert {c: (v["correct"], v["total"]) for c, v in report["categories"].items()} == {
        "simple_python": (0, 3), "irrelevance": (1, 1)}  # fmt: skip


def test_a_second_run_leaves_no_category_file_of_the_first(requests, tmp_path, capsys):
    # The first run's simple_python file stayed beside the second's, and --from-results scored both runs.
    out = tmp_path / "out"
    assert bfcl(out, "simple_python", "irrelevance", limit=2) == 0
    (out / "notes.txt").write_text("mine")
    assert bfcl(out, "irrelevance", limit=2) == 0
    assert sorted(p.name for p in (out / "results").iterdir()) == ["BFCL_v4_irrelevance_result.json"]
    assert (out / "notes.txt").read_text() == "mine"  # not an eval's file: left alone
    report = json.loads((out / "report.json").read_text())
    assert list(report["categories"]) == ["irrelevance"] and report["incomplete"] is False
    capsys.readouterr()
    assert main(["eval", "bfcl", "--from-results", str(out / "results"), "--out", str(tmp_path / "scored")]) == 0
    assert "simple_python" not in capsys.readouterr().out


def test_a_locked_out_is_refused_in_one_line_before_any_request(requests, tmp_path, capsys):
    # The lock of a running eval was not looked at: a second run wrote into its folder.
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(f"{os.getpid()}\n")  # a live process's: this one
    assert bfcl(out, "simple_python", limit=2) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"inftool: error: {out} is being written by another inftool eval (pid {os.getpid()}); "
        "pick another --out, or wait for it to end"
    ]
    assert requests.asked == [] and requests.built == 0  # refused before the model loaded
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


def test_from_results_refuses_an_out_a_run_is_writing(interrupted, tmp_path, capsys):
    # Scoring took no lock: its report landed in the folder of a run still writing there.
    out, _ = interrupted
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / LOCK).write_text(f"{os.getpid()}\n")
    assert main(["eval", "bfcl", "--from-results", str(out / "results"), "--out", str(busy)]) == 2
    assert "is being written by another inftool eval" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == [LOCK]
    # Scoring a run's results into its own folder: locked while scored, nothing of the run's cleared.
    assert main(["eval", "bfcl", "--from-results", str(out / "results"), "--out", str(out)]) == 0
    assert not (out / LOCK).exists() and len(ids_in(out / "results" / "BFCL_v4_simple_python_result.json")) == 3


@pytest.mark.parametrize("where", ["out", "out/results"])
def test_an_unwritable_out_is_refused_in_one_line_before_any_request(where, requests, tmp_path, capsys):
    # The whole run went first, and only then did writing its results fail.
    out = tmp_path / "out"
    if where == "out/results":
        out.mkdir()
    (tmp_path / where).write_text("mine")  # a file, where a folder is needed
    assert bfcl(out, "simple_python", limit=2) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"inftool: error: {tmp_path / where}: a file, where a folder is needed"]  # fmt: skip
    assert requests.asked == [] and requests.built == 0
    assert (tmp_path / where).read_text() == "mine"


class _WaitsForTheNext:
    """simple_python_0 answers only once simple_python_1's result line is on disk (so its line is written
    after the next one's); the others decline at once."""

    def __init__(self, results: Path, task: Task | None = None) -> None:
        self.results, self.task, self.saw = results, task, [False]

    def __call__(self, task: Task) -> _WaitsForTheNext:
        fresh = _WaitsForTheNext(self.results, task)
        fresh.saw = self.saw
        return fresh

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        assert self.task is not None
        path = self.results / "BFCL_v4_simple_python_result.json"
        with anyio.move_on_after(10):
            while self.task.id == "simple_python_0" and not self.saw[0]:
                self.saw[0] = path.is_file() and "simple_python_1" in path.read_text()
                await anyio.sleep(0.02)
        return {"role": "assistant", "content": DECLINE}


def test_lines_are_written_as_entries_end_and_a_finished_file_is_in_entry_order(tmp_path):
    # Nothing was written before the category ended; once it ends, its file is in entry order again.
    policy = _WaitsForTheNext(tmp_path / "results")
    categories = resolve_categories(["simple_python"])
    anyio.run(lambda: evaluate_bfcl("waits", policy, categories, limit=3, out=tmp_path, concurrency=3,
                                    progress=False))  # fmt: skip
    assert policy.saw == [True]
    assert ids_in(tmp_path / "results" / "BFCL_v4_simple_python_result.json") == [
        "simple_python_0", "simple_python_1", "simple_python_2"]  # fmt: skip


class _CancelsOnThe:
    """Declines; its ``n``th request cancels the run's scope instead, as Ctrl-C cancels a running eval."""

    def __init__(self, n: int) -> None:
        self.n, self.asked = n, 0
        self.scope: anyio.CancelScope | None = None  # made in the run's event loop

    def __call__(self, task: Task) -> _CancelsOnThe:
        return self

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        self.asked += 1
        if self.asked == self.n and self.scope is not None:
            self.scope.cancel()
            await anyio.sleep(1)  # cancelled here
        return {"role": "assistant", "content": DECLINE}


def test_a_cancelled_run_keeps_its_finished_entries_and_an_incomplete_report(tmp_path):
    # What Ctrl-C does to a running eval (a cancellation): the same as the KeyboardInterrupt above.
    policy = _CancelsOnThe(3)
    categories = resolve_categories(["simple_python", "irrelevance"])

    async def run() -> None:
        with anyio.CancelScope() as policy.scope:
            await evaluate_bfcl("cancels", policy, categories, limit=2, out=tmp_path, concurrency=1, progress=False)

    anyio.run(run)
    assert ids_in(tmp_path / "results" / "BFCL_v4_simple_python_result.json") == ["simple_python_0", "simple_python_1"]
    assert not (tmp_path / "results" / "BFCL_v4_irrelevance_result.json").exists()  # none of it ended
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["incomplete"], report["unfinished"], report["not_started"]) == (
        True, {"irrelevance": ["irrelevance_0", "irrelevance_1"]}, [])  # fmt: skip
    assert list(report["categories"]) == ["simple_python"]
    assert not (tmp_path / LOCK).exists()
