"""What every in-process model shares: the chat template (tools included) renders the prompt,
concurrent requests with the same sampling settings are generated as one batch in a worker thread
(the event loop keeps serving), and the reply's ``<tool_call>`` blocks (Hermes/Qwen) become OpenAI
``tool_calls``, with the completion's token ids and per-token logprobs. A completion's ids end with
the stop token the model chose (it is part of the action a trainer scores); none when it ran out of
``max_tokens``. Subclasses only generate, and check ``abandoned()`` between tokens: a generation whose
caller was cancelled (Ctrl-C) stops at its next token instead of holding the interpreter's exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm import Completion, Usage
from inftool_env.parsing import get_format

_HERMES = get_format("hermes")
BATCH_WINDOW_S = 0.02  # how long the first request waits for others to join its batch
Generated = tuple[list[int], list[float]]  # the completion's token ids and their logprobs


# The running generation's stop flag: asyncio.to_thread copies the context, so each worker thread
# sees the flag of its own generation (one cancelled does not stop the next one).
_STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("inftool_generation_stop", default=None)


def abandoned() -> bool:
    """Whether the generation running in this thread was given up by its caller: stop at the next token."""
    stop = _STOP.get()
    return stop is not None and stop.is_set()


@dataclass
class _Request:
    prompt: list[int]
    future: asyncio.Future[Generated] = field(repr=False)
    seed: int | None = None


class LocalChat:
    name: str
    tokenizer: Any
    max_new_tokens: int
    max_batch: int
    # A model that seeds each row of a batch itself (``_generate_rows``) batches requests whatever their
    # seeds: a trainer's G samples of one prompt then share one batch and still differ.
    seeds_per_request = False

    def _setup_batching(self) -> None:
        self._queues: dict[tuple[float, int, int | None], list[_Request]] = {}
        # One lock per event loop that uses the model (a closed loop's lock goes with it).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._drains: set[asyncio.Task[None]] = set()  # held, so a pending drain is never garbage-collected

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[Generated]:
        raise NotImplementedError

    def _generate_rows(
        self, prompts: list[list[int]], seeds: list[int | None], temperature: float, max_new: int
    ) -> list[Generated]:
        """One generation per prompt, each with its own seed (used when ``seeds_per_request``)."""
        raise NotImplementedError

    def stop_ids(self) -> set[int]:
        """Tokens that end a completion: end-of-sequence and the template's end of turn."""
        return {int(self.tokenizer.eos_token_id), self.end_of_turn_id()}

    def cut_at_stop(self, ids: list[int], lps: list[float], pad: int | None = None) -> Generated:
        """A raw generation up to and including its first stop token (padding after it dropped)."""
        stops = self.stop_ids()
        for i, t in enumerate(ids):
            if t in stops:
                return ids[: i + 1], lps[: i + 1]
            if t == pad:
                return ids[:i], lps[:i]
        return ids, lps

    def end_of_turn_id(self) -> int:
        """The token that closes an assistant turn in the chat template (``<|im_end|>`` for ChatML)."""
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return end if isinstance(end, int) and end >= 0 else int(self.tokenizer.eos_token_id)

    def render_text(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, *, generation_prompt: bool = True
    ) -> str:
        """The prompt as text, by the model's own chat template (tool-call arguments as objects)."""
        prepared = []
        for m in messages:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [
                    {**c, "function": {**c["function"], "arguments": _as_object(c["function"].get("arguments"))}}
                    for c in m["tool_calls"]
                ]
            prepared.append(m)
        return str(self.tokenizer.apply_chat_template(
            prepared, tools=list(tools) if tools else None, add_generation_prompt=generation_prompt, tokenize=False
        ))  # fmt: skip

    def encode(self, text: str) -> list[int]:
        """Text with the template's special tokens in it -> ids (no BOS added: the template writes its own)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        """The prompt's token ids for the next assistant turn."""
        return self.encode(self.render_text(messages, tools))

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> Completion:
        prompt = self.render(messages, tools)
        done = await self.complete_tokens(prompt, temperature=temperature, seed=seed, max_tokens=max_tokens)
        return done if logprobs else replace(done, logprobs=None)

    async def complete_tokens(
        self,
        prompt: list[int],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One assistant turn from a prompt given as token ids (an episode's own token record), with
        its token ids and logprobs always."""
        shared_seed = None if self.seeds_per_request else seed  # else each request brings its own
        key = (float(temperature or 0.0), int(max_tokens or self.max_new_tokens), shared_seed)
        future: asyncio.Future[Generated] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append(_Request(prompt, future, seed))
        asyncio.get_running_loop().call_later(BATCH_WINDOW_S, self._start_drain, key)
        ids, lps = await future
        text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
        parsed = _HERMES.parse(text)
        message: dict[str, Any] = {"role": "assistant", "content": parsed.content if parsed.calls else text}
        if parsed.calls and parsed.error is None:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for i, c in enumerate(parsed.calls)
            ]  # fmt: skip
        stopped = bool(ids) and ids[-1] in self.stop_ids()
        # Cut at max_tokens is "length" even where the calls before the cut parse (as OpenAI says it).
        finish = "length" if not stopped else ("tool_calls" if "tool_calls" in message else "stop")
        return Completion(message, Usage(len(prompt), len(ids), 1), finish, token_ids=ids, logprobs=lps)

    async def settle(self) -> None:
        """Wait until no generation runs (requests given up on stop at their next token): a trainer
        changes the weights only after this, never under a generation still reading them."""
        while self._drains:
            await asyncio.gather(*list(self._drains), return_exceptions=True)

    def _start_drain(self, key: tuple[float, int, int | None]) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, key: tuple[float, int, int | None]) -> None:
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:  # one generate() at a time per loop; the model is not re-entrant
            while self._queues.get(key):
                # A request whose episode gave up (its deadline) while it queued is not generated at all.
                waiting = [r for r in self._queues[key] if not r.future.done()]
                batch, self._queues[key] = waiting[: self.max_batch], waiting[self.max_batch :]
                if not batch:
                    continue
                prompts = [r.prompt for r in batch]
                stop = threading.Event()
                _STOP.set(stop)  # this task's context, copied into the thread by to_thread
                unwanted = functools.partial(_stop_when_all_done, batch, stop)  # every caller gave up: stop early
                for r in batch:
                    r.future.add_done_callback(unwanted)
                try:
                    if self.seeds_per_request:
                        seeds = [r.seed for r in batch]
                        results = await asyncio.to_thread(self._generate_rows, prompts, seeds, *key[:2])
                    else:
                        results = await asyncio.to_thread(self._generate, prompts, *key)
                except asyncio.CancelledError:
                    stop.set()  # the thread ends at its next token: nothing waits on a generation no one wants
                    for r in batch:
                        r.future.cancel()
                    raise
                except Exception as exc:  # the model broke: every waiting request hears why
                    for r in batch:
                        if not r.future.done():
                            r.future.set_exception(PolicyError(f"{self.name}: generation failed: {exc}"))
                    continue
                # A request cancelled while its batch ran (its episode's deadline) has a done future: setting
                # it would raise and end this drain, leaving the batch's other requests waiting forever.
                for r, result in zip(batch, results, strict=True):
                    if not r.future.done():
                        r.future.set_result(result)


def _stop_when_all_done(batch: list[_Request], stop: threading.Event, _: object) -> None:
    if all(r.future.done() for r in batch):
        stop.set()


def _as_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments
