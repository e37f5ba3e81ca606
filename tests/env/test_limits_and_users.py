from __future__ import annotations

import pytest

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv
from inftool_env.tasks import Task
from inftool_env.users import TemplateUser, get_user

pytestmark = pytest.mark.anyio
SLEEPER = "python:tests.fixtures.sleeper:Sleeper"


def sleeper_env(**limits: float) -> ToolEnv:
    config = EnvConfig(id="test/Sleep-v0", servers=[ServerConfig(name="s", spec=SLEEPER)],
                       tasks=TaskSource(source="-"), limits=Limits(**limits))  # fmt: skip
    return ToolEnv(config, [Task(id="t", turns=["nap"])], {"s": compile_spec(SLEEPER)})


def nap(seconds: float) -> dict:
    return {"content": "", "tool_calls": [{"function": {"name": "nap", "arguments": {"seconds": seconds}}}]}


async def test_a_slow_call_is_stopped_at_the_call_timeout_and_counts_as_an_error():
    env = sleeper_env(call_timeout_s=0.2, max_consecutive_errors=2)
    await env.reset(seed=0)
    assert not (await env.step(nap(0.01))).truncated
    step = await env.step(nap(5))  # the server stops the work at the env's budget and says so
    assert not step.truncated and step.info["calls"][0]["error_kind"] == "timeout"
    assert "its work was stopped" in step.info["calls"][0]["result"]
    step = await env.step(nap(5))
    assert step.truncated and step.info["truncation_reason"] == "max_consecutive_errors"
    await env.close()


async def test_a_server_that_does_not_answer_is_cut_at_the_call_timeout():
    import os
    import signal

    from tests.conftest import child_pids

    before = child_pids()
    config = EnvConfig(id="test/Sleep-v0", servers=[ServerConfig(name="s", spec=SLEEPER)], transport="stdio",
                       tasks=TaskSource(source="-"), limits=Limits(call_timeout_s=0.3))  # fmt: skip
    env = ToolEnv(config, [Task(id="t", turns=["nap"])], {"s": compile_spec(SLEEPER)})
    await env.reset(seed=0)
    await env.step(nap(0.01))
    stopped = child_pids() - before
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)  # a hung server: alive, silent
    try:
        step = await env.step(nap(0.01))
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
    assert step.truncated and step.info["truncation_reason"] == "call_timeout"
    assert step.info["calls"][0]["error_kind"] == "timeout"
    await env.close()


async def test_the_episode_timeout_bounds_the_whole_episode():
    env = sleeper_env(call_timeout_s=10, episode_timeout_s=1.5)
    await env.reset(seed=0)
    assert not (await env.step(nap(0.3))).truncated
    step = await env.step(nap(5))  # cut by the episode's deadline, not by the call's 10 s
    assert step.truncated and step.info["truncation_reason"] == "episode_timeout"
    assert step.info["calls"][0]["error_kind"] == "timeout"
    await env.close()


async def test_a_trainer_driven_episode_has_no_wall_clock_limit_between_its_steps():
    """The time between steps is the agent's: where a trainer generates it, a long batch must not cut the
    episode (the env's 600 s did, and the cut replies were scored as failures)."""
    import anyio

    from inftool_env.env.config import trainer_driven

    plain = sleeper_env(call_timeout_s=10, episode_timeout_s=0.3)
    env = ToolEnv(trainer_driven(plain.config), plain.tasks, plain.servers)
    for each, cut in ((plain, True), (env, False)):
        await each.reset(seed=0)
        await anyio.sleep(0.4)  # the trainer generating the next turn
        step = await each.step(nap(0.01))
        assert step.truncated == cut and step.info.get("truncation_reason") == ("episode_timeout" if cut else None)
        await each.close()
    # One given is kept (a trainer's own budget), and calls keep their own limit either way.
    assert trainer_driven(plain.config, 42.0).limits.episode_timeout_s == 42.0
    assert env.config.limits.call_timeout_s == 10


async def test_template_user_answers_from_hidden_facts_and_knows_when_it_is_done():
    user = TemplateUser()
    task = Task(id="t", turns=["unused"], goal="Book me a table.", facts={"party_size": 4, "date": "2025-05-01"})
    assert await user.opening(task) == "Book me a table."
    ask = [{"role": "assistant", "content": "What is the party size and the date?"}]
    reply = await user.reply(task, ask)
    assert reply.message == "My party size is 4. My date is 2025-05-01." and not reply.done
    unknown = await user.reply(task, [{"role": "assistant", "content": "Which restaurant?"}])
    assert not unknown.done and "don't know" in unknown.message
    assert (await user.reply(task, [{"role": "assistant", "content": "Booked."}])).done
    with pytest.raises(Exception, match="known: scripted, template"):
        get_user("llm")
