"""The LLM boundary: one ``ChatModel`` protocol behind every role that needs a model (the assistant
policy, the user simulator, the simulated MCP server), and the string that names a model.

``openai:URL#MODEL`` is any OpenAI-compatible chat endpoint (vLLM's server in production, ours in
tests); ``hf:PATH`` a local transformers model (a directory or a .gguf file), ``gguf:PATH`` a GGUF file on
llama.cpp, ``vllm:PATH`` vLLM's offline engine on a model directory, ``hf:embedded`` /
``gguf:embedded`` / ``vllm:embedded`` the embedded default model;
``scripted:FILE`` replies from a JSON list (tests and dry runs). Options follow the model after ``?``: ``openai:http://127.0.0.1:8000/v1#qwen?temperature=0.7&stream=1``
(an endpoint's faults: ``retries=4`` after the first try, ``retry_budget_s=300`` in all; requests in flight:
``concurrency=8``). A numeric option that is not a number in its range is refused, naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from inftool_env.errors import PolicyError


@dataclass
class Usage:
    """Tokens spent; summed over an episode (``+=``), never overwritten."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        return self


@dataclass(frozen=True)
class Completion:
    """One assistant message (OpenAI shape: content and/or tool_calls), with what the backend could give."""

    message: dict[str, Any]
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None


class ChatModel(Protocol):
    name: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> Completion: ...


MODEL_KINDS = (
    "openai:URL#MODEL",
    "hf:PATH",
    "gguf:PATH",
    "vllm:PATH",
    "hf:embedded",
    "gguf:embedded",
    "vllm:embedded",
    "scripted:FILE",
)


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """``base?k=v&k2=v2`` -> (base, options); with a ``#MODEL``, the ``?`` counts only after it (an
    endpoint URL may have its own query)."""
    if "#" in spec:
        head, sep, model = spec.partition("#")
        model, _, query = model.partition("?")
        return head + sep + model, dict(parse_qsl(query, keep_blank_values=True))
    base, _, query = spec.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True))


def number_option(
    spec: str, options: dict[str, str], name: str, default: float | None, *, integer: bool = True, minimum: float = 0
) -> Any:
    """``options[name]`` (popped) as an integer (or any finite number) of at least ``minimum``, else
    ``default``; anything else is a ``PolicyError`` naming the option and what it takes."""
    if name not in options:
        return default
    value = options.pop(name)
    try:
        number = int(value) if integer else float(value)
        ok = math.isfinite(number) and number >= minimum
    except ValueError:
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        raise PolicyError(f"{spec!r}: {name} must be {kind} of at least {minimum:g}, not {value!r}")
    return number


FLAGS = {"1": True, "true": True, "0": False, "false": False}


def flag_option(spec: str, options: dict[str, str], name: str, default: bool) -> bool:
    """``options[name]`` (popped) as 1/true or 0/false, else ``default``; anything else is a
    ``PolicyError`` (``stream=yes`` read as off before)."""
    if name not in options:
        return default
    value = options.pop(name)
    if value.lower() not in FLAGS:
        raise PolicyError(f"{spec!r}: {name} must be 1/true or 0/false, not {value!r}")
    return FLAGS[value.lower()]


def parse_model(spec: str) -> tuple[Callable[[], ChatModel], dict[str, str]]:
    """A model string -> (what builds the model, the options it did not consume). Every option it
    consumes is checked here, and nothing is loaded or opened until the builder is called."""
    base, options = split_options(spec)
    if base.startswith("openai:"):
        url, sep, model = base.removeprefix("openai:").partition("#")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise PolicyError(f"{spec!r}: expected openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#qwen")
        stream = flag_option(spec, options, "stream", False)
        concurrency = number_option(spec, options, "concurrency", 8, minimum=1)
        retries = number_option(spec, options, "retries", 4)
        budget = number_option(spec, options, "retry_budget_s", 300.0, integer=False)

        def openai_chat() -> ChatModel:
            from inftool_env.llm.openai_chat import OpenAIChat

            return OpenAIChat(url, model, stream=stream, concurrency=concurrency, max_retries=retries,
                              retry_budget_s=budget)  # fmt: skip

        return openai_chat, options
    if base.startswith(("hf:", "gguf:", "vllm:")):
        kind, _, path = base.partition(":")
        max_new_tokens = number_option(spec, options, "max_new_tokens", 256, minimum=1)
        flag = {"gguf": "prefix_cache", "vllm": "compile"}.get(kind)
        on = flag_option(spec, options, flag, True) if flag else True

        def local_chat() -> ChatModel:
            if kind == "hf":
                from inftool_env.llm.hf import HFChat

                return HFChat(path, max_new_tokens=max_new_tokens)
            if kind == "gguf":
                from inftool_env.llm.gguf import GGUFChat

                return GGUFChat(path, max_new_tokens=max_new_tokens, prefix_cache=on)
            from inftool_env.llm.vllm_engine import VLLMChat

            return VLLMChat(path, max_new_tokens=max_new_tokens, compile=on)

        return local_chat, options
    if base.startswith("scripted:"):

        def scripted_chat() -> ChatModel:
            from inftool_env.llm.scripted import ScriptedChat

            return ScriptedChat.from_file(base.removeprefix("scripted:"))

        return scripted_chat, options
    raise PolicyError(f"unknown model {spec!r}; expected one of: {', '.join(MODEL_KINDS)}")


def resolve_model(spec: str) -> tuple[ChatModel, dict[str, str]]:
    """A model string -> (the model, the options it did not consume)."""
    build, options = parse_model(spec)
    return build(), options
