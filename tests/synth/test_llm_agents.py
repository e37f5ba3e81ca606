"""The three agents: scripted models at the LLM boundary, the real MCP server in between; and one
short run on the embedded model (llama.cpp)."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import pytest

from inftool_env import compile_spec
from inftool_env.llm.scripted import ScriptedChat
from inftool_env.mcp import open_client
from inftool_env.synth import synthesize, verify_task
from inftool_env.synth.context import Context
from inftool_env.synth.llm_agents import USER_PROMPT, CachedChat, ThreeAgents
from inftool_env.synth.world import open_world
from tests.synth.conftest import REPO

pytestmark = pytest.mark.anyio
BOOKSHELF = REPO / "servers" / "bookshelf" / "openapi.yaml"


def _roles(agents: list[ThreeAgents], assistant: str):
    """One scripted model playing both roles: the user restates the plan's turn in other words; the
    assistant either plays the plan (a stand-in for a capable model) or calls the first tool with nothing."""

    def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
        if messages[0]["content"] == USER_PROMPT:  # the user role: the plan's turn comes last
            return "Hello! " + messages[-1]["content"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        if any(m["role"] == "assistant" and m.get("tool_calls") for m in messages[last_user:]):
            return "All done."
        if assistant == "naive" and tools:
            first = {"name": tools[0]["function"]["name"], "arguments": "{}"}
            return {"content": "", "tool_calls": [{"id": "n0", "type": "function", "function": first}]}
        turn = sum(1 for m in messages if m["role"] == "user") - 1
        plan = agents[0].current_plan
        assert plan is not None
        calls = plan.ground_truth[turn] if turn < len(plan.ground_truth) else []
        if not calls:
            return "Could you tell me the missing detail?"
        out = [{"id": f"c{i}", "type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}}
               for i, c in enumerate(calls)]  # fmt: skip
        return {"content": "", "tool_calls": out}

    return reply


async def test_three_agents_keep_only_what_verifies():
    world = open_world("inftool/Bookshelf-v0")
    holder: list[ThreeAgents] = []
    chat = ScriptedChat([_roles(holder, "oracle")], cycle=True)
    agents = ThreeAgents(CachedChat(chat), CachedChat(chat), world, seed=3)
    holder.append(agents)
    ctx = Context.create(world, seed=3)
    fresh = world.fresh()
    kept = 0
    try:
        for category in ("simple", "parallel", "multi_step", "multi_turn", "missing_param", "irrelevance"):
            task = await agents.attempt(ctx, category, None)
            assert all(t.startswith("Hello! ") for t in task.turns)  # the user role's words, not the plan's
            assert await verify_task(task, fresh) is None
            kept += 1
    finally:
        await agents.aclose()
    assert kept == 6 and chat.requests  # every role went through the model

    naive_holder: list[ThreeAgents] = []
    naive = ScriptedChat([_roles(naive_holder, "naive")], cycle=True)
    run = synthesize("inftool/Bookshelf-v0", n=4, categories=["simple", "multi_step"], generator=naive, seed=3,
                     attempts_per_task=1)  # fmt: skip
    # the naive assistant never satisfies a plan: nothing kept, every attempt counted with its reason
    assert not run.tasks and run.attempts == sum(run.dropped.values())
    assert all("did not verify against the plan" in reason for reason in run.dropped)


async def test_a_kept_trajectory_ran_on_the_real_mcp_server_and_replays_from_the_cache(tmp_path):
    world = open_world(str(BOOKSHELF))
    holder: list[ThreeAgents] = []
    chat = ScriptedChat([_roles(holder, "oracle")], cycle=True)
    cache = tmp_path / "agents.jsonl"
    first = ThreeAgents(CachedChat(chat, cache_path=cache), CachedChat(chat, cache_path=cache), world, seed=5)
    holder.append(first)
    task = await first.attempt(Context.create(world, seed=5), "multi_step", None)
    await first.aclose()
    calls_made = len(chat.requests)
    # the ground truth executes on an MCP server reached over the protocol, from the pinned state
    async with open_client(compile_spec(BOOKSHELF)) as client:
        episode = client.for_episode("again", seed=99, initial_state=task.initial_for(world.servers[0].name))
        for call in task.ground_truth[0]:
            assert not (await episode.call(call.name, dict(call.arguments))).is_error
    replay_chat = CachedChat(chat, cache_path=cache)
    second = ThreeAgents(replay_chat, replay_chat, world, seed=5)
    holder[0] = second
    again = await second.attempt(Context.create(world, seed=5), "multi_step", None)
    await second.aclose()
    assert again.turns == task.turns and replay_chat.hits >= 2
    assert len(chat.requests) == calls_made  # replayed from the cache: the model was not asked again


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python (gguf extra) missing")
def test_the_embedded_model_plays_the_three_agents():
    start = time.monotonic()
    run = synthesize("inftool/Bookshelf-v0", n=1, categories=["simple"], generator="gguf:embedded", seed=0,
                     attempts_per_task=1)  # fmt: skip
    assert run.attempts <= 3 and run.attempts == len(run.tasks) + sum(run.dropped.values())
    assert all(t.provenance["generator"] == "gguf:embedded" for t in run.tasks)
    assert time.monotonic() - start < 240
