"""``inftool rollout`` without Ray: this process on asyncio, each trajectory streamed to the JSONL."""

from __future__ import annotations

import json
import sys

import pytest

from inftool_env.cli import main
from inftool_env.rollout import WORKER_LOST, Episode, Finished, JsonlSink, plan_episodes, rollout
from inftool_env.rollout.shared import parse_server_urls
from inftool_env.trajectory import Trajectory
from tests.rollout._policies import Broken, LineCounter, answer

ENV = "inftool/Bookshelf-v0"


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_episode_once_with_its_index_and_reward(tmp_path):
    out = tmp_path / "r.jsonl"
    summary = rollout(ENV, "oracle", n=12, out=out, concurrency=4, seed=5)
    records = read(out)
    assert sorted(r["rollout"]["index"] for r in records) == list(range(12))
    assert {r["rollout"]["worker"] for r in records} == {"local"}
    assert all(r["reward"]["reward"] == 1.0 and r["error"] is None for r in records)
    assert all(Trajectory.model_validate(r).env_id == ENV for r in records)  # a line is a trajectory too
    assert (summary.episodes, summary.success_rate, summary.reward_mean, summary.errors) == (12, 1.0, 1.0, {})


def test_lines_are_written_as_episodes_end(tmp_path):
    # One at a time: episode k begins after k episodes ended, and the file already holds their k lines.
    out = tmp_path / "r.jsonl"
    rollout(ENV, LineCounter(out), n=5, out=out, concurrency=1)
    seen = {r["rollout"]["index"]: answer(r) for r in read(out)}
    assert seen == {k: f"lines={k}" for k in range(5)}


def test_command_prints_the_table_and_fails_naming_broken_episodes(tmp_path, capsys):
    out = tmp_path / "ok.jsonl"
    assert main(["rollout", ENV, "--policy", "oracle", "--n", "6", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    for row in ("episodes       6", "reward mean    1.000", "success        100.0%", "errors         none",
                "wall time", "episodes/s"):  # fmt: skip
        assert row in table
    assert len(read(out)) == 6

    broken = tmp_path / "broken.jsonl"
    summary = rollout(ENV, Broken(), n=3, out=broken)
    assert summary.errors == {"policy_error": 3}
    assert all("the model endpoint is down" in r["error"] for r in read(broken))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inftool/Nope-v0", "--policy", "oracle", "--n", "2"], "no environment 'inftool/Nope-v0'"),
        ([ENV, "--policy", "nosuch", "--n", "2"], "unknown policy 'nosuch'"),
        ([ENV, "--policy", "oracle", "--n", "2", "--server", "bookshelf"], "expected NAME=URL"),
        ([ENV, "--policy", "oracle", "--n", "2", "--server", "shelf=http://127.0.0.1:1/mcp"], "has servers"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path, capsys, argv, message):
    assert main(["rollout", *argv, "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_workers_without_ray_installed_say_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when the extra is missing
    assert main(["rollout", ENV, "--policy", "oracle", "--n", "2", "--workers", "2",
                 "--out", str(tmp_path / "x.jsonl")]) == 2  # fmt: skip
    assert "pip install 'inftool-env[ray]'" in capsys.readouterr().err


def test_plan_and_sink_units(tmp_path):
    assert plan_episodes(3, seed=7) == [Episode(0, 7), Episode(1, 8), Episode(2, 9)]
    assert parse_server_urls(["a=http://h:1/mcp"]) == {"a": "http://h:1/mcp"}
    # A lone surrogate in a model's text still makes a JSON line (escaped), not a lost record.
    sink = JsonlSink(tmp_path / "s.jsonl")
    trajectory = Trajectory(env_id=ENV, task_id="t", seed=0, messages=[{"role": "assistant", "content": "\ud800"}],
                            truncated=True, truncation_reason=WORKER_LOST, error="gone")  # fmt: skip
    sink.write(Finished(4, "ray-1", trajectory, "abc"))
    # A trajectory JSON cannot hold still leaves its line, saying so.
    odd = Trajectory(env_id=ENV, task_id="t", seed=1, messages=[{"role": "assistant", "content": object()}])
    sink.write(Finished(5, "local", odd))
    sink.close()
    record, stub = read(tmp_path / "s.jsonl")
    assert stub["rollout"]["index"] == 5 and stub["error"].startswith("trajectory not writable as JSON")
    assert record["rollout"] == {"index": 4, "worker": "ray-1", "episode_id": "abc"}
    assert record["messages"][0]["content"] in ("\ud800", "\ufffd")  # escaped, or replaced by pydantic


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "oracle", "--server", "nope=http://127.0.0.1:1/mcp"], "inftool/Bookshelf-v0 has servers"),
        (["--policy", "bogus"], "unknown policy 'bogus'"),
        (["--policy", "openai:http://127.0.0.1:1/v1#m?concurrency=-1"], "concurrency must be an integer of at least 1"),
        (["--policy", "openai:http://127.0.0.1:1/v1#m?tools=prompt"], 'make(ID, format="hermes")'),
        (["--policy", "scripted:/nonexistent/replies.json"], "cannot read scripted replies"),
    ],
    ids=["server", "policy", "option", "tools-prompt", "script"],
)
def test_a_rerun_with_a_mistake_leaves_the_earlier_out_as_it_was(tmp_path, capsys, argv, message):
    # The default --out is shared by every rollout: a typo on a rerun emptied the finished run's file.
    out = tmp_path / "r.jsonl"
    assert main(["rollout", ENV, "--policy", "oracle", "--n", "3", "--out", str(out)]) == 0
    before = out.read_text()
    capsys.readouterr()
    assert main(["rollout", ENV, "--n", "2", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert out.read_text() == before and len(before.splitlines()) == 3
    # … and a new --out is not left behind, empty, by a refused run.
    assert main(["rollout", ENV, "--n", "2", *argv, "--out", str(tmp_path / "new.jsonl")]) == 2
    assert not (tmp_path / "new.jsonl").exists()


def test_local_records_carry_the_episode_id_the_servers_used(tmp_path):
    out = tmp_path / "r.jsonl"
    rollout(ENV, "oracle", n=6, out=out, concurrency=3)
    ids = [r["rollout"]["episode_id"] for r in read(out)]
    assert all(isinstance(i, str) and len(i) == 32 for i in ids), ids  # a uuid4's hex, as on Ray
    assert len(set(ids)) == 6
