"""Any OpenAI-compatible chat endpoint, async: bounded concurrency, a timeout per request, streaming
or not, and retries on what passes: 429, 408, 5xx, dropped or refused connections and timeouts.

A retry waits as long as the server's ``Retry-After`` (or ``retry-after-ms``) asks, else backs off
exponentially with jitter; the tries (``max_retries`` after the first) and the time spent on one
request, waits included (``retry_budget_s``), are bounded. Then ``PolicyError`` says what failed,
how often, and for how long: the episode records it, its siblings go on.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from inftool_env.errors import PolicyError
from inftool_env.llm import Completion, Usage

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError, openai.APITimeoutError)
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx


class StreamCut(Exception):
    """A streamed answer ended before its last chunk (no ``finish_reason``): the connection dropped."""


def retryable(exc: BaseException) -> bool:
    # The SDK wraps errors of the request; one in the middle of a stream reaches us as httpx's own.
    if isinstance(exc, (*RETRYABLE, StreamCut, httpx2.TransportError)):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500)


def retry_after(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` as seconds or an HTTP
    date), or None when it did not say (or said nonsense)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(float(ms) / 1000, 0.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    except (TypeError, ValueError, OverflowError):
        return None


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """The wait before retry ``attempt`` (0-based) when the server named none: doubling, jittered."""
    return min(base_s * 2**attempt, cap_s) * (0.5 + random.random())  # noqa: S311 - jitter, not secrets


class OpenAIChat:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        retry_budget_s: float = 300.0,
        stream: bool = False,
    ) -> None:
        if concurrency < 1:  # asyncio.Semaphore(0) would wait forever
            raise ValueError(f"concurrency must be at least 1 request in flight, not {concurrency}")
        self.name = model
        self.base_url = base_url
        key = api_key or os.environ.get("INFTOOL_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # The SDK's own retries are off: ours are counted, logged in errors, and back off with jitter.
        self._client = AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)
        self._slots = asyncio.Semaphore(concurrency)
        self.max_retries, self.backoff_s, self.stream = max_retries, backoff_s, stream
        self.max_backoff_s, self.retry_budget_s = max_backoff_s, retry_budget_s

    async def aclose(self) -> None:
        """Close the HTTP connections (the client is shared by every episode that used it)."""
        await self._client.close()

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
        request: dict[str, Any] = {"model": self.name, "messages": messages}
        optional = {"tools": tools or None, "temperature": temperature, "seed": seed, "max_tokens": max_tokens,
                    "logprobs": logprobs or None}  # fmt: skip
        request.update({k: v for k, v in optional.items() if v is not None})
        started, queued = time.monotonic(), 0.0  # the budget counts tries and waits, not queueing for a slot
        for attempt in range(self.max_retries + 1):
            try:
                asked_at = time.monotonic()
                async with self._slots:
                    queued += time.monotonic() - asked_at
                    return await (self._streamed(request) if self.stream else self._whole(request))
            except (openai.APIError, StreamCut, httpx2.TransportError) as exc:
                if not retryable(exc):  # 400, 401, 404, …: retrying will not help
                    raise PolicyError(f"{self.base_url}: {type(exc).__name__}: {_short(exc)}") from exc
                spent = time.monotonic() - started - queued
                count = f"{attempt + 1} tr{'ies' if attempt else 'y'}"
                tries = f"{type(exc).__name__} after {count} in {spent:.1f}s: {_short(exc)}"
                if attempt == self.max_retries:
                    raise PolicyError(f"{self.base_url}: {tries}") from exc
                asked = retry_after(exc)
                wait = asked if asked is not None else backoff(attempt, self.backoff_s, self.max_backoff_s)
                if spent + wait > self.retry_budget_s:
                    why = f"the server asks for {asked:g}s more" if asked is not None else "the next wait"
                    raise PolicyError(
                        f"{self.base_url}: {tries}; {why} would pass the retry budget ({self.retry_budget_s:g}s)"
                    ) from exc
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _whole(self, request: dict[str, Any]) -> Completion:
        response = await self._client.chat.completions.create(**request)
        choice = response.choices[0]
        message: dict[str, Any] = {"role": "assistant", "content": choice.message.content or ""}
        if choice.message.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in choice.message.tool_calls
                if c.type == "function"
            ]
        lp = [t.logprob for t in choice.logprobs.content] if choice.logprobs and choice.logprobs.content else None
        return Completion(message, _usage(response.usage), choice.finish_reason, logprobs=lp)

    async def _streamed(self, request: dict[str, Any]) -> Completion:
        stream = await self._client.chat.completions.create(**request, stream=True,
                                                            stream_options={"include_usage": True})  # fmt: skip
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        logprobs: list[float] = []
        usage, finish = Usage(calls=1), None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            for choice in chunk.choices:
                delta = choice.delta
                content.append(delta.content or "")
                for part in delta.tool_calls or []:
                    call = calls.setdefault(part.index, {"id": "", "type": "function",
                                                         "function": {"name": "", "arguments": ""}})  # fmt: skip
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["function"]["name"] += part.function.name or ""
                        call["function"]["arguments"] += part.function.arguments or ""
                if choice.logprobs and choice.logprobs.content:
                    logprobs += [t.logprob for t in choice.logprobs.content]
                finish = choice.finish_reason or finish
        if finish is None:
            raise StreamCut("the stream ended before its last chunk")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return Completion(message, usage, finish, logprobs=logprobs or None)


def _short(exc: BaseException) -> str:
    """An SDK error's message in one line, bounded (a 5xx may carry a whole HTML page)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(calls=1)
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, 1)
