"""`inftool eval` of an env and `inftool check`: what a user sees when the run is interrupted, its --out
cannot be written or is held by another eval, its tasks cannot be passed, a flag belongs to the other kind
of eval, or BFCL's own data cannot pass an entry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inftool_env.cli import main
from inftool_env.eval.runner import infrastructure_failures
from tests.conftest import REPO, terminal_sigint

INFTOOL = [sys.executable, "-m", "inftool_env.cli"]
LOCK = ".eval.lock"  # held in --out by a running eval (README)


def test_check_reports_bfcl_known_entries_as_known_issues_not_failures(capsys):
    # The README's command exited 1: FAIL on multi_turn_base_173, listed in eval/bfcl_known.py.
    assert main(["check", "inftool/BfclTravelAPI-v0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "PASS  the oracle solves 49 of 50 tasks; the other 1 is a known issue of BFCL's data:" in lines
    assert (
        "KNOWN multi_turn_base_173: its ground truth breaks BFCL's own tool docs: Invalid arguments for "
        "'close_ticket': at 'ticket_id': 'ticket_001' is not of type 'integer' (inftool_env/eval/bfcl_known.py)"
    ) in lines
    assert not any(line.startswith("FAIL") for line in lines)


def test_eval_of_a_bfcl_env_names_its_known_entries(capsys, tmp_path):
    assert main(["eval", "inftool/BfclTicketAPI-v0", "--policy", "oracle", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "  known issues   multi_turn_base_173: BFCL's own data makes it unpassable (inftool_env/eval/bfcl_known.py)"
    ) in out.splitlines()
    known = json.loads((tmp_path / "summary.json").read_text())["known_issues"]
    assert list(known) == ["multi_turn_base_173"] and "ticket_001" in known["multi_turn_base_173"]


# -- --out: made before any episode, streamed, held ------------------------------------------------------
def test_an_out_that_cannot_be_written_is_refused_before_any_episode(capsys, tmp_path, monkeypatch):
    # It ran every episode first, and only then said the folder could not be made.
    import inftool_env.eval.runner as runner

    def no_episode(*args, **kwargs):
        raise AssertionError("an episode ran before --out was checked")

    monkeypatch.setattr(runner, "run_batch", no_episode)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--out", str(a_file)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"inftool: error: {a_file}: a file, where a folder is needed"]
    assert a_file.read_text() == "mine"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_evals_lock_refuses_a_second_eval_and_a_dead_ones_is_taken_over(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(f"{os.getpid()}\n")  # a live process's: this one
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"inftool: error: {out} is being written by another inftool eval (pid {os.getpid()}); "
        "pick another --out, or wait for it to end"
    ]
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written
    (out / LOCK).write_text(f"{dead_pid()}\n")  # an eval killed outright
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "trajectories.jsonl"]  # its lock released


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times are read from /proc (Linux)")
def test_a_lock_whose_pid_was_reused_is_taken_over_and_its_own_holder_still_refuses(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    started = Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19]
    (out / LOCK).write_text(f"{os.getpid()} {int(started) - 1}\n")  # this pid, but a process started earlier
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--out", str(out)]) == 0
    (out / LOCK).write_text(f"{os.getpid()} {started}\n")  # this very process
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--out", str(out)]) == 2


@dataclass
class SlowEndpoint:
    url: str
    hold: threading.Event
    released: threading.Event


@pytest.fixture
def slow_endpoint() -> Iterator[SlowEndpoint]:
    """An OpenAI-compatible endpoint that answers every request with "ok" after 0.3 s; once ``hold`` is set,
    a request waits until the test ends (so a run cannot finish before the test has interrupted it)."""
    endpoint = SlowEndpoint("", threading.Event(), threading.Event())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(0.3)
            if endpoint.hold.is_set():
                endpoint.released.wait(timeout=120)
            body = json.dumps({
                "id": "c", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield endpoint
    finally:
        endpoint.released.set()
        server.shutdown()
        server.server_close()


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_ctrl_c_keeps_the_finished_episodes_and_a_second_eval_is_refused_meanwhile(slow_endpoint, tmp_path, capsys):
    # Ctrl-C lost every finished episode (nothing was written before the end), and a second eval into the
    # same --out ran too, the later silently replacing the other's results.
    out = tmp_path / "out"
    argv = ["eval", "inftool/Bookshelf-v0", "--policy", f"openai:{slow_endpoint.url}#m?retries=0", "--n", "20",
            "--concurrency", "1", "--out", str(out)]  # fmt: skip
    popen = subprocess.Popen([*INFTOOL, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=terminal_sigint)  # fmt: skip
    with popen as proc:  # its pipes closed and the process reaped, whatever fails here
        try:
            deadline = time.monotonic() + 120
            while lines_of(out / "trajectories.jsonl") < 2:  # streamed as episodes end
                assert proc.poll() is None and time.monotonic() < deadline, "no two episodes streamed"
                time.sleep(0.1)
            slow_endpoint.hold.set()  # the run cannot end on its own now, however slow the checks below
            assert int((out / LOCK).read_text().split()[0]) == proc.pid
            assert main(["eval", "inftool/YelpFusion-v0", "--policy", "oracle", "--out", str(out)]) == 2
            assert f"is being written by another inftool eval (pid {proc.pid})" in capsys.readouterr().err
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130
    kept = lines_of(out / "trajectories.jsonl")
    assert 2 <= kept < 20
    assert err.splitlines()[-1] == (
        f"inftool: interrupted: {kept} of 20 episodes finished, kept in {out / 'trajectories.jsonl'} "
        f"({out / 'summary.json'} marked incomplete)"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["env_id"], summary["episodes"], summary["planned"], summary["incomplete"]) == (
        "inftool/Bookshelf-v0", kept, 20, True,
    )  # fmt: skip
    assert not (out / LOCK).exists()


def test_a_finished_run_writes_its_trajectories_in_episode_order(tmp_path):
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "12", "--seed", "3",
                 "--concurrency", "8", "--out", str(tmp_path)]) == 0  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["episodes"], summary["planned"], summary["incomplete"]) == (12, 12, False)
    one_by_one = tmp_path / "c1"
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "12", "--seed", "3",
                 "--concurrency", "1", "--out", str(one_by_one)]) == 0  # fmt: skip
    again = [json.loads(line) for line in (one_by_one / "trajectories.jsonl").read_text().splitlines()]
    assert [(t["task_id"], t["seed"]) for t in lines] == [(t["task_id"], t["seed"]) for t in again]


# -- tasks no policy can pass --------------------------------------------------------------------------
def test_tasks_no_policy_can_pass_are_warned_of_before_the_run(capsys, tmp_path):
    turns = ["Do it."]
    remove = [[{"name": "removeBook", "arguments": {"bookId": "boo_2"}}]]
    tasks = [
        *({"id": f"ghost-{i}", "turns": turns, "ground_truth": [[{"name": f"noSuchTool{i}"}]]} for i in range(5)),
        {"id": "excluded", "turns": turns, "ground_truth": remove, "excluded_tools": ["removeBook"]},
        {"id": "one-shot", "category": "simple", "turns": turns, "one_shot": True, "ground_truth": remove},
        {"id": "no-truth", "category": "multi_step", "turns": turns},
        {"id": "fine", "turns": turns, "ground_truth": remove},
        {"id": "decline", "category": "irrelevance", "turns": turns},
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--tasks", str(path),
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    warned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARN")]
    assert warned == [
        "WARN  5 tasks' ground truth calls tools inftool/Bookshelf-v0 does not have (another env's tasks?); a call "
        "to one fails the schema gate: ghost-0 (noSuchTool0), ghost-1 (noSuchTool1), ghost-2 (noSuchTool2) and 2 more",
        "WARN  1 task's ground truth calls tools their own excluded_tools lists; a call to one fails the schema gate: "
        "excluded (removeBook)",
        "WARN  1 task can only score 0, whatever the policy: one_shot without a bfcl reference (the AST check needs "
        "one; a one-shot episode is not replayed): one-shot",
        "WARN  1 task can only score 0, whatever the policy: no ground-truth calls, and not an irrelevance or "
        "relevance task: no-truth",
    ]
    # Exact: every task warned of scores 0 with the oracle, the others 1.
    played = (tmp_path / "out/trajectories.jsonl").read_text().splitlines()
    rewards = {t["task_id"]: t["reward"]["reward"] for t in map(json.loads, played)}
    assert {k for k, v in rewards.items() if v == 1.0} == {"fine", "decline"}


def test_an_envs_own_tasks_draw_no_warning(capsys, tmp_path):
    assert main(["eval", "inftool/GoogleCalendar-v0", "--policy", "oracle", "--out", str(tmp_path)]) == 0
    assert "WARN" not in capsys.readouterr().out


# -- flags ---------------------------------------------------------------------------------------------
SHELF = ["inftool/Bookshelf-v0", "--policy", "oracle"]
TO_BFCL = "is for `inftool eval bfcl`, not an env's eval"
TO_ENV = "is for an env's eval (`inftool eval ENV_ID`), not `inftool eval bfcl`"
TO_RUN = "is for `inftool eval bfcl --policy`, not --from-results (which scores every entry of the files given)"


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*SHELF, "--limit", "2"], f"--limit {TO_BFCL}"),
        ([*SHELF, "--categories", "simple"], f"--categories {TO_BFCL}"),
        ([*SHELF, "--format", "hermes"], f"--format {TO_BFCL}"),
        ([*SHELF, "--from-results", "x"], f"--from-results {TO_BFCL}"),
        (["bfcl", "--policy", "oracle", "--n", "5"], f"--n {TO_ENV}"),
        (["bfcl", "--policy", "oracle", "--tasks", "t.jsonl"], f"--tasks {TO_ENV}"),
        (["bfcl", "--policy", "oracle", "--seed", "3"], f"--seed {TO_ENV}"),
        (["bfcl", "--from-results", "x", "--categories", "simple_python"], f"--categories {TO_RUN}"),
        (["bfcl", "--from-results", "x", "--limit", "3"], f"--limit {TO_RUN}"),
        (["bfcl", "--from-results", "x", "--concurrency", "3"], f"--concurrency {TO_RUN}"),
    ],
)  # fmt: skip
def test_a_flag_of_the_other_kind_of_eval_is_refused(argv, message, capsys, tmp_path):
    assert main(["eval", *argv, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"inftool: error: {message}"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--n", "0"), ("--n", "-3"), ("--concurrency", "0"), ("--concurrency", "-1")])
def test_episode_counts_must_be_positive(flag, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", flag, value, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert f"argument {flag}: expected a whole number of at least 1, not '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_env_and_bfcl_evals_default_to_different_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "1"]) == 0
    assert main(["eval", "bfcl", "--policy", "oracle", "--categories", "simple_python", "--limit", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "out/eval/inftool/Bookshelf-v0").iterdir()) == [
        "summary.json", "trajectories.jsonl",
    ]  # fmt: skip
    assert (tmp_path / "out/bfcl/report.json").is_file()
    assert sorted(p.name for p in (tmp_path / "out/eval").iterdir()) == ["inftool"]


def test_eval_help_says_what_env_id_and_out_take(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a registered env id, an env manifest (.toml" in text
    assert "env: where summary.json and trajectories.jsonl go (default: out/eval/ENV_ID)" in text
    assert "bfcl: report.json, summary.txt, accuracy.png and results/ (default: out/bfcl)" in text


# -- the closing table ---------------------------------------------------------------------------------
def test_one_cause_whose_durations_differ_is_one_cause():
    error = "PolicyError: http://x/v1: APIConnectionError after 5 tries in {}s: Connection error."
    line = infrastructure_failures([error.format(s) for s in ("7.6", "7.9", "8.1", "12.0", "7.55")])
    assert line == f"5/5 episodes broke on infrastructure: {error.format('7.6')}"
    other = infrastructure_failures([error.format("7.6"), "RolloutError: server died", None])
    assert other == f"2/3 episodes broke on infrastructure: {error.format('7.6')} (and 1 other cause)"


def test_a_run_at_zero_says_what_failed(capsys, tmp_path):
    # "gate failures none / truncated none" explained nothing of a policy that never calls a tool.
    script = tmp_path / "reply.json"
    script.write_text(json.dumps(["Sorry, I cannot do that."]))
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", f"scripted:{script}", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  success rate   0.0%" in out and "  not solved     no call made: 5" in out
    assert json.loads((tmp_path / "o/summary.json").read_text())["unsolved"] == {"no call made": 5}


def test_a_policy_that_cannot_act_on_the_env_is_refused_before_any_episode(tmp_path, capsys):
    # tools=prompt on an openai-format env offers the model no tools: each episode broke ("infrastructure").
    policy = "openai:http://127.0.0.1:9/v1#m?tools=prompt"
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", policy, "--out", str(tmp_path / "out")]) == 2
    assert "tools=prompt needs an env in a text tool-call format" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
