"""A policy string's options are checked when it is read, one line each naming the option; ``tools=prompt``
is refused on an env that renders no tools into its prompt (an ``openai``-format one), and works on a
text-format one. The model sits behind our OpenAI-compatible server, scripted."""

from __future__ import annotations

import json

import pytest

from inftool_env.cli import main
from inftool_env.errors import PolicyError
from inftool_env.llm import resolve_model
from inftool_env.llm.openai_chat import OpenAIChat
from inftool_env.llm.scripted import ScriptedChat
from inftool_env.llm.serve import running_openai_server
from inftool_env.policies import close_policy, resolve_policy
from inftool_env.registration import make
from inftool_env.tasks import Task, ToolCall

ENV = "inftool/Bookshelf-v0"
URL = "openai:http://127.0.0.1:1/v1#m"
INT = "must be an integer of at least"
FLAG = "must be 1/true or 0/false"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{URL}?concurrency=0", f"concurrency {INT} 1, not '0'"),  # asyncio.Semaphore(0): hung forever
        (f"{URL}?concurrency=-1", f"concurrency {INT} 1, not '-1'"),
        (f"{URL}?concurrency=abc", f"concurrency {INT} 1, not 'abc'"),
        (f"{URL}?retries=-1", f"retries {INT} 0, not '-1'"),
        (f"{URL}?retry_budget_s=nan", "retry_budget_s must be a number of at least 0, not 'nan'"),
        (f"{URL}?temperature=hot", "temperature must be a number of at least 0, not 'hot'"),
        (f"{URL}?seed=1.5", f"seed {INT} 0, not '1.5'"),
        (f"{URL}?max_tokens=0", f"max_tokens {INT} 1, not '0'"),
        ("hf:/models/x?max_new_tokens=abc", f"max_new_tokens {INT} 1, not 'abc'"),
        ("gguf:/models/x.gguf?max_new_tokens=0", f"max_new_tokens {INT} 1, not '0'"),
        ("vllm:/models/x?max_new_tokens=-5", f"max_new_tokens {INT} 1, not '-5'"),
        (f"{URL}?stream=yes", f"stream {FLAG}, not 'yes'"),  # read as off before
        (f"{URL}?logprobs=on", f"logprobs {FLAG}, not 'on'"),
        ("gguf:/models/x.gguf?prefix_cache=no", f"prefix_cache {FLAG}, not 'no'"),  # read as off: slower, silently
        ("vllm:/models/x?compile=", f"compile {FLAG}, not ''"),
    ],
)
def test_an_option_out_of_range_is_refused_naming_it(spec, message):
    with pytest.raises(PolicyError) as caught:
        resolve_policy(spec)  # before any model is loaded or asked
    assert str(caught.value) == f"{spec!r}: {message}"


def test_numeric_options_in_range_reach_the_model():
    chat, rest = resolve_model(f"{URL}?concurrency=2&retries=0&retry_budget_s=1.5&stream=TRUE")
    assert isinstance(chat, OpenAIChat) and rest == {}
    assert (chat._slots._value, chat.max_retries, chat.retry_budget_s, chat.stream) == (2, 0, 1.5, True)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        OpenAIChat("http://127.0.0.1:1/v1", "m", concurrency=0)


@pytest.mark.timeout(60)  # concurrency=0 hung until the episode's 600 s limit
@pytest.mark.parametrize("option", ["concurrency=0", "concurrency=abc", "max_tokens=-1"])
def test_eval_refuses_a_bad_option_in_one_line(capsys, tmp_path, option):
    assert main(["eval", ENV, "--policy", f"{URL}?{option}", "--n", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inftool: error: ") and len(err.strip().splitlines()) == 1 and option.split("=")[0] in err


ADD = Task(id="bookshelf-add", turns=["Please add 'Dune' by Frank Herbert to the catalogue as fiction, with 2 copies."],
           ground_truth=[[ToolCall(name="addBook", arguments={"title": "Dune", "author": "Frank Herbert",
                                                             "genre": "fiction", "copies": 2})]])  # fmt: skip
HERMES_CALL = (
    '<tool_call>\n{"name": "addBook", "arguments": ' + json.dumps(ADD.ground_truth[0][0].arguments) + "}\n</tool_call>"
)


async def play(env_format: str | None, model: ScriptedChat) -> object:
    from inftool_env.eval.runner import evaluate

    env = make(ENV, **({"format": env_format} if env_format else {}))
    async with running_openai_server(model) as url:
        policy = resolve_policy(f"openai:{url}#scripted?tools=prompt")
        try:
            _, (trajectory,) = await evaluate(env, policy, tasks=[ADD], seed=0, progress=False)
        finally:
            await env.close()
            await close_policy(policy)
    return trajectory


@pytest.mark.anyio
async def test_tools_prompt_on_an_openai_format_env_is_refused_naming_the_fix():
    # It sent `tools: []` and no tool text: the model was offered nothing, and nothing said so.
    model = ScriptedChat([HERMES_CALL, "Done."], cycle=True)
    trajectory = await play(None, model)
    assert model.requests == []  # refused before the model was asked
    assert trajectory.truncation_reason == "policy_error"
    assert "tools=prompt needs an env in a text tool-call format" in trajectory.error
    assert 'make(ID, format="hermes")' in trajectory.error
    with pytest.raises(PolicyError, match="use tools=native"):
        resolve_policy(f"{URL}?tools=prompt", env_format="openai")


@pytest.mark.anyio
async def test_tools_prompt_on_a_text_format_env_offers_the_tools_in_the_prompt():
    model = ScriptedChat([HERMES_CALL, "Done."], cycle=True)
    trajectory = await play("hermes", model)
    first = model.requests[0]
    assert first["tools"] is None and "<tools>" in first["messages"][0]["content"]
    assert "addBook" in first["messages"][0]["content"]
    assert trajectory.error is None and trajectory.reward.reward == 1.0
