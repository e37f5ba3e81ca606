"""One OpenRLHF rollout as one isolated episode of our env, token-exact.

OpenRLHF's multi-turn executor keeps the ids the model sampled as they are and appends the
tokenization of each ``environment_feedback`` text. So the feedback here is exactly what the model's own
chat template writes between the end of the assistant's turn and the start of its next one — the
turn's closing tail (``\\n`` after ``<|im_end|>``), the tool results or the user's reply as the template
renders them, and the next generation prompt — with the end-of-turn token prepended only when the
model stopped on another token. The model's text reaches the env decoded from its sampled ids; nothing
it said is ever re-tokenized.

The reward is the env's gated reward, given on the episode's last step (0 before); its breakdown goes
to ``extra_logs`` with the same keys on every step, since OpenRLHF logs the last step's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.rewards import COMPONENTS, GATES
from inftool_env.train.openrlhf.dataset import EpisodeLabel, check_text_format

log = logging.getLogger(__name__)

LOG_KEYS = (
    *(f"gate_{g}" for g in GATES), *COMPONENTS, "correct", "turns", "tool_calls", "tool_errors", "truncated",
    "context_exhausted",
)  # fmt: skip
_BASES: dict[tuple[str, str], ToolEnv] = {}  # compiled servers, shared by every episode in this process


def base_env(env_id: str, fmt: str) -> ToolEnv:
    """The registered env in format ``fmt``, compiled once per process (its servers keep one state
    per episode, so episodes share them safely)."""
    key = (env_id, fmt)
    if key not in _BASES:
        from inftool_env.registration import make

        check_text_format(fmt)
        _BASES[key] = make(env_id, trainer_driven=True, format=fmt)
    return _BASES[key]


class ChatTemplate:
    """The trained model's chat template, for the env's side of the conversation."""

    PROBE = "inftool-probe-3f9c"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.end_id, self.end_text = self._end_of_turn()

    def render(self, messages: list[dict[str, Any]], *, generation_prompt: bool) -> str:
        # The env renders the tools into the system message (its text format), so none go to the template.
        prepared = [_arguments_as_objects(m) for m in messages]
        text = self.tokenizer.apply_chat_template(prepared, add_generation_prompt=generation_prompt, tokenize=False)
        return str(text)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text=text, add_special_tokens=False)["input_ids"])

    def feedback(self, messages: list[dict[str, Any]], assistant_at: int, last_sampled: int | None) -> str:
        """The template's text after the assistant turn ``messages[assistant_at]`` up to the next
        generation prompt."""
        base = self.render(messages[: assistant_at + 1], generation_prompt=False)
        full = self.render(messages, generation_prompt=True)
        if not full.startswith(base):
            raise InftoolError(
                "the model's chat template renders earlier turns differently once the conversation goes on "
                "(e.g. it drops past reasoning), so an episode is not one token sequence; use a template that "
                "only appends"
            )
        at = base.rfind(self.end_text)
        if at < 0:
            raise InftoolError(f"the chat template does not close an assistant turn with {self.end_text!r}")
        after = base[at + len(self.end_text) :] + full[len(base) :]
        return after if last_sampled == self.end_id else self.end_text + after

    def _end_of_turn(self) -> tuple[int, str]:
        """The special token the template closes an assistant turn with (``<|im_end|>``, ``<|eot_id|>``)."""
        probe = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": self.PROBE}]
        tail = self.render(probe, generation_prompt=False).split(self.PROBE, 1)[-1]
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        special |= set(getattr(self.tokenizer, "added_tokens_decoder", {}) or {})
        for token in self.encode(tail):
            if token in special:
                return token, str(self.tokenizer.decode([token], skip_special_tokens=False))
        eos = self.tokenizer.eos_token_id
        return int(eos), str(self.tokenizer.eos_token)


@dataclass(frozen=True)
class Generation:
    prompt_len: int
    token_ids: list[int]
    finish_reason: str | None


@dataclass(frozen=True)
class StepOutcome:
    feedback: str
    done: bool
    reward: float
    logs: dict[str, float]


class Episode:
    """One rollout: its own env (own server state), the template, the latest generation."""

    def __init__(self, label: str, tokenizer: Any, max_length: int) -> None:
        self.label = EpisodeLabel.from_json(label)
        self.template = ChatTemplate(tokenizer)
        self.max_length = max_length
        base = base_env(self.label.env_id, self.label.format)
        self.env = ToolEnv(base.config, [self.label.task], base.servers, user=base.user, reward_fn=base.reward_fn)
        self.generation: Generation | None = None
        self._seen = 0  # messages before the assistant's current turn

    async def start(self, prompt: str | None = None) -> str:
        """Reset the env to the label's task and seed; the first prompt as the template renders it."""
        obs, _ = await self.env.reset(seed=self.label.seed, options={"task_id": self.label.task.id})
        self._seen = len(obs["messages"])
        text = self.template.render(obs["messages"], generation_prompt=True)
        if prompt is not None and prompt != text:
            log.warning("the dataset's prompt differs from the env's opening (was it exported for another model "
                        "or without --data.apply_chat_template?); the env's opening is used")  # fmt: skip
        return text

    def record(self, prompt_ids: list[int], token_ids: list[int], finish_reason: str | None) -> None:
        self.generation = Generation(len(prompt_ids), list(token_ids), finish_reason)

    async def step(self) -> StepOutcome:
        gen = self.generation
        if gen is None:
            raise InftoolError("step() before the model generated anything")
        if gen.finish_reason == "length":  # the budget ran out mid-turn: OpenRLHF generates no more
            return self._cut()
        text = str(self.template.tokenizer.decode(gen.token_ids, skip_special_tokens=True))
        result = await self.env.step(text)
        if result.terminated or result.truncated:
            return self._final(result)
        messages = result.observation["messages"]
        last = gen.token_ids[-1] if gen.token_ids else None
        feedback = self.template.feedback(messages, self._seen, last)
        self._seen = len(messages)
        if gen.prompt_len + len(gen.token_ids) + len(self.template.encode(feedback)) >= self.max_length:
            return self._cut()
        return StepOutcome(feedback, False, 0.0, self._logs(None))

    async def close(self) -> None:
        await self.env.close()

    def _final(self, result: StepResult) -> StepOutcome:
        return StepOutcome("", True, float(result.reward), self._logs(result.info["reward_breakdown"]))

    def _cut(self) -> StepOutcome:
        """Out of context before the episode ended: no reward (the env never judged it)."""
        logs = self._logs(None)
        logs["truncated"] = logs["context_exhausted"] = 1.0
        return StepOutcome("", True, 0.0, logs)

    def _logs(self, breakdown: dict[str, Any] | None) -> dict[str, float]:
        """The reward's breakdown as numbers (a component that does not apply logs 0), and the episode's size."""
        traj = self.env.trajectory
        turns = traj.turns if traj is not None else []
        calls = [c for t in turns for c in t.calls]
        logs = dict.fromkeys(LOG_KEYS, 0.0)
        logs.update(turns=float(len(turns)), tool_calls=float(len(calls)),
                    tool_errors=float(sum(c.is_error for c in calls)))  # fmt: skip
        if breakdown is not None:
            logs.update({f"gate_{g}": float(bool(breakdown["gates"].get(g))) for g in GATES})
            logs.update({k: float(v or 0.0) for k, v in breakdown["components"].items() if k in COMPONENTS})
            logs["correct"] = float(bool(breakdown.get("correct")))
            logs["truncated"] = float(bool(traj is not None and traj.truncated))
        return logs


def _arguments_as_objects(message: dict[str, Any]) -> dict[str, Any]:
    """Templates render tool-call arguments with ``tojson``: give them objects, not JSON strings."""
    if not message.get("tool_calls"):
        return message
    calls = []
    for call in message["tool_calls"]:
        args = call.get("function", {}).get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        calls.append({**call, "function": {**call["function"], "arguments": args}})
    return {**message, "tool_calls": calls}
