"""What ``bench/bench_soak.py`` found, each as the smallest reproduction, kept as a regression test
now that each is fixed. Real servers and transports; the loop stall that load causes is made on purpose
with a blocking callback, so the tests do not depend on how busy the machine is."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from typing import Any

import pytest

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_batch
from inftool_env.env.core import ANSWER_GRACE_S
from inftool_env.llm.openai_chat import OpenAIChat
from inftool_env.mcp import open_client, running_http
from inftool_env.rollout import SharedServersEnv
from inftool_env.tasks import Task
from tests.conftest import REPO

pytestmark = pytest.mark.anyio
STUBBORN = "python:bench._soak_fixtures:Stubborn"  # Soak's tools, plus one that ignores its timeout


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}


def stubborn_env(call_timeout_s: float = 0.5, episode_timeout_s: float = 600.0) -> ToolEnv:
    limits = Limits(call_timeout_s=call_timeout_s, episode_timeout_s=episode_timeout_s)
    config = EnvConfig(id="soak/Findings-v0", servers=[ServerConfig(name="s", spec=STUBBORN)],
                       tasks=TaskSource(source="-"), limits=limits)  # fmt: skip
    return ToolEnv(config, [Task(id="t", turns=["go"])], {"s": compile_spec(STUBBORN)})


def stall_loop(after_s: float, for_s: float) -> None:
    """Block the event loop for ``for_s`` from ``after_s`` on: what 1,000 episodes in one process do."""
    asyncio.get_running_loop().call_later(after_s, time.sleep, for_s)


@pytest.mark.parametrize("stalled", ["request", "answer"])
async def test_a_delay_in_transit_does_not_make_a_server_cut_call_a_hung_server(stalled: str):
    env = stubborn_env(call_timeout_s=0.5)
    try:
        await env.reset(seed=0)
        # request: the loop stalls before the server's handler runs; answer: after the server's cut (0.5 s),
        # until past the env's limit (1.5 s)
        stall_loop(0.0 if stalled == "request" else 0.3, ANSWER_GRACE_S + 0.5)
        step = await env.step(call("nap", {"seconds": 60}))
        record = step.info["calls"][0]
        assert record["error_kind"] == "timeout" and "its work was stopped" in record["result"], record["result"]
        assert not step.truncated  # as without the stall: the model's error, and the episode goes on
    finally:
        await env.close()


async def test_a_workers_reconnect_leaves_its_siblings_live_episodes_alone():
    env = stubborn_env(call_timeout_s=0.3)
    a, b = env.spawn(), env.spawn()
    try:
        await a.reset(seed=0)
        await b.reset(seed=1)
        assert not (await b.step(call("echo", {"what": "before"}))).info["calls"][0]["is_error"]
        hung = await a.step(call("stubborn", {"seconds": 0.3 + ANSWER_GRACE_S + 0.5}))  # no answer in time
        assert hung.info["truncation_reason"] == "call_timeout"
        await a.reset(seed=2)  # a's connections are reopened; b's episode is still live
        step = await b.step(call("echo", {"what": "after"}))
        assert step.info["calls"][0]["result"] == '"after"', step.info["calls"][0]["result"]
    finally:
        for worker in (a, b, env):
            await worker.close()


async def test_an_episode_cut_by_a_call_timeout_is_released_on_the_shared_server():
    served = compile_spec(STUBBORN)
    async with running_http(served) as url:  # nothing in the block may raise (see the test below)
        env = SharedServersEnv(stubborn_env(call_timeout_s=0.3), {"s": url})
        try:
            await env.reset(seed=0)
            step = await env.step(call("stubborn", {"seconds": 0.3 + ANSWER_GRACE_S + 0.5}))
        finally:
            await env.close()
        for _ in range(40):  # the stubborn call itself ends on the server within ~2 s
            if served.live_episodes == 0:
                break
            await asyncio.sleep(0.1)
        left = served.live_episodes
    assert step.truncated and step.info["truncation_reason"] == "call_timeout"
    assert left == 0


ERROR_IN_BLOCK = """
import asyncio, gc
from inftool_env import compile_spec
from inftool_env.mcp import running_http

async def main():
    try:
        async with running_http(compile_spec("python:bench._soak_fixtures:Soak")):
            raise ValueError("the caller's own error")
    except ValueError:
        print("ValueError came out")
    gc.collect()

asyncio.run(main())
"""


def test_an_error_inside_running_http_comes_out_as_itself_and_closes_the_server():
    # In a subprocess: the socket it leaks would otherwise warn inside whichever test runs next.
    done = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", ERROR_IN_BLOCK], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.stdout.strip() == "ValueError came out", done.stderr[-2000:]
    assert "ResourceWarning" not in done.stderr, done.stderr[-2000:]


class _Hangs:
    """A policy whose model never answers (an endpoint that accepts and then says nothing)."""

    async def act(self, observation: dict[str, Any]) -> Any:
        await asyncio.Event().wait()


async def test_the_episode_timeout_bounds_the_time_spent_waiting_for_the_policy():
    env = stubborn_env(episode_timeout_s=0.5)
    try:
        async with asyncio.timeout(5):  # a hang guard, ten times the episode's 0.5 s
            [trajectory] = await run_batch(env, lambda task: _Hangs(), episodes=[(0, "t")])
        assert trajectory.truncated and trajectory.truncation_reason == "episode_timeout"
    finally:
        await env.close()


class _SlowAndFlaky:
    """An OpenAI-compatible endpoint on a real socket: the request whose last message says "slow" is
    answered after ``slow_s``; the one saying "flaky" gets a 500 on its first try."""

    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s
        self.slow_arrived = asyncio.Event()
        self.tries: dict[str, int] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:  # one request per connection: nothing of the endpoint outlives the answers it gave
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))  # fmt: skip
            said = json.loads(await reader.readexactly(length))["messages"][-1]["content"]
            self.tries[said] = self.tries.get(said, 0) + 1
            status, body = 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": "ok"}}]}  # fmt: skip
            if said == "slow":
                self.slow_arrived.set()
                await asyncio.sleep(self.slow_s)
            elif said == "flaky" and self.tries[said] == 1:
                status, body = 500, {"error": {"message": "transient"}}
            payload = json.dumps(body).encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)  # fmt: skip
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def test_waiting_for_a_concurrency_slot_does_not_spend_the_retry_budget():
    endpoint = _SlowAndFlaky(slow_s=1.5)
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    chat = OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", concurrency=1, retry_budget_s=1.0, backoff_s=0.05)
    slow = asyncio.create_task(chat.complete([{"role": "user", "content": "slow"}]))
    try:
        await endpoint.slow_arrived.wait()  # it holds the only slot for 1.5 s
        flaky = await chat.complete([{"role": "user", "content": "flaky"}])  # 500 once, then fine
        assert flaky.message["content"] == "ok" and endpoint.tries["flaky"] == 2
    finally:
        await asyncio.gather(slow, return_exceptions=True)
        await chat.aclose()
        server.close()
        await server.wait_closed()


async def test_opening_many_http_clients_loads_the_ca_bundle_at_most_once(monkeypatch: pytest.MonkeyPatch):
    served = compile_spec(STUBBORN)
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    async with running_http(served) as url:
        monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
        for _ in range(3):  # three rollout workers reaching one shared server
            async with open_client(url) as client:
                assert (await client.call("echo", {"what": "x"})).text == '"x"'
    assert len(loads) <= 1, f"{len(loads)} CA bundle loads for 3 clients of {url}"
