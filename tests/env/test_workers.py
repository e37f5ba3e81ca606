"""What makes many episodes cheap: spawned in-process workers share their parent's connections, and
observations share the env's offered tools, read-only, instead of copying them every step."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import inftool_env.env.core as core
from inftool_env.env import run_batch
from inftool_env.env.readonly import FrozenDict, freeze, thaw
from inftool_env.errors import InftoolError
from inftool_env.policies.oracle import OraclePolicy
from tests.env.test_core import ADD, bookshelf_env

pytestmark = pytest.mark.anyio


def test_frozen_values_read_like_json_and_refuse_changes():
    value = freeze({"a": [1, {"b": 2}], "c": "x"})
    assert value == {"a": [1, {"b": 2}], "c": "x"} and isinstance(value, dict) and isinstance(value["a"], list)
    assert json.dumps(value) == json.dumps({"a": [1, {"b": 2}], "c": "x"})
    for change in (
        lambda: value.__setitem__("z", 1), lambda: value.update(a=1), lambda: value.pop("a"),
        lambda: value["a"].append(3), lambda: value["a"][1].__setitem__("b", 3), lambda: value["a"].sort(),
    ):  # fmt: skip
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert copy.deepcopy(value) is value
    again = pickle.loads(pickle.dumps(value))  # noqa: S301 - our own bytes
    assert again == value and isinstance(again, FrozenDict)
    editable = thaw(value)
    editable["a"][1]["b"] = 3
    assert type(editable) is dict and value["a"][1]["b"] == 2


async def test_observations_share_the_offered_tools_read_only():
    env = bookshelf_env([ADD])
    try:
        obs, _ = await env.reset(seed=1)
        with pytest.raises(TypeError, match="read-only"):
            obs["tools"][0]["function"]["parameters"]["properties"] = {}
        obs["tools"].pop()  # the list itself is the observation's own
        step = await env.step({"role": "assistant", "content": "Which book?"})
        assert len(step.observation["tools"]) == len(obs["tools"]) + 1
        assert step.observation["tools"][0] is obs["tools"][0]  # shared, not copied
        again, _ = await env.reset(seed=2)
        assert again["tools"][0] is obs["tools"][0]  # across episodes too
    finally:
        await env.close()


async def test_spawned_workers_share_one_connection_per_server(monkeypatch):
    opened = []
    real = core.open_client

    def counting(target, **kwargs):
        opened.append(target)
        return real(target, **kwargs)

    monkeypatch.setattr(core, "open_client", counting)
    env = bookshelf_env([ADD])
    try:
        for _ in range(2):  # a second batch reuses the connection the first opened
            trajectories = await run_batch(env, OraclePolicy, episodes=[(s, "add") for s in range(6)], concurrency=3)
            assert all(t.reward and t.reward.reward == 1.0 for t in trajectories)
        assert len(opened) == 1
        worker = env.spawn()
        await worker.reset(seed=9)
        await worker.close()  # a worker's close leaves its parent's connection open
        other = env.spawn()
        await other.reset(seed=10)
        assert (
            await other.step(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "addBook", "arguments": {"title": "T", "author": "A"}}}],
                }
            )
        ).info["errors"] == []
        assert len(opened) == 1
        await other.close()
    finally:
        await env.close()
    late = env.spawn()
    with pytest.raises(InftoolError, match="spawned from is closed"):
        await late.reset(seed=1)


async def test_end_episode_lets_a_pooled_worker_hold_nothing_between_episodes():
    env = bookshelf_env([ADD])
    try:
        worker = env.spawn()
        server = env.servers["shelf"]
        for seed in (1, 2):
            await worker.reset(seed=seed)
            await worker.step({"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "addBook",
                 "arguments": '{"title": "Les Misérables", "author": "Hugo"}'}}]})  # fmt: skip
            assert server.live_episodes == 1 and worker.trajectory is not None
            await worker.end_episode()
            assert server.live_episodes == 0  # without it, the state stayed until the worker's next reset
            assert worker.trajectory is None and worker.state() is None
            await worker.end_episode()  # idempotent
    finally:
        await env.close()
