"""The assistant on a chat model: the conversation and the offered tools in, one assistant turn out.

``tools="native"`` sends the tools in the request (``tools=``) and returns the model's message with its
``tool_calls``; ``tools="prompt"`` sends none and returns the text, for envs whose tool-call format
renders the tools into the system prompt and parses calls out of text (Hermes/Qwen, Llama 3, BFCL). On
an env that renders none (``openai`` format) its first turn raises ``PolicyError``, naming the fix,
rather than prompt a model that is offered no tools.
Every completion is kept (``samples``: logprobs and token ids where the backend gives them) and its
tokens summed over the episode (``usage``). On a local model (``hf:``, ``vllm:``, ``gguf:``) the policy
also keeps the episode's one token record (``tokens``: ids, logprobs, assistant mask), and prompts
the model with it, so the trajectory holds exactly what was sampled.
"""

from __future__ import annotations

from typing import Any, Literal

from inftool_env.errors import PolicyError
from inftool_env.llm import ChatModel, Completion, Usage
from inftool_env.llm.episode_tokens import EpisodeTokens
from inftool_env.llm.local import LocalChat
from inftool_env.policies import PROMPT_ON_OPENAI


class ChatPolicy:
    def __init__(
        self,
        chat: ChatModel,
        *,
        tools: Literal["native", "prompt"] = "native",
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> None:
        self.chat, self.tools = chat, tools
        self.temperature, self.seed, self.max_tokens, self.logprobs = temperature, seed, max_tokens, logprobs
        self.samples: list[Completion] = []
        self.usage = Usage()
        self.tokens = EpisodeTokens(chat) if isinstance(chat, LocalChat) else None

    async def act(self, observation: dict[str, Any]) -> dict[str, Any] | str:
        messages = observation["messages"]
        if self.tools == "prompt" and not self.samples and not _tools_in_prompt(observation):
            raise PolicyError(PROMPT_ON_OPENAI)
        offered = (observation.get("tools") or None) if self.tools == "native" else None
        seed = None if self.seed is None else self.seed + len(self.samples)
        prompt = self.tokens.prompt(messages, offered) if self.tokens is not None else None
        if prompt is not None and self.tokens is not None:
            done = await self.tokens.model.complete_tokens(prompt, temperature=self.temperature, seed=seed,
                                                           max_tokens=self.max_tokens)  # fmt: skip
            self.tokens.record(done, len(messages) + 1)
        else:
            done = await self.chat.complete(messages, tools=offered, temperature=self.temperature, seed=seed,
                                            max_tokens=self.max_tokens, logprobs=self.logprobs)  # fmt: skip
        self.samples.append(done)
        self.usage += done.usage
        if self.tools == "prompt":
            return str(done.message.get("content") or "")
        return done.message


def _tools_in_prompt(observation: dict[str, Any]) -> bool:
    """Whether the episode's opening prompt offers its tools, as every text format renders them (each by
    name in the system message); an openai-format env offers them only in ``tools``. No tools: nothing to offer."""
    functions = [t.get("function", t) for t in observation.get("tools") or () if isinstance(t, dict)]
    names = [f["name"] for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str)]
    system = " ".join(str(m.get("content") or "") for m in observation["messages"] if m.get("role") == "system")
    return not names or any(name in system for name in names)
