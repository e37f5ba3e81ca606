"""Synthesis within a token budget: a task whose verified answer the policy cannot write in one turn's
``max_tokens`` is unanswerable at that budget. In GRPO its samples are all cut alike (no signal; the trainer
leaves such tasks out), and in an evaluation split it is a failure that steers the next round's synthesis
towards more such tasks. An evolve round at 128 tokens had 8 of its 25 parallel tasks past the budget (three
YelpFusion searches of ~60 tokens each). So ``inftool evolve`` and ``inftool synth --max-answer-tokens`` have
synthesis draw another candidate in place of each such task.

An answer's length is what the trainer measures (``train/grpo/sft.render_example``): the oracle's reply to each
user turn, its calls in one assistant message, rendered by the policy's chat template through its end-of-turn.
The trainer's rendering is imported when a check is made: it needs transformers' tokenizer, not torch.
"""

from __future__ import annotations

from typing import Any

from inftool_env.errors import InftoolError
from inftool_env.llm.local import LocalChat
from inftool_env.llm.tokenizers import first_line
from inftool_env.policies.oracle import calls_message
from inftool_env.synth.run import Admit
from inftool_env.tasks import Task

SHORT = "answer past the token budget"  # the drop's short reason, in stats.json and the synthesis table


class TemplateOnly(LocalChat):
    """A model's chat template and tokenizer, no weights: what rendering a conversation takes (LocalChat's
    rendering and encoding read only ``tokenizer``; nothing here generates, so its batching is not set up)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.name = "template"


def answer_tokens(chat: Any, task: Task) -> int:
    """The longest of the oracle's replies to ``task``'s user turns, in the policy's tokens."""
    from inftool_env.train.grpo.sft import oracle_answer, render_example

    longest = 0
    for turn, text in enumerate(task.turns):
        calls = task.ground_truth[turn] if turn < len(task.ground_truth) else []
        reply = calls_message(calls, turn) if calls else {"role": "assistant", "content": oracle_answer(task)}
        # No tools: a chat template renders them before the conversation, outside the reply's own tokens.
        example = render_example(chat, task.id, [{"role": "user", "content": text}, reply], None, decides=True)
        longest = max(longest, example.longest if example is not None else 0)
    return longest


def within_budget(tokenizer: Any, max_tokens: int, *, name: str = "the tokenizer") -> Admit:
    """An ``admit`` check for ``synthesize``: refuses a task whose answer needs more than ``max_tokens``
    (``tokenizer``: the policy's, loaded, with its chat template; ``name`` says which in an error). A template
    that cannot render a conversation is refused now, not met by every candidate."""
    chat = TemplateOnly(tokenizer)
    try:
        chat.render_text([{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}], None)
    except Exception as exc:  # no chat template, or one that does not render a conversation
        raise InftoolError(f"{name}: its chat template renders no conversation ({first_line(exc)})") from None

    def admit(task: Task) -> str | None:
        needs = answer_tokens(chat, task)
        return f"{SHORT}: {needs} tokens > {max_tokens}" if needs > max_tokens else None

    return admit


def refused(dropped: dict[str, int]) -> int:
    """How many of a run's drops (by short reason, "category: reason") were answers past the budget."""
    return sum(n for reason, n in dropped.items() if reason.endswith(f": {SHORT}"))
