"""Assistant policies (installed as ``inftool_env.policies``), each named on the command line by one string.

- ``oracle``: plays each task's ground truth (contract tests, and the ceiling of an evaluation);
- ``openai:URL#MODEL[?options]``: any OpenAI-compatible endpoint (vLLM's server, ours over a local model);
- ``hf:PATH`` / ``hf:embedded``: a local transformers model, or the embedded default (``model`` extra);
- ``gguf:PATH`` / ``gguf:embedded``: a GGUF file on llama.cpp, the fastest on a CPU (``gguf`` extra);
- ``vllm:PATH`` / ``vllm:embedded``: vLLM's offline engine (installed apart: it pins its own torch stack);
- ``scripted:FILE``: replies from a JSON list (dry runs, tests), each episode from the list's start;
  ``?shared=1``: one sequence for all episodes, in the order their requests arrive (as before; the same
  run twice reads alike only at concurrency 1).

Options: ``tools=native|prompt`` (``prompt``: the env renders the tools into its prompt and parses calls
out of the text, so the env must be in a text format, not ``openai``), ``temperature``, ``seed``,
``max_tokens``, ``logprobs=1``, and for endpoints ``stream=1`` and ``concurrency`` (requests in flight,
shared by every episode); for ``gguf:`` ``prefix_cache=0`` (evaluate every prompt whole: slower, exactly
reproducible). A number out of its range (``concurrency=0``, ``max_tokens=abc``) is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm import MODEL_KINDS
from inftool_env.tasks import Task

KNOWN = ", ".join(("oracle", *MODEL_KINDS))
# tools=prompt on an env whose format is openai: that env renders no tools into its prompt and reads text as a reply.
PROMPT_ON_OPENAI = (
    "tools=prompt needs an env in a text tool-call format, which renders the tools into its prompt; this one "
    "is in openai format (no tools in the prompt): use tools=native, or an env in a text format "
    '(format = "hermes" in its manifest, or make(ID, format="hermes"))'
)
MODEL_PREFIXES = tuple(dict.fromkeys(kind.split(":")[0] + ":" for kind in MODEL_KINDS))  # openai:, hf:, …


def resolve_policy(spec: str, *, env_format: str | None = None) -> Callable[[Task], Any]:
    """A policy string -> a factory making one policy per episode (given the episode's task). With
    ``env_format`` (the env's tool-call format), a policy that cannot act on that env is refused too."""
    if spec == "oracle":
        from inftool_env.policies.oracle import OraclePolicy

        return OraclePolicy
    if spec.startswith(MODEL_PREFIXES):
        build, options, per_episode = _chat_policy(spec, env_format)
        return ChatPolicyFactory(build(), options, per_episode=per_episode)
    raise PolicyError(f"unknown policy {spec!r}; available: {KNOWN}")


def check_policy(spec: str, *, env_format: str | None = None) -> None:
    """What ``resolve_policy`` would refuse in ``spec``, found without building the model (a Ray driver
    checks the string its workers will resolve, before anything is written)."""
    if spec != "oracle" and not spec.startswith(MODEL_PREFIXES):
        raise PolicyError(f"unknown policy {spec!r}; available: {KNOWN}")
    if spec != "oracle":
        _chat_policy(spec, env_format)


def _chat_policy(spec: str, env_format: str | None) -> tuple[Callable[[], Any], dict[str, Any], bool]:
    """(what builds the model, the ChatPolicy's options, whether each episode gets its own model state)."""
    from inftool_env.llm import flag_option, number_option, parse_model

    build, options = parse_model(spec)
    tools = options.pop("tools", "native")
    if tools not in ("native", "prompt"):
        raise PolicyError(f"policy {spec!r}: tools must be native or prompt, not {tools!r}")
    if tools == "prompt" and env_format == "openai":
        raise PolicyError(f"policy {spec!r}: {PROMPT_ON_OPENAI}")
    shared = flag_option(spec, options, "shared", False) if spec.startswith("scripted:") else False
    kwargs: dict[str, Any] = {
        "tools": tools,
        "temperature": number_option(spec, options, "temperature", None, integer=False),
        "seed": number_option(spec, options, "seed", None),
        "max_tokens": number_option(spec, options, "max_tokens", None, minimum=1),
        "logprobs": flag_option(spec, options, "logprobs", False),
    }
    if options:
        raise PolicyError(f"policy {spec!r}: unknown options {sorted(options)}")
    return build, kwargs, not shared


class ChatPolicyFactory:
    """One ChatPolicy per episode, all on one model client (so its concurrency bound is shared). A model
    with per-episode state (``for_episode``: the scripted one) gives each episode its own copy, unless
    ``per_episode`` is off."""

    def __init__(self, chat: Any, options: dict[str, Any], *, per_episode: bool = True) -> None:
        self.chat, self.options, self.per_episode = chat, options, per_episode

    def __call__(self, task: Task) -> Any:
        from inftool_env.policies.chat import ChatPolicy

        fork = getattr(self.chat, "for_episode", None) if self.per_episode else None
        return ChatPolicy(fork() if fork is not None else self.chat, **self.options)

    async def aclose(self) -> None:
        close = getattr(self.chat, "aclose", None)
        if close is not None:
            await close()


async def close_policy(factory: Any) -> None:
    """Release what a policy factory holds (HTTP clients); a no-op for those that hold nothing."""
    close = getattr(factory, "aclose", None)
    if close is not None:
        await close()
