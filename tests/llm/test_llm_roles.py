"""The three LLM roles over real HTTP: our OpenAI-compatible server in front of a scripted model
(the fake sits only at the model boundary), the SDK's client, real streaming, real MCP servers."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inftool_env import compile_spec
from inftool_env.asgi import running_asgi
from inftool_env.backends.llm_sim import LLMSimBackend
from inftool_env.env import EnvConfig, ServerConfig, TaskSource, ToolEnv, run_batch
from inftool_env.errors import PolicyError
from inftool_env.llm.openai_chat import OpenAIChat
from inftool_env.llm.scripted import ScriptedChat
from inftool_env.llm.serve import running_openai_server
from inftool_env.mcp import CompiledServer, open_client
from inftool_env.policies import close_policy, resolve_policy
from inftool_env.tasks import Task, ToolCall
from inftool_env.users.llm import LLMUser
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.anyio

ADD_CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "addBook", "arguments": json.dumps(
        {"title": "Les Misérables", "author": "Hugo"})}}]}  # fmt: skip
HUGO = {"title": "Les Misérables", "author": "Hugo"}
ADD = Task(id="add", turns=["Add «Les Misérables» by Hugo."], ground_truth=[[ToolCall(name="addBook", arguments=HUGO)]])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_tool_calls_text_and_usage_cross_real_http(stream):
    model = ScriptedChat([ADD_CALL, "Done — «Les Misérables» is on the shelf."])
    async with running_openai_server(model) as url:
        async with OpenAIChat(url, "scripted", stream=stream) as chat:
            tools = [{"type": "function", "function": {"name": "addBook", "parameters": {"type": "object"}}}]
            first = await chat.complete([{"role": "user", "content": "add it"}], tools=tools)
            second = await chat.complete([{"role": "user", "content": "and?"}], seed=3, temperature=0.5)
    call = first.message["tool_calls"][0]
    assert call["function"]["name"] == "addBook"
    assert json.loads(call["function"]["arguments"]) == {"title": "Les Misérables", "author": "Hugo"}
    assert second.message["content"] == "Done — «Les Misérables» is on the shelf."
    assert second.usage.completion_tokens == 8 and second.usage.calls == 1
    assert model.requests[0]["tools"][0]["function"]["name"] == "addBook"  # the tools crossed the wire
    assert (model.requests[1]["seed"], model.requests[1]["temperature"]) == (3, 0.5)


async def test_a_policy_string_plays_episodes_over_the_endpoint():
    model = ScriptedChat([ADD_CALL, "Added."] * 2)
    config = EnvConfig(id="t/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                       tasks=TaskSource(source="-"))  # fmt: skip
    env = ToolEnv(config, [ADD], {"shelf": compile_spec(BOOKSHELF)})
    async with running_openai_server(model) as url:
        policy = resolve_policy(f"openai:{url}#scripted?stream=1&temperature=0")
        trajectories = await run_batch(env, policy, episodes=[(0, "add"), (1, "add")], concurrency=1)
        await close_policy(policy)
    await env.close()
    assert [t.reward.reward for t in trajectories] == [1.0, 1.0]
    assert trajectories[0].turns[0].calls[0].result.startswith("{")


class _Flaky:
    """An endpoint that answers 429, then 503, then a real completion."""

    def __init__(self, failures: list[int]) -> None:
        self.failures, self.hits = list(failures), 0

    def app(self) -> Starlette:
        async def chat(request: Request) -> JSONResponse:
            self.hits += 1
            if self.failures:
                status = self.failures.pop(0)
                return JSONResponse({"error": {"message": f"status {status}"}}, status_code=status)
            return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]})  # fmt: skip

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def test_retries_back_off_on_429_and_5xx_but_not_on_400():
    flaky = _Flaky([429, 503])
    async with running_asgi(flaky.app()) as port:
        async with OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", backoff_s=0.01) as chat:
            assert (await chat.complete([{"role": "user", "content": "hi"}])).message["content"] == "ok"
    assert flaky.hits == 3
    broken = _Flaky([400])
    async with running_asgi(broken.app()) as port:
        async with OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", backoff_s=0.01) as chat:
            with pytest.raises(PolicyError, match="BadRequestError"):
                await chat.complete([{"role": "user", "content": "hi"}])
    assert broken.hits == 1
    down = _Flaky([503] * 10)
    async with running_asgi(down.app()) as port:
        async with OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", backoff_s=0.001, max_retries=2) as chat:
            with pytest.raises(PolicyError, match="after 3 tries"):
                await chat.complete([{"role": "user", "content": "hi"}])


async def test_bad_requests_to_our_server_get_clear_errors():
    import httpx2 as httpx  # the HTTP client the mcp and openai SDKs use

    async with running_openai_server(ScriptedChat(["x"])) as url:
        async with httpx.AsyncClient() as client:
            bad = await client.post(f"{url}/chat/completions", content=b"{oops")
            wrong = await client.post(f"{url}/chat/completions", json={"messages": "hello"})
            models = await client.get(f"{url}/models")
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"]
    assert wrong.status_code == 400 and "'messages'" in wrong.json()["error"]["message"]
    assert models.json()["data"][0]["id"] == "scripted"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("openai:localhost#m", "expected openai:URL#MODEL"), ("openai:http://x/v1#m?colour=red", "unknown options"),
     ("openai:http://x/v1#m?tools=sometimes", "tools must be native or prompt"),
     ("gguf:/models/x.gguf", "no such .gguf file"), ("gpt", "unknown policy")],
)  # fmt: skip
def test_policy_string_mistakes(spec, message):
    with pytest.raises(PolicyError, match=message):
        resolve_policy(spec)


async def test_the_llm_user_answers_from_facts_is_seeded_and_its_tokens_are_summed():
    task = Task(id="ask", turns=["Book me a table."], goal="Book a table for two", facts={"time": "19:00"})
    model = ScriptedChat(["At 19:00, please.", "[DONE]"])
    user = LLMUser(model, temperature=0.2)
    config = EnvConfig(id="t/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                       tasks=TaskSource(source="-"))  # fmt: skip
    env = ToolEnv(config, [task], {"shelf": compile_spec(BOOKSHELF)}, user=user)
    await env.reset(seed=0)
    step = await env.step("What time?")
    assert step.observation["messages"][-1] == {"role": "user", "content": "At 19:00, please."}
    done = await env.step("Booked for 19:00.")
    assert done.terminated
    traj = done.info["trajectory"]
    assert traj.user_usage["calls"] == 2 and traj.user_usage["completion_tokens"] == 3 + 1  # summed, not overwritten
    first = model.requests[0]
    assert "19:00" in first["messages"][0]["content"] and first["temperature"] == 0.2
    assert [m["role"] for m in first["messages"]] == ["system", "assistant", "user"]  # roles flipped
    assert first["seed"] != model.requests[1]["seed"]
    await env.close()


async def test_the_simulated_server_is_cached_validated_and_never_crashes(tmp_path):
    calendar_like = compile_spec(BOOKSHELF)
    replies = [json.dumps({"id": "boo_9", "title": "Dune", "author": "Herbert"}), "not json at all",
               '```json\n{"id": 5}\n```']  # fmt: skip
    model = ScriptedChat(replies)
    cache = tmp_path / "sim.jsonl"
    server = CompiledServer(calendar_like.suite, LLMSimBackend(model, calendar_like.suite, cache_path=cache))
    args = {"title": "Dune", "author": "Herbert"}
    async with open_client(server, episode="a", seed=1) as client:
        ok = await client.call("addBook", args)
        broken = await client.call("getBook", {"bookId": "boo_9"})
        off_schema = await client.call("getBook", {"bookId": "boo_5"})
    assert not ok.is_error and ok.structured["id"] == "boo_9"
    assert broken.is_error and "malformed output" in broken.text
    assert off_schema.is_error and "outside its output schema" in off_schema.text
    assert len(model.requests) == 3
    replay = CompiledServer(calendar_like.suite, LLMSimBackend(ScriptedChat(["unused"]), calendar_like.suite,
                                                               cache_path=cache))  # fmt: skip
    async with open_client(replay, episode="b", seed=1) as client:
        again = await client.call("addBook", args)
    assert again.text == ok.text  # same (model, prompt, seed): from the cache, no model call
    assert replay.backend.chat.requests == []  # type: ignore[attr-defined]
