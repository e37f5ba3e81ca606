"""The LLM boundary: one ``ChatModel`` protocol behind every role that needs a model (the assistant
policy, the user simulator, the simulated MCP server), and the string that names a model.

``openai:URL#MODEL`` is any OpenAI-compatible chat endpoint (vLLM's server in production, ours in
tests); ``hf:PATH`` a local transformers model (a directory or a .gguf file), ``gguf:PATH`` a GGUF file on
llama.cpp, ``vllm:PATH`` vLLM's offline engine on a model directory, ``hf:embedded`` /
``gguf:embedded`` / ``vllm:embedded`` the embedded default model;
``scripted:FILE`` replies from a JSON list (tests and dry runs). Options follow the model after ``?``: ``openai:http://127.0.0.1:8000/v1#qwen?temperature=0.7&stream=1``
(an endpoint's faults: ``retries=4`` after the first try, ``retry_budget_s=300`` in all).
"""

from __future__ import annotations

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


def resolve_model(spec: str) -> tuple[ChatModel, dict[str, str]]:
    """A model string -> (the model, the options it did not consume)."""
    base, options = split_options(spec)
    if base.startswith("openai:"):
        from inftool_env.llm.openai_chat import OpenAIChat

        url, sep, model = base.removeprefix("openai:").partition("#")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise PolicyError(f"{spec!r}: expected openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#qwen")
        try:
            retries = {k: float(options.pop(k)) for k in ("retries", "retry_budget_s") if k in options}
            if any(not v >= 0 for v in retries.values()):  # `not >=` refuses NaN too
                raise ValueError("a negative number")
        except ValueError as exc:
            raise PolicyError(f"{spec!r}: retries and retry_budget_s are numbers of at least 0 ({exc})") from None
        chat = OpenAIChat(url, model, stream=options.pop("stream", "0") in ("1", "true"),
                          concurrency=int(options.pop("concurrency", "8")),
                          max_retries=int(retries.get("retries", 4)),
                          retry_budget_s=retries.get("retry_budget_s", 300.0))  # fmt: skip
        return chat, options
    if base.startswith("hf:"):
        from inftool_env.llm.hf import HFChat

        return HFChat(base.removeprefix("hf:"), max_new_tokens=int(options.pop("max_new_tokens", "256"))), options
    if base.startswith("gguf:"):
        from inftool_env.llm.gguf import GGUFChat

        cache = options.pop("prefix_cache", "1") in ("1", "true")
        return GGUFChat(base.removeprefix("gguf:"), max_new_tokens=int(options.pop("max_new_tokens", "256")),
                        prefix_cache=cache), options  # fmt: skip
    if base.startswith("vllm:"):
        from inftool_env.llm.vllm_engine import VLLMChat

        compiled = options.pop("compile", "1") in ("1", "true")
        return VLLMChat(base.removeprefix("vllm:"), max_new_tokens=int(options.pop("max_new_tokens", "256")),
                        compile=compiled), options  # fmt: skip
    if base.startswith("scripted:"):
        from inftool_env.llm.scripted import ScriptedChat

        return ScriptedChat.from_file(base.removeprefix("scripted:")), options
    raise PolicyError(f"unknown model {spec!r}; expected one of: {', '.join(MODEL_KINDS)}")
