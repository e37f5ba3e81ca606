"""The optional supervised warm start: the oracle plays the training tasks through the env, the
episodes it wins (gated reward 1.0: verified on a real server) are rendered by the model's chat
template, and the loss is the assistant tokens' negative log-likelihood (each assistant message
through its end-of-turn token; system, user and tool tokens are context only).

Which assistant turns are targets: those that call tools, and the text of an episode without any call
(irrelevance: declining is the skill). The oracle's closing remark after its calls ("Done.") is context
only: learnt, it becomes the model's answer to everything (an evolve run collapsed to replying "Done.").

Whether to call at all is decided at the reply's first token (a tool-call token, or text). Trained on
a fixed mix, that token learns the mix's rate, not the offer: evolve runs declined BFCL requests their
one offered tool fitted (simple_python 82% -> 12% with a 30% share of declines), or never declined
(irrelevance 36% -> 8% with 15%). So by default (``decides="never"``) the first token of a reply to
the user is context only: the warm start teaches how to call (names, arguments, how many calls),
and GRPO's gated reward, which depends on the offer, teaches whether. ``"pairs"`` trains that token
only on synthesis's contrastive pairs (a near miss to decline and its twin to call: the same words,
different offers), whose rate is one half whatever the mix, so only the offer lowers their loss;
``"always"`` trains it everywhere.

How a call opens can be trained apart from whether (``call_form``, off by default): where a call reply's
first token is left out, the loss on it is renormalised over the tokens that can open a call (the
template's ``<tool_call>``, its pieces, a code fence). That loss is indifferent to the mass those tokens
hold in all (the choice to call) and teaches the template's tag over the code fence the base model often
puts first, which spends tokens of a reply's ``max_tokens``. Indifferent at the logits is not in effect:
the tag's logit rises at every reply's start, and an evolve run with it called a tool on 42 of BFCL's
first 50 irrelevance entries, against 30 without.

Leaving that token out of the loss does not leave it where it was: learning the calls that follow it moves
the shared weights under it (a warm start alone took BFCL irrelevance from 36% to 24% on its first 50 with
``decides="never"``). ``sft_keep_decision`` (a weight; 0, off, by default) adds KL(start || policy)
between the two choices that token makes, to open a call or not, at each reply's first token the loss
leaves out: the starting model's choice is held while the rest is learnt, and how it opens a call is not
(with ``call_form`` the tag can replace the code fence while the call's probability is held). The metrics
log ``decision_call_p``, the probability of opening a call at those positions, every step either way.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from inftool_env.env.batch import run_episode
from inftool_env.parsing.json_formats import OPEN
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.tasks import Task
from inftool_env.train.grpo.rollout import EnvPool, is_success


@dataclass(frozen=True)
class Example:
    task_id: str
    ids: list[int]
    targets: list[int]  # positions of assistant tokens
    openers: list[int] = field(default_factory=list)  # call replies' first tokens not in targets (call_form)
    decisions: list[int] = field(default_factory=list)  # replies to the user's first tokens not in targets
    longest: int = 0  # the longest assistant reply's tokens, through its end-of-turn: what sampling it takes


Decides = Literal["never", "pairs", "always"]
DECLINE = "None of the tools I have can do that, so I cannot help with this request."


def oracle_answer(task: Task) -> str:
    """The oracle's text reply: a decline where no offered tool fits, else its closing remark."""
    return DECLINE if task.category == "irrelevance" else "Done."


class _ToolsSeen:
    """The oracle, remembering the tools it was offered (the template renders them in the prompt)."""

    def __init__(self, task: Task) -> None:
        self.oracle = OraclePolicy(task, answer=oracle_answer(task))
        self.tools: list[dict[str, Any]] | None = None

    async def act(self, observation: dict[str, Any]) -> Any:
        if self.tools is None:
            self.tools = observation.get("tools") or []
        return await self.oracle.act(observation)


async def oracle_examples(pool: EnvPool, chat: Any, *, seed: int, decides: Decides = "never") -> list[Example]:
    """One oracle episode per training task; the verified ones, tokenized for the loss."""

    async def play(index: int) -> tuple[list[dict[str, Any]], Any] | None:
        pick = pool.picks[index]
        env = pool.envs[pick.source]
        seen: list[_ToolsSeen] = []

        def factory(task: Task) -> _ToolsSeen:
            seen.append(_ToolsSeen(task))
            return seen[-1]

        async with pool.pools[pick.source].borrow() as worker:
            trajectory = await run_episode(worker, factory, seed=seed + index, task_id=pick.task.id)
        if not is_success(trajectory) or not seen:
            return None
        return trajectory.messages, seen[0].tools if env.config.format == "openai" else None

    # One at a time per source: the oracle is instant, and a single worker per source suffices.
    played: dict[str, list[tuple[str, list[dict[str, Any]], Any]]] = {}
    for index in range(len(pool.picks)):
        episode = await play(index)
        if episode is not None:
            task = pool.picks[index].task
            played.setdefault(task.provenance.get("companion_of") or task.id, []).append((task.id, *episode))
        await asyncio.sleep(0)
    groups: list[list[Example]] = []
    for members in played.values():
        decide = decides == "always" or (decides == "pairs" and len(members) == 2)  # both sides verified
        rendered = [render_example(chat, task_id, msgs, tools, decides=decide) for task_id, msgs, tools in members]
        groups.append([example for example in rendered if example is not None])
    # The pool lists tasks category by category; shuffled (seeded), each batch mixes them, instead of
    # whole steps spent on one category (e.g. only irrelevance's one-line answers). A task and its
    # companion (a near miss and its twin) stay side by side, so one step sees the contrast.
    random.Random(seed).shuffle(groups)
    return [example for group in groups for example in group]


