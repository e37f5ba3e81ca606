"""One episode as a local model saw it: a single token sequence in which the model's own tokens are
kept exactly as generated (mask 1, with their logprobs) and everything else — system prompt, user
turns, tool results, template glue — is masked 0. Each turn's prompt is this record plus the new
messages' tokens, so nothing the model said is ever re-tokenized: what a trainer scores is what was
sampled.

It needs a chat template under which a conversation's rendering is a prefix of its continuation's
(Qwen2.5, Hermes, Llama 3 are). Where that fails — a template that rewrites earlier turns, tools
offered mid-episode — ``unavailable`` says why and the policy renders each turn whole instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inftool_env.llm import Completion
    from inftool_env.llm.local import LocalChat
    from inftool_env.trajectory import Trajectory


class EpisodeTokens:
    def __init__(self, model: LocalChat) -> None:
        self.model = model
        self.ids: list[int] = []
        self.mask: list[int] = []
        self.logprobs: list[float] = []
        self.unavailable: str | None = None
        self._covered = 0  # messages the record holds, the model's last turn included
        self.tools: list[dict[str, Any]] | None = None  # offered at the first turn, rendered in the record

    def prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int] | None:
        """The next turn's prompt ids (the record so far, extended by the new messages), or None when
        the record cannot be kept (then ``unavailable`` says why)."""
        if self.unavailable is not None:
            return None
        if not self.ids:
            self.tools = tools
            self._extend(self.model.render(messages, tools), None)
            return list(self.ids)
        if tools != self.tools:
            self._give_up("the offered tools changed mid-episode")
            return None
        if len(messages) <= self._covered or messages[self._covered - 1].get("role") != "assistant":
            self._give_up("the conversation is not a continuation of the model's last turn")
            return None
        base = self.model.render_text(messages[: self._covered], tools, generation_prompt=False)
        full = self.model.render_text(messages, tools)
        if not full.startswith(base):
            self._give_up("the chat template re-renders earlier turns differently")
            return None
        # The record ends with the model's end-of-turn token; the template may add text after it ("\n").
        end = self.model.tokenizer.decode([self.ids[-1]])
        at = base.rfind(end)
        if at < 0:
            self._give_up(f"the chat template does not close a turn with {end!r}")
            return None
        self._extend(self.model.encode(base[at + len(end) :] + full[len(base) :]), None)
        return list(self.ids)

    def record(self, done: Completion, messages_after: int) -> None:
        """The model's turn, as generated; ``messages_after`` is the conversation's length once the
        env has appended it."""
        ids, lps = list(done.token_ids or []), list(done.logprobs or [])
        if len(ids) != len(lps):
            self._give_up("the backend gave token ids without one logprob each")
            return
        self._extend(ids, lps)
        if not ids or ids[-1] not in self.model.stop_ids():  # cut by max_tokens: the template closes the turn
            self._extend([self.model.end_of_turn_id()], None)
        self._covered = messages_after

    def fill(self, trajectory: Trajectory) -> None:
        if self.unavailable is not None:
            trajectory.tokens_unavailable = self.unavailable
            return
        trajectory.token_ids, trajectory.logprobs, trajectory.assistant_mask = self.ids, self.logprobs, self.mask

    def _extend(self, ids: list[int], logprobs: list[float] | None) -> None:
        self.ids += ids
        self.mask += [0 if logprobs is None else 1] * len(ids)
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)

    def _give_up(self, why: str) -> None:
        self.unavailable = why
        self.ids, self.mask, self.logprobs = [], [], []
