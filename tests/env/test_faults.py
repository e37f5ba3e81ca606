"""Faults survived, nothing lost: servers that die or hang, hostile model output, backend bugs, full
servers. Each test reproduces a failure the env had, over real servers and real transports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal

import pytest

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_batch
from inftool_env.eval.runner import evaluate
from inftool_env.mcp import ServerLimits
from inftool_env.parsing.base import MAX_DEPTH
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory
from tests.conftest import child_pids

pytestmark = pytest.mark.anyio
FAULTY = "python:tests.fixtures.faulty:Faulty"
SLEEPER = "python:tests.fixtures.sleeper:Sleeper"


def call(name: str, arguments: object) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}


def python_env(spec: str, transport: str = "inprocess", **limits: float) -> ToolEnv:
    config = EnvConfig(id="test/Faults-v0", servers=[ServerConfig(name="s", spec=spec)], transport=transport,
                       tasks=TaskSource(source="-"), limits=Limits(**limits))  # fmt: skip
    return ToolEnv(config, [Task(id="t", turns=["go"])], {"s": compile_spec(spec)})


def signal_children(before: set[int], sig: signal.Signals) -> set[int]:
    pids = child_pids() - before
    assert pids, "no server subprocess to signal"
    for pid in pids:
        os.kill(pid, sig)
    return pids


async def no_children_left(before: set[int]) -> None:
    for _ in range(200):
        if not child_pids() - before:
            return
        await asyncio.sleep(0.05)
    assert child_pids() - before == set()


# -- a server that dies or hangs ----------------------------------------------------------------------
async def test_a_killed_stdio_server_ends_its_episode_and_the_next_one_gets_a_new_server():
    before = child_pids()
    env = make("inftool/Bookshelf-v0", transport="stdio")
    await env.reset(seed=0)
    assert not (await env.step(call("listBooks", {}))).info["calls"][0]["is_error"]
    killed = signal_children(before, signal.SIGKILL)
    step = await env.step(call("listBooks", {}))
    assert step.truncated and step.info["truncation_reason"] == "server_error"
    assert step.info["trajectory"].error.startswith("ServerError: ")
    assert step.info["calls"][0]["error_kind"] == "infrastructure"

    await env.reset(seed=1)  # not failed at once: the server is started again
    step = await env.step(call("listBooks", {}))
    assert not step.info["calls"][0]["is_error"] and step.info["calls"][0]["result"].startswith("[")
    assert (child_pids() - before) and not (child_pids() - before) & killed
    signal_children(before, signal.SIGKILL)  # and once more, now closing straight after
    await env.close()  # never raises
    await env.close()
    await no_children_left(before)


async def test_a_hung_stdio_server_is_cut_at_the_call_timeout_and_restarted():
    before = child_pids()
    env = python_env(SLEEPER, "stdio", call_timeout_s=0.5)
    await env.reset(seed=0)
    await env.step(call("nap", {"seconds": 0.01}))
    stopped = signal_children(before, signal.SIGSTOP)  # alive, but answers nothing
    try:
        step = await env.step(call("nap", {"seconds": 0.01}))
        assert step.truncated and step.info["truncation_reason"] == "call_timeout"
        assert step.info["calls"][0]["error_kind"] == "timeout"
        await env.reset(seed=1)
        step = await env.step(call("nap", {"seconds": 0.01}))
        assert step.info["calls"][0]["result"] == '"slept 0.01s"'
    finally:
        for pid in stopped & child_pids():
            os.kill(pid, signal.SIGKILL)
        await env.close()
    await no_children_left(before)


async def test_run_batch_returns_every_episode_in_order_when_a_server_dies_mid_batch():
    before = child_pids()
    env = make("inftool/Bookshelf-v0", transport="stdio")
    made: list[OraclePolicy] = []

    class Kills(OraclePolicy):
        async def act(self, observation):
            if len(made) in (2, 4) and not getattr(self, "killed", False):  # the 2nd and the last episode
                self.killed = True
                signal_children(before, signal.SIGKILL)
            return await super().act(observation)

    def factory(task: Task) -> OraclePolicy:
        made.append(Kills(task))
        return made[-1]

    episodes = [(i, "bookshelf-add") for i in range(4)]
    trajectories = await run_batch(env, factory, episodes=episodes, concurrency=1)  # cleans up a dead server
    assert len(trajectories) == 4 and all(t.task_id == "bookshelf-add" for t in trajectories)
    assert [t.error is None for t in trajectories] == [True, False, True, False]
    assert all(t.error.startswith("ServerError: ") and t.truncation_reason == "server_error"
               for t in (trajectories[1], trajectories[3]))  # fmt: skip
    assert [t.reward.reward for t in trajectories if t.error is None] == [1.0, 1.0]
    await env.close()
    await no_children_left(before)


async def test_a_failing_on_done_consumer_loses_no_trajectory(caplog):
    env = make("inftool/Bookshelf-v0")
    seen: list[int] = []

    def on_done(i: int, trajectory: Trajectory) -> None:
        seen.append(i)
        if i == 1:
            raise OSError("No space left on device")

    episodes = [(i, "bookshelf-add") for i in range(3)]
    trajectories = await run_batch(env, OraclePolicy, episodes=episodes, concurrency=2, on_done=on_done)
    assert sorted(seen) == [0, 1, 2] and [t.reward.reward for t in trajectories] == [1.0, 1.0, 1.0]
    assert "on_done failed for episode 1" in caplog.text
    await env.close()


# -- hostile model output --------------------------------------------------------------------------
async def test_lone_surrogates_become_replacement_characters_noted_on_the_turn():
    env = python_env(FAULTY)
    await env.reset(seed=0)
    step = await env.step(call("echo", {"what": "a\ud800b"}))
    assert step.info["calls"][0]["result"] == '"a\ufffdb"' and not step.info["calls"][0]["is_error"]
    text = await env.step(call("echo", '{"what": "\\udfff"}'))  # a JSON escape decodes to a lone surrogate
    assert text.info["calls"][0]["arguments"] == {"what": "\ufffd"}
    done = await env.step("ok \ud83d")
    trajectory: Trajectory = done.info["trajectory"]
    assert [len(t.notes) for t in trajectory.turns] == [1, 1, 1]
    assert "lone surrogate" in trajectory.turns[0].notes[0]
    written = trajectory.model_dump_json()  # raised before: surrogates not allowed
    assert "\\ud800" not in written and json.loads(written)["turns"][2]["content"] == "ok \ufffd"
    await env.close()


async def test_a_trajectory_holding_surrogates_still_writes_as_json():
    trajectory = Trajectory(env_id="e", task_id="t", seed=0, messages=[{"role": "user", "content": "x\udc00"}],
                            error="bad \ud800", user_usage={"\ud801": 1})  # fmt: skip
    out = json.loads(trajectory.model_dump_json())
    assert out["messages"][0]["content"] == "x\ufffd" and out["error"] == "bad \ufffd"
    assert [set(k) for k in out["user_usage"]] == [{"\ufffd"}]  # pydantic replaces each byte of a key
    assert "\ud83d\ude00" not in json.loads(Trajectory(env_id="\ud83d\ude00", task_id="t", seed=0).model_dump_json())
    assert trajectory.model_dump()["error"] == "bad \ud800"  # Python dumps keep what the object holds


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_surrogates_over_the_wire_do_not_kill_the_connection(transport):
    env = python_env(FAULTY, transport)
    await env.reset(seed=0)
    keeper = env._keeper
    for seed in range(2):
        step = await env.step(call("echo", {"what": "\ud800", "\udc00": 1}))
        assert not step.truncated and step.info["calls"][0]["error_kind"] == "schema"  # the extra key
        step = await env.step(call("echo", {"what": "x\udfff"}))
        assert step.info["calls"][0]["result"] == '"x\ufffd"'
        await env.reset(seed=seed)
    assert env._keeper is keeper and not keeper.done()  # the same connections: nothing died or reopened
    await env.close()


async def test_the_eval_jsonl_holds_any_model_output(tmp_path):
    env = python_env(FAULTY)

    class Hostile:
        def __init__(self, task: Task) -> None:
            self.turns = iter([call("echo", {"what": "\ud800" * 3}), "done \udfff"])

        async def act(self, observation):
            return next(self.turns)

    await evaluate(env, Hostile, n=2, out=tmp_path, progress=False)
    lines = (tmp_path / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["turns"][0]["calls"][0]["result"] == '"\ufffd\ufffd\ufffd"'
                                   for line in lines)  # fmt: skip
    await env.close()


def deep(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "action",
    [call("echo", deep(255)), call("echo", {"what": [[[[["x"]]]]], "more": deep(MAX_DEPTH + 1)}),
     call("echo", '{"what": ' + "[" * 100_000 + "]" * 100_000 + "}"),
     call("echo", {"what": float("nan")}), call("echo", {"what": {1, 2}}),
     {"content": {"not": "text"}, "tool_calls": "nope"}, {"content": "x", "tool_calls": [7]}],
    ids=["255-deep", "65-deep", "100k-deep-json", "nan", "set", "content-dict", "call-int"],
)  # fmt: skip
async def test_hostile_arguments_are_a_format_error_not_an_exception(action):
    env = python_env(FAULTY)
    await env.reset(seed=0)
    step = await env.step(action)  # a ValueError escaped here at 255 levels
    assert step.info["parse_error"] and not step.truncated
    assert step.info["calls"] == []
    json.loads(env.trajectory.model_dump_json())
    step = await env.step(call("echo", {"what": "still here"}))
    assert step.info["calls"][0]["result"] == '"still here"'
    await env.close()


# -- error kinds from the server's metadata ------------------------------------------------------------
async def test_a_backend_bug_is_infrastructure_a_refusal_is_the_policys():
    from inftool_env.mcp import CompiledServer
    from tests.fixtures.faulty import BuggyBackend

    env = python_env(FAULTY)
    env.servers["s"] = CompiledServer(env.servers["s"].suite, BuggyBackend())
    await env.reset(seed=0)
    refused = await env.step(call("refuse", {"what": "x"}))
    assert refused.info["calls"][0]["error_kind"] == "execution" and not refused.truncated
    crashed = await env.step(call("crash", {"what": "x"}))
    assert crashed.info["calls"][0]["error_kind"] == "infrastructure"
    assert crashed.truncated and crashed.info["truncation_reason"] == "server_error"
    assert crashed.info["trajectory"].error.startswith("ServerError: s (backend): ")
    assert "simulator bug" in crashed.info["trajectory"].error
    assert crashed.info["reward_breakdown"]["gates"]["schema"] is True  # not charged as a schema failure
    await env.close()


async def test_a_full_server_is_infrastructure_not_the_policys_error():
    env = python_env(FAULTY)
    env.servers["s"].limits = ServerLimits(max_episodes=1)
    first, second = env.spawn(), env.spawn()
    await first.reset(seed=0)
    assert not (await first.step(call("echo", {"what": "a"}))).truncated
    await second.reset(seed=1)
    full = await second.step(call("echo", {"what": "b"}))
    assert full.info["calls"][0]["error_kind"] == "infrastructure" and full.info["truncation_reason"] == "server_error"
    assert "(capacity)" in full.info["trajectory"].error
    await first.close()  # its episode released, so there is room again
    await second.reset(seed=2)
    assert not (await second.step(call("echo", {"what": "c"}))).info["calls"][0]["is_error"]
    await second.close()


# -- episode ids and state release --------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["inprocess", "http"])
async def test_episodes_have_unguessable_ids_and_release_their_state(transport):
    env = make("inftool/Bookshelf-v0", transport=transport)
    server = env.servers["bookshelf"]
    keys = []
    for seed in range(3):
        await env.reset(seed=seed, options={"task_id": "bookshelf-add"})
        keys.append(env._episode.key)
        await env.step(call("listBooks", {}))
        assert server.live_episodes == 1
    assert server.live_episodes == 1  # each reset released the episode it replaced
    policy = OraclePolicy(env.task)
    obs = env._observation()
    while True:
        step = await env.step(await policy.act(obs))
        obs = step.observation
        if step.terminated or step.truncated:
            break
    if transport == "inprocess":  # only this env reaches it: released at the next reset, readable till then
        assert server.live_episodes == 1 and env.state()["bookshelf"]
    else:
        assert server.live_episodes == 0  # a server others share is told as the episode ends
    await env.reset(seed=9)
    assert server.live_episodes == 0
    await env.step(call("listBooks", {}))
    await env.close()
    assert server.live_episodes == 0  # and when the env closed
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys) and len(set(keys)) == 3


async def test_a_turn_of_ten_thousand_calls_runs_no_more_than_the_limit():
    env = python_env(FAULTY, max_tool_calls=5)
    await env.reset(seed=0)
    many = {"content": "", "tool_calls": [{"function": {"name": "echo", "arguments": {"what": str(i)}}}
                                          for i in range(10_000)]}  # fmt: skip
    step = await env.step(many)
    assert step.truncated and step.info["truncation_reason"] == "max_tool_calls"
    assert len(step.info["calls"]) == 5
    await env.close()


@pytest.mark.parametrize(
    ("limits", "names", "reason"),
    [({"max_tool_calls": 2}, ["echo", "echo", "echo", "echo"], "max_tool_calls"),
     ({"max_consecutive_errors": 2}, ["refuse", "refuse", "echo"], "max_consecutive_errors")],
)  # fmt: skip
async def test_calls_a_turn_leaves_unrun_as_the_episode_ends_are_each_answered(limits, names, reason):
    env = python_env(FAULTY, **limits)
    await env.reset(seed=0)
    turn = {"content": "", "tool_calls": [{"function": {"name": n, "arguments": {"what": str(i)}}}
                                          for i, n in enumerate(names)]}  # fmt: skip
    step = await env.step(turn)
    assert step.truncated and step.info["truncation_reason"] == reason
    messages = env.trajectory.messages
    made = [c["id"] for c in messages[-len(names) - 1]["tool_calls"]]
    answers = messages[-len(names) :]
    assert [m["tool_call_id"] for m in answers] == made  # every call answered once, in order
    ran = len(step.info["calls"])
    assert 0 < ran < len(names)
    assert all(m["content"] == f"{m['name']} was not run: the episode ended ({reason}) before it."
               for m in answers[ran:])  # fmt: skip
    await env.close()
