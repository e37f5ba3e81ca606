"""Assistant policies (installed as ``inftool_env.policies``), each named on the command line by one string.

- ``oracle``: plays each task's ground truth (contract tests, and the ceiling of an evaluation);
- ``openai:URL#MODEL[?options]``: any OpenAI-compatible endpoint (vLLM's server, ours over a local model);
- ``hf:PATH`` / ``hf:embedded``: a local transformers model, or the embedded default (``model`` extra);
- ``gguf:PATH`` / ``gguf:embedded``: a GGUF file on llama.cpp, the fastest on a CPU (``gguf`` extra);
- ``vllm:PATH`` / ``vllm:embedded``: vLLM's offline engine (installed apart: it pins its own torch stack);
- ``scripted:FILE``: replies from a JSON list (dry runs, tests).

Options: ``tools=native|prompt``, ``temperature``, ``seed``, ``max_tokens``, ``logprobs=1``, and for
endpoints ``stream=1`` and ``concurrency`` (requests in flight, shared by every episode); for ``gguf:``
``prefix_cache=0`` (evaluate every prompt whole: slower, exactly reproducible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm import MODEL_KINDS
from inftool_env.tasks import Task

KNOWN = ", ".join(("oracle", *MODEL_KINDS))
MODEL_PREFIXES = tuple(dict.fromkeys(kind.split(":")[0] + ":" for kind in MODEL_KINDS))  # openai:, hf:, …


def resolve_policy(spec: str) -> Callable[[Task], Any]:
    """A policy string -> a factory making one policy per episode (given the episode's task)."""
    if spec == "oracle":
        from inftool_env.policies.oracle import OraclePolicy

        return OraclePolicy
    if spec.startswith(MODEL_PREFIXES):
        return _chat_policy(spec)
    raise PolicyError(f"unknown policy {spec!r}; available: {KNOWN}")


def _chat_policy(spec: str) -> Callable[[Task], Any]:
    from inftool_env.llm import resolve_model

    chat, options = resolve_model(spec)
    try:
        tools = options.pop("tools", "native")
        if tools not in ("native", "prompt"):
            raise ValueError(f"tools must be native or prompt, not {tools!r}")
        kwargs: dict[str, Any] = {
            "tools": tools,
            "temperature": float(options.pop("temperature")) if "temperature" in options else None,
            "seed": int(options.pop("seed")) if "seed" in options else None,
            "max_tokens": int(options.pop("max_tokens")) if "max_tokens" in options else None,
            "logprobs": options.pop("logprobs", "0") in ("1", "true"),
        }
    except ValueError as exc:
        raise PolicyError(f"policy {spec!r}: {exc}") from None
    if options:
        raise PolicyError(f"policy {spec!r}: unknown options {sorted(options)}")
    return ChatPolicyFactory(chat, kwargs)


class ChatPolicyFactory:
    """One ChatPolicy per episode, all on one model client (so its concurrency bound is shared)."""

    def __init__(self, chat: Any, options: dict[str, Any]) -> None:
        self.chat, self.options = chat, options

    def __call__(self, task: Task) -> Any:
        from inftool_env.policies.chat import ChatPolicy

        return ChatPolicy(self.chat, **self.options)

    async def aclose(self) -> None:
        close = getattr(self.chat, "aclose", None)
        if close is not None:
            await close()


async def close_policy(factory: Any) -> None:
    """Release what a policy factory holds (HTTP clients); a no-op for those that hold nothing."""
    close = getattr(factory, "aclose", None)
    if close is not None:
        await close()
