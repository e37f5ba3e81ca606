"""The assistant on a chat model: the conversation and the offered tools in, one assistant turn out.

``tools="native"`` sends the tools in the request (``tools=``) and returns the model's message with its
``tool_calls``; ``tools="prompt"`` sends none and returns the text, for envs whose tool-call format
renders the tools into the system prompt and parses calls out of text (Hermes/Qwen, Llama 3, BFCL).
Every completion is kept (``samples``: logprobs and token ids where the backend gives them) and its
tokens summed over the episode (``usage``). On a local model (``hf:``, ``vllm:``, ``gguf:``) the policy
also keeps the episode's one token record (``tokens``: ids, logprobs, assistant mask), and prompts
the model with it, so the trajectory holds exactly what was sampled.
"""

from __future__ import annotations

from typing import Any, Literal

from inftool_env.llm import ChatModel, Completion, Usage
from inftool_env.llm.episode_tokens import EpisodeTokens
from inftool_env.llm.local import LocalChat


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
