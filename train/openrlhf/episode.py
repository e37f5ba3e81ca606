"""One OpenRLHF rollout as one isolated episode of our env, token-exact.

OpenRLHF's multi-turn executor keeps the ids the model sampled as they are and appends the
tokenization of each ``environment_feedback`` text. So the feedback here is exactly what the model's own
chat template writes between the end of the assistant's turn and the start of its next one — the
turn's closing tail (``\\n`` after ``<|im_end|>``), the tool results or the user's reply as the template
renders them, and the next generation prompt — with the end-of-turn token prepended only when the
model stopped on another token. The model's text reaches the env decoded from its sampled ids, special
tokens kept (a call marker may be one: Mistral's ``[TOOL_CALLS]``) but the end-of-turn token it stopped on;
nothing it said is ever re-tokenized. The template is checked at each episode's start: one that cannot
continue a conversation as one token sequence fails there, before any generation.

An episode's env is a worker spawned from the process's compiled env and given back when the episode
ends, so the process keeps one worker per concurrent rollout: over the in-process transport they share
one connection (one tools listing), over stdio each is one server subprocess, reused. Connections belong
to the event loop that opened them; OpenRLHF runs an engine's rollouts as tasks on its actor's one loop.

The reward is the env's gated reward, given on the episode's last step (0 before); its breakdown goes
to ``extra_logs`` with the same keys on every step, since OpenRLHF logs the last step's.

An opening longer than OpenRLHF leaves for it (``--data.max_len`` less the generation's minimum) would be
cut to its last tokens, the system message's head and tools gone. Raising would end the whole training run
for one row (an executor's exception reaches the trainer's ``ray.get``), so the episode fails instead: an
error logged once per task and process (env, task, the prompt's tokens, max_length, the fix), no env
step, a one-token generation, reward 0 and ``prompt_too_long`` 1 in ``extra_logs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.env.pool import WorkerPool
from inftool_env.errors import InftoolError
from inftool_env.rewards import COMPONENTS, GATES
from inftool_env.train.checks import check_text_format
from inftool_env.train.openrlhf.dataset import EpisodeLabel

log = logging.getLogger(__name__)

LOG_KEYS = (
    *(f"gate_{g}" for g in GATES), *COMPONENTS, "correct", "turns", "tool_calls", "tool_errors", "truncated",
    "context_exhausted", "prompt_too_long",
)  # fmt: skip
_BASES: dict[tuple[str, str], ToolEnv] = {}  # compiled servers, shared by every episode in this process
_TOO_LONG_LOGGED: set[tuple[str, str, int]] = set()  # (env, task, room): each logged once per process


def base_env(env_id: str, fmt: str) -> ToolEnv:
    """The registered env in format ``fmt``, compiled once per process (its servers keep one state
    per episode, so episodes share them safely)."""
    key = (env_id, fmt)
    if key not in _BASES:
        from inftool_env.registration import make

        check_text_format(fmt)
        _BASES[key] = make(env_id, trainer_driven=True, format=fmt)
    return _BASES[key]


class _Pools:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.by_env: dict[tuple[str, str], WorkerPool] = {}

    def get(self, env_id: str, fmt: str) -> WorkerPool:
        """This event loop's workers for (env, format), spawned from one env that holds the in-process
        connection they share."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new loop (a test's asyncio.run): the old one closed its connections
            self.loop, self.by_env = loop, {}
        key = (env_id, fmt)
        if key not in self.by_env:
            base = base_env(env_id, fmt)
            lender = ToolEnv(base.config, base.tasks, base.servers, user=base.user, reward_fn=base.reward_fn)
            self.by_env[key] = WorkerPool(lender)
        return self.by_env[key]


_POOLS = _Pools()


