"""The episode's token record on a local model: the real Qwen tokenizer and chat template, a real
Bookshelf MCP server and env; only the generation is scripted (the LLM boundary)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, ServerConfig, TaskSource, ToolEnv, run_episode
from inftool_env.llm.episode_tokens import EpisodeTokens
from inftool_env.llm.local import LocalChat
from inftool_env.policies.chat import ChatPolicy
from inftool_env.tasks import Task
from tests.conftest import BOOKSHELF

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="the `model` extra is not installed"),
]
CALL = '<tool_call>\n{"name": "addBook", "arguments": {"title": "Les Misérables", "author": "Hugo"}}\n</tool_call>'
TASK = Task(id="add", turns=["Add «Les Misérables» by Hugo, please."])


@pytest.fixture(scope="module")
def tokenizer():
    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    return gguf_tokenizer(embedded_gguf())


class ScriptedLocal(LocalChat):
    """A local model whose generations are scripted texts, tokenized by the real tokenizer; each
    ends with <|im_end|> unless it is cut (``cut=True``)."""

    def __init__(self, tokenizer: Any, replies: list[tuple[str, bool]]) -> None:
        self.name, self.tokenizer, self.max_new_tokens, self.max_batch = "scripted-local", tokenizer, 64, 1
        self.replies, self.prompts = list(replies), []
        self._setup_batching()

    def _generate(self, prompts, temperature, max_new, seed):
        self.prompts.append(prompts[0])
        text, cut = self.replies.pop(0)
        ids = self.encode(text) + ([] if cut else [self.end_of_turn_id()])
        return [(ids, [-0.5] * len(ids))]


def shelf_env(**config: Any) -> ToolEnv:
    env_config = EnvConfig(id="t/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                           tasks=TaskSource(source="-"), **config)  # fmt: skip
    return ToolEnv(env_config, [TASK], {"shelf": compile_spec(BOOKSHELF)})


async def play(model: ScriptedLocal, **config: Any):
    env = shelf_env(**config)
    policy = ChatPolicy(model, tools="native")
    try:
        trajectory = await run_episode(env, lambda task: policy, seed=0)
    finally:
        await env.close()
    return trajectory, policy


async def test_the_record_holds_the_models_tokens_as_generated_and_the_rest_masked(tokenizer):
    model = ScriptedLocal(tokenizer, [(CALL, False), ("Done: it is on the shelf.", False)])
    traj, policy = await play(model)
    ids, mask, lps = traj.token_ids, traj.assistant_mask, traj.logprobs
    assert traj.tokens_unavailable is None and ids and len(ids) == len(mask) == len(lps)
    generated = [t for sample in policy.samples for t in sample.token_ids]
    assert [t for t, m in zip(ids, mask, strict=True) if m] == generated
    assert all(lp == -0.5 for lp, m in zip(lps, mask, strict=True) if m)
    assert all(lp == 0.0 for lp, m in zip(lps, mask, strict=True) if not m)
    # Each turn was prompted with the record so far, never a re-render.
    assert all(ids[: len(p)] == p for p in model.prompts) and len(model.prompts) == 2
    # The record is the conversation as the template writes it, with the model's words as it said them.
    samples = iter(policy.samples)
    as_said = [{"role": "assistant", "content": tokenizer.decode(next(samples).token_ids[:-1])}
               if m["role"] == "assistant" else m for m in traj.messages]  # fmt: skip
    assert tokenizer.decode(ids) + "\n" == model.render_text(as_said, policy.tokens.tools, generation_prompt=False)
    assert traj.turns[0].calls[0].name == "addBook" and not traj.turns[0].calls[0].is_error


async def test_a_turn_cut_by_max_tokens_is_closed_by_an_unmasked_end_token(tokenizer):
    model = ScriptedLocal(tokenizer, [("I will add", True), ("Added.", False)])
    traj, policy = await play(model)
    cut = policy.samples[0]
    assert cut.finish_reason == "length" and cut.token_ids[-1] != model.end_of_turn_id() and traj.replies_cut == 1
    at = len(model.prompts[0]) + len(cut.token_ids)
    assert traj.token_ids[at] == model.end_of_turn_id() and traj.assistant_mask[at] == 0
    assert traj.assistant_mask[at - 1] == 1


async def test_a_reply_cut_after_a_whole_call_makes_the_call_and_says_length(tokenizer):
    """Cut at max_tokens inside a second call: the first, whole, is made; the reply still finished on length."""
    model = ScriptedLocal(tokenizer, [(CALL + '\n<tool_call>\n{"name": "addB', True), ("Added.", False)])
    traj, policy = await play(model)
    assert [s.finish_reason for s in policy.samples] == ["length", "stop"] and traj.replies_cut == 1
    assert [c.name for c in traj.turns[0].calls] == ["addBook"]
    model = ScriptedLocal(tokenizer, [(CALL, False), ("Added.", False)])
    traj, policy = await play(model)
    assert [s.finish_reason for s in policy.samples] == ["tool_calls", "stop"] and traj.replies_cut == 0


async def test_tools_offered_mid_episode_or_a_rewriting_template_end_the_record_with_a_reason(tokenizer):
    messages = [{"role": "user", "content": "hi"}]
    tokens = EpisodeTokens(ScriptedLocal(tokenizer, []))
    assert tokens.prompt(messages, None)
    tokens.record(_completion(tokenizer, "Hello."), 2)
    later = [*messages, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "add a book"}]
    assert tokens.prompt(later, [{"type": "function", "function": {"name": "addBook"}}]) is None
    assert tokens.unavailable == "the offered tools changed mid-episode"

    class Rewriting(ScriptedLocal):  # drops earlier assistant turns when asked for the next one (as Qwen3 does)
        def render_text(self, messages, tools, *, generation_prompt=True):
            if generation_prompt:
                messages = [m for m in messages if m["role"] != "assistant"]
            return super().render_text(messages, tools, generation_prompt=generation_prompt)

    tokens = EpisodeTokens(Rewriting(tokenizer, []))
    tokens.prompt(messages, None)
    tokens.record(_completion(tokenizer, "Hello."), 2)
    assert tokens.prompt(later, None) is None and "re-renders earlier turns" in tokens.unavailable


async def test_the_policy_falls_back_to_whole_renders_and_says_why(tokenizer):
    model = ScriptedLocal(tokenizer, [("Which book?", False), ("Added.", False)])
    withheld = Task(id="add", turns=["Add a book.", "Les Misérables."], tools_added={1: ["addBook"]})
    config = EnvConfig(id="t/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                       tasks=TaskSource(source="-"))  # fmt: skip
    env = ToolEnv(config, [withheld], {"shelf": compile_spec(BOOKSHELF)})
    try:
        traj = await run_episode(env, lambda task: ChatPolicy(model, tools="native"), seed=0)
    finally:
        await env.close()
    assert len(traj.turns) == 2 and traj.turns[1].content == "Added."  # the episode went on, rendered whole
    assert traj.token_ids is None and traj.tokens_unavailable == "the offered tools changed mid-episode"


def _completion(tokenizer, text):
    from inftool_env.llm import Completion

    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    return Completion({"role": "assistant", "content": text}, token_ids=ids, logprobs=[-1.0] * len(ids))


async def test_a_request_cancelled_while_its_batch_generates_leaves_the_rest_answered(tokenizer):
    """An episode past its deadline cancels its request mid-batch; the batch's other requests still get
    their replies (the drain once died setting the cancelled one's result, and they waited forever)."""
    import asyncio
    import threading

    running, release = threading.Event(), threading.Event()

    class Held(ScriptedLocal):
        def _generate(self, prompts, temperature, max_new, seed):
            running.set()
            release.wait(30)
            replies = [self.encode(f"reply {i}") + [self.end_of_turn_id()] for i in range(len(prompts))]
            return [(ids, [-0.5] * len(ids)) for ids in replies]

    model = Held(tokenizer, [])
    model.max_batch = 2
    prompt = model.encode("hello")
    cancelled = asyncio.create_task(model.complete_tokens(prompt))  # first in the batch
    answered = asyncio.create_task(model.complete_tokens(prompt))
    assert await asyncio.to_thread(running.wait, 30)
    cancelled.cancel()
    release.set()
    reply = await asyncio.wait_for(answered, 30)
    assert reply.message["content"] == "reply 1" and cancelled.cancelled()
    # The model still serves the next request (its drain did not die holding work).
    running.clear()
    assert (await asyncio.wait_for(model.complete_tokens(prompt), 30)).message["content"] == "reply 0"


async def test_requests_given_up_are_not_generated_and_a_batch_nobody_waits_on_stops(tokenizer):
    """A request cancelled while it queued is left out of the next batch; a batch all of whose callers gave
    up stops at its next token, and ``settle`` returns once no generation runs (a trainer updates after it)."""
    import asyncio
    import threading

    from inftool_env.llm.local import abandoned

    running, release = threading.Event(), threading.Event()
    batches: list[int] = []
    stopped: list[bool] = []

    class Held(ScriptedLocal):
        def _generate(self, prompts, temperature, max_new, seed):
            batches.append(len(prompts))
            running.set()
            while not release.is_set() and not abandoned():  # a generation, token by token
                release.wait(0.01)
            stopped.append(abandoned())
            replies = [self.encode(f"reply {i}") + [self.end_of_turn_id()] for i in range(len(prompts))]
            return [(ids, [-0.5] * len(ids)) for ids in replies]

    model = Held(tokenizer, [])
    model.max_batch = 1
    prompt = model.encode("hello")
    first = asyncio.create_task(model.complete_tokens(prompt))
    queued = asyncio.create_task(model.complete_tokens(prompt))  # waits behind the first's batch
    assert await asyncio.to_thread(running.wait, 30)
    queued.cancel()
    first.cancel()  # now nobody waits on the running batch
    await asyncio.wait_for(model.settle(), 30)
    assert batches == [1] and stopped == [True]  # stopped early; the queued request was never generated
    release.set()
    assert (await asyncio.wait_for(model.complete_tokens(prompt), 30)).message["content"] == "reply 0"