def render_example(
    chat: Any, task_id: str, messages: list[dict[str, Any]], tools: Any, *, decides: bool = False
) -> Example | None:
    """The conversation's tokens, built message by message so each assistant span is known exactly;
    ``decides=False`` leaves out the first token of each reply to the user (see the module's docstring)."""
    ids: list[int] = []
    targets: list[int] = []
    openers: list[int] = []
    decisions: list[int] = []
    longest = 0
    end = chat.end_of_turn_id()
    rendered = ""
    calls = any(m.get("tool_calls") for m in messages if m["role"] == "assistant")
    for k, message in enumerate(messages):
        if message["role"] == "assistant":
            before = chat.render_text(messages[:k], tools)  # ends with the generation prompt
            ids += chat.encode(before[len(rendered) :])
            through = chat.render_text(messages[: k + 1], tools, generation_prompt=False)
            span = chat.encode(through[len(before) :])
            if end in span:
                span = span[: span.index(end) + 1]  # the turn's own tokens, through its end-of-turn
            longest = max(longest, len(span))
            to_user = k > 0 and messages[k - 1]["role"] == "user"
            scored = bool(message.get("tool_calls")) or not calls
            if to_user and not (decides and scored):
                decisions.append(len(ids))  # a choice the loss leaves out: sft_keep_decision may hold it
            if scored:
                undecided = to_user and not decides
                targets += range(len(ids) + (1 if undecided else 0), len(ids) + len(span))
                if undecided and message.get("tool_calls"):
                    openers.append(len(ids))
            ids += span
            rendered = chat.tokenizer.decode(ids, skip_special_tokens=False)
            if not through.startswith(rendered):
                return None  # the template rewrites earlier turns: not a prefix-stable rendering
    return Example(task_id, ids, targets, openers, decisions, longest) if targets else None


def over_budget(examples: list[Example], max_new_tokens: int) -> dict[str, int]:
    """Task id -> its longest verified reply's tokens, for the tasks whose answer does not fit in
    ``max_new_tokens`` a turn: every sample of theirs is cut before it ends, so a GRPO group of one
    scores all alike (measured: 8 of an evolve round's 25 parallel tasks, three YelpFusion calls of
    ~60 tokens each against 128)."""
    return {e.task_id: e.longest for e in examples if e.longest > max_new_tokens}


FENCE = "```"


def _token_texts(tokenizer: Any) -> tuple[str, ...]:
    """Each token id's text, decoded once per tokenizer and size (~1 s for a 150k vocabulary): the warm
    start and balanced exploration both sort the vocabulary by it."""
    return _decoded(tokenizer, len(tokenizer))


@functools.lru_cache(maxsize=2)
def _decoded(tokenizer: Any, size: int) -> tuple[str, ...]:  # size: a tokenizer given tokens decodes again
    return tuple(tokenizer.batch_decode([[token_id] for token_id in range(size)]))


def call_openers(tokenizer: Any) -> list[int]:
    """The tokens that can open a tool call: the tag (whole, where the tokenizer keeps it whole, or its
    first piece: "<", "<tool"), a code fence, each with or without leading whitespace."""
    texts = _token_texts(tokenizer)
    return [i for i, text in enumerate(texts) if (t := text.lstrip()) and (OPEN.startswith(t) or t.startswith(FENCE))]


CALL_STARTS = ("<", "`", "{", "[")  # a tag, a fence, a JSON object or list: how this model's calls begin as text too


def call_starts(tokenizer: Any) -> list[int]:
    """The tokens that can begin a call in any form the parser or the format gate sees: the tag, a fence, a
    JSON object or list (with or without leading whitespace). A reply meant not to call never draws them."""
    return [i for i, text in enumerate(_token_texts(tokenizer)) if text.lstrip().startswith(CALL_STARTS)]


def call_form_nll(logits: Any, chosen: Any, openers: Any) -> Any:
    """Each row's negative log-probability of its chosen token among ``openers`` alone (the chosen one
    is among them): unchanged by adding one constant to the openers' logits, so at the logits it says how
    to call, not whether (its update still moves whether: see the module's docstring)."""
    among = logits.index_select(-1, openers).logsumexp(-1)
    return among - logits.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)


def call_mass(logits: Any, openers: Any) -> Any:
    """Each row's probability of opening a tool call: the mass on ``openers`` (see ``call_openers``)."""
    return _call_or_not(logits, openers)[0].exp()


def decision_kl(logits: Any, start: Any, openers: Any) -> Any:
    """Each row's KL(start || policy) between the two choices a reply's first token makes: to open a call
    (any of ``openers``) or not. What ``sft_keep_decision`` adds to the loss: indifferent to how each side's
    mass is spread (tag or code fence; which words), so the start's choice is held and its form is not (a
    KL over the whole vocabulary held the base model's code fences too: calls written as text)."""
    start_call, start_not = _call_or_not(start.float(), openers)
    call, not_call = _call_or_not(logits, openers)
    return start_call.exp() * (start_call - call) + start_not.exp() * (start_not - not_call)


def _call_or_not(logits: Any, openers: Any) -> tuple[Any, Any]:
    """Each row's log-probability of opening a call, and of not, each a log-sum-exp (stable near 0 and 1)."""
    logp = logits.log_softmax(-1)
    is_opener = logp.new_zeros(logp.shape[-1], dtype=bool).index_fill(0, openers, True)
    return logp.index_select(-1, openers).logsumexp(-1), logp.masked_fill(is_opener, float("-inf")).logsumexp(-1)