class ChatTemplate:
    """The trained model's chat template, for the env's side of the conversation."""

    PROBE = "inftool-probe-3f9c"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.end_id, self.end_text = self._end_of_turn()
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self.special_ids = {i for i, t in added.items() if getattr(t, "special", False)}
        self.special_ids |= {self.end_id, *(getattr(tokenizer, "all_special_ids", []) or [])}

    def render(self, messages: list[dict[str, Any]], *, generation_prompt: bool) -> str:
        # The env renders the tools into the system message (its text format), so none go to the template.
        prepared = [_arguments_as_objects(m) for m in messages]
        text = self.tokenizer.apply_chat_template(prepared, add_generation_prompt=generation_prompt, tokenize=False)
        return str(text)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text=text, add_special_tokens=False)["input_ids"])

    def opening(self, messages: list[dict[str, Any]]) -> tuple[str, int]:
        """The episode's first prompt as OpenRLHF gets it (rendered with a generation prompt) and its tokens
        as OpenRLHF counts them (no special tokens added): what the agent file starts from and the export checks."""
        text = self.render(messages, generation_prompt=True)
        return text, len(self.encode(text))

    def text_of(self, token_ids: list[int]) -> str:
        """What a turn that stopped wrote, special tokens included (``skip_special_tokens`` would drop a
        call marker the tokenizer flags special), less the token it stopped on: vLLM keeps an EOS or
        stop-token id (``<|im_end|>``, Llama's ``<|eom_id|>``) at the end, and parsers take no text after a call."""
        if token_ids and token_ids[-1] in self.special_ids:
            token_ids = token_ids[:-1]
        return str(self.tokenizer.decode(token_ids, skip_special_tokens=False))

    def check(self, opening: list[dict[str, Any]]) -> None:
        """Raise what ``feedback`` would only raise mid-rollout: the opening, then a tool call, its
        result, an answer and the user's reply must each render as a continuation."""
        call = {"id": "call_0", "type": "function", "function": {"name": self.PROBE, "arguments": "{}"}}
        turns = [
            *opening, {"role": "assistant", "content": self.PROBE, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "name": self.PROBE, "content": self.PROBE},
            {"role": "assistant", "content": self.PROBE}, {"role": "user", "content": self.PROBE},
        ]  # fmt: skip
        self.feedback(turns[: len(opening) + 2], len(opening), self.end_id)
        self.feedback(turns, len(opening) + 2, self.end_id)

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
    """One rollout: a worker env (the episode's own server state), the template, the latest generation.
    Built inside the rollout's task (the worker belongs to its event loop)."""

    def __init__(self, label: str, tokenizer: Any, max_length: int, min_generation: int = 1) -> None:
        self.label = EpisodeLabel.from_json(label)
        self.template = ChatTemplate(tokenizer)
        self.max_length = max_length
        self.prompt_room = max_length - min_generation  # OpenRLHF keeps at most this much of the opening
        self.too_long = False  # the opening is over prompt_room: the episode is failed, never played
        self._workers = _POOLS.get(self.label.env_id, self.label.format)
        self.env = self._workers.take()
        self.generation: Generation | None = None
        self._seen = 0  # messages before the assistant's current turn
        self._ended = False  # a step said done: the worker is fit for the next episode
        self._closed = False

    async def start(self, prompt: str | None = None) -> str:
        """Reset the env to the label's task and seed; the first prompt as the template renders it."""
        obs, _ = await self.env.reset(seed=self.label.seed, options={"task": self.label.task})
        self.template.check(obs["messages"])
        self._seen = len(obs["messages"])
        text, tokens = self.template.opening(obs["messages"])
        if prompt is not None and prompt != text:
            log.warning("the dataset's prompt differs from the env's opening (was it exported for another model "
                        "or without --data.apply_chat_template?); the env's opening is used")  # fmt: skip
        if tokens > self.prompt_room:
            self.too_long = True
            key = (self.label.env_id, self.label.task.id, self.prompt_room)
            if key not in _TOO_LONG_LOGGED:
                _TOO_LONG_LOGGED.add(key)
                log.error("%s", self.too_long_reason(tokens))
        return text

    def too_long_reason(self, tokens: int) -> str:
        room, generation = self.prompt_room, self.max_length - self.prompt_room
        leaves = f"{room:,}" if generation == 1 else f"{room:,}, after --rollout.max_new_tokens {generation:,}"
        return (
            f"{self.label.env_id} task {self.label.task.id}: its opening prompt is {tokens:,} tokens, more than "
            f"max_length (--data.max_len) {self.max_length:,} leaves it ({leaves}); OpenRLHF would keep only its "
            f"last {room:,} tokens, cutting the system message's head and tools, so the episode fails unplayed "
            f"(reward 0, prompt_too_long 1): raise --data.max_len (MAX_LEN in launch_grpo.sh) above "
            f"{tokens + generation - 1:,}, with room for the episode's turns"
        )

    def record(self, prompt_ids: list[int], token_ids: list[int], finish_reason: str | None) -> None:
        self.generation = Generation(len(prompt_ids), list(token_ids), finish_reason)

    async def step(self) -> StepOutcome:
        gen = self.generation
        if gen is None:
            raise InftoolError("step() before the model generated anything")
        if self.too_long:  # what the model saw was the prompt's tail: nothing to judge
            return self._cut(prompt_too_long=True)
        if gen.finish_reason == "length":  # the budget ran out mid-turn: OpenRLHF generates no more
            return self._cut()
        result = await self.env.step(self.template.text_of(gen.token_ids))
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
        """Give the worker back; one left mid-step (an error, a cancel) is closed instead."""
        if self._closed:
            return
        self._closed = True
        if self._ended:
            await self._workers.give_back(self.env)
        else:
            await self._workers.discard(self.env)

    def _final(self, result: StepResult) -> StepOutcome:
        self._ended = True
        return StepOutcome("", True, float(result.reward), self._logs(result.info["reward_breakdown"]))

    def _cut(self, *, prompt_too_long: bool = False) -> StepOutcome:
        """Out of context before the episode ended (or began): no reward (the env never judged it)."""
        self._ended = True
        logs = self._logs(None)
        logs["truncated"] = logs["context_exhausted"] = 1.0
        logs["prompt_too_long"] = float(prompt_too_long)
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
