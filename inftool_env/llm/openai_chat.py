"""Any OpenAI-compatible chat endpoint, async: bounded concurrency, retries with backoff on 429,
5xx and dropped connections, a timeout per request, streaming or not."""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import openai
from openai import AsyncOpenAI

from inftool_env.errors import PolicyError
from inftool_env.llm import Completion, Usage

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError, openai.APITimeoutError)


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
        stream: bool = False,
    ) -> None:
        self.name = model
        self.base_url = base_url
        key = api_key or os.environ.get("INFTOOL_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # The SDK's own retries are off: ours are counted, logged in errors, and back off with jitter.
        self._client = AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)
        self._slots = asyncio.Semaphore(concurrency)
        self.max_retries, self.backoff_s, self.stream = max_retries, backoff_s, stream

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
        for attempt in range(self.max_retries + 1):
            try:
                async with self._slots:
                    return await (self._streamed(request) if self.stream else self._whole(request))
            except RETRYABLE as exc:
                if attempt == self.max_retries:
                    raise PolicyError(
                        f"{self.base_url}: {type(exc).__name__} after {attempt + 1} tries: {exc}"
                    ) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter
            except openai.APIError as exc:  # 4xx other than 429: retrying will not help
                raise PolicyError(f"{self.base_url}: {type(exc).__name__}: {exc}") from exc
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
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return Completion(message, usage, finish, logprobs=logprobs or None)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(calls=1)
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, 1)
