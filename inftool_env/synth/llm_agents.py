"""The method's three agents: a user simulator, the assistant, and the MCP server, on any chat model.

For each attempt a plan is sampled with the schema builders (the category's calls, their verified
results, the hidden facts); the **user** role writes each turn of the request from the plan in its
own words; the **assistant** role attempts the task through a real env (the MCP server executes its
calls, in-process) given only the user's words and the offered tools; the attempt is kept only when
the env's own reward — the plan's ground truth, judged as any episode is — is 1.0. Both roles are
cached by (model, prompt, seed) so a run replays (``cache_path`` keeps the cache across runs).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from inftool_env.env.core import ToolEnv
from inftool_env.llm import ChatModel, Completion, Usage, resolve_model
from inftool_env.synth.categories import BUILDERS
from inftool_env.synth.context import Context, Skip
from inftool_env.synth.world import World
from inftool_env.tasks import Task

USER_PROMPT = """You play a person asking an AI assistant (which can use tools) to do something for you.
Rewrite the request below the way you would type it yourself: natural, one to three sentences.
Keep every name, number, id, date and quoted value exactly as written, and add no new ones.
Never mention functions, tools or API names. Reply with the message only."""


EXAMPLE_PLAN = "Please register a new member — name 'Ada Moreau' and email set to ada.moreau@example.org."
EXAMPLE_WORDS = "Hi! Could you sign up Ada Moreau as a new member? Her email is ada.moreau@example.org."
_PREAMBLE = re.compile(r"^(certainly|sure|here|of course|okay|ok)\b.*$", re.I)


def _clean(text: str) -> str:
    """The message alone: no "Sure, here it is:" lines, list numbers, labels or wrapping quotes."""
    lines = [re.sub(r"^(\d+[.)]|[-*])\s+", "", ln.strip()) for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln and not _PREAMBLE.match(ln) and not ln.endswith(":")]
    first = lines[0] if lines else ""
    return re.sub(r"^(message|user|request)\s*:\s*", "", first, flags=re.I).strip().strip('"').strip()


class CachedChat:
    """A chat model whose completions are remembered by (model, messages, tools, seed, temperature)."""

    def __init__(self, chat: ChatModel, *, cache_path: Path | None = None) -> None:
        self.chat, self.name, self.cache_path = chat, chat.name, cache_path
        self.cache: dict[str, dict[str, Any]] = {}
        self.usage, self.hits = Usage(), 0
        if cache_path is not None and cache_path.is_file():
            for line in cache_path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self.cache[entry["key"]] = entry["message"]

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
        blob = json.dumps([self.name, messages, tools, seed, temperature, max_tokens], sort_keys=True, default=str)
        key = hashlib.sha256(blob.encode()).hexdigest()
        if key in self.cache:
            self.hits += 1
            return Completion(dict(self.cache[key]))
        done = await self.chat.complete(messages, tools=tools, temperature=temperature, seed=seed,
                                        max_tokens=max_tokens)  # fmt: skip
        self.usage += done.usage
        message = {k: v for k, v in done.message.items() if k in ("role", "content", "tool_calls")}
        self.cache[key] = message
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "message": message}, ensure_ascii=False, default=str) + "\n")
        return done


class ThreeAgents:
    def __init__(
        self, user: ChatModel, assistant: ChatModel, world: World, *, seed: int = 0, temperature: float = 0.0
    ) -> None:
        self.user, self.assistant, self.world = user, assistant, world
        self.seed, self.temperature = seed, temperature
        self._env: ToolEnv | None = None
        self.current_plan: Task | None = None

    @classmethod
    def from_model(cls, spec: str, world: World, *, seed: int = 0, cache_path: Path | None = None) -> ThreeAgents:
        chat, options = resolve_model(spec)
        temperature = float(options.pop("temperature", "0"))
        cache = options.pop("cache", None)
        cached = CachedChat(chat, cache_path=Path(cache) if cache else cache_path)
        return cls(cached, cached, world, seed=seed, temperature=temperature)

    async def attempt(self, ctx: Context, category: str, focus: str | None) -> Task | list[Task]:
        built = await BUILDERS[category](ctx, focus)
        plan, *companions = built if isinstance(built, list) else [built]
        self.current_plan = plan  # observable (a scripted assistant in tests plays it)
        turns = [await self.write_turn(text, i) for i, text in enumerate(plan.turns)]
        task = plan.model_copy(update={"turns": turns, "goal": turns[0] if plan.goal else ""})
        reward = await self.try_assistant(task)
        if reward != 1.0:
            raise Skip("the assistant's attempt did not verify against the plan")
        task = task.model_copy(update={"provenance": {**task.provenance, "agents": self.user.name}})
        # Companions keep the plan's pairing: the same words the user role wrote for the first.
        return [task, *(c.model_copy(update={"turns": turns, "provenance": {**c.provenance, "agents": self.user.name}})
                        for c in companions)] if companions else task  # fmt: skip

    async def write_turn(self, planned: str, index: int) -> str:
        """The user role: the plan's turn, in the user's own words."""
        messages = [
            {"role": "system", "content": USER_PROMPT},
            {"role": "user", "content": EXAMPLE_PLAN},
            {"role": "assistant", "content": EXAMPLE_WORDS},
            {"role": "user", "content": planned},
        ]
        done = await self.user.complete(messages, temperature=self.temperature, seed=self.seed + index,
                                        max_tokens=96)  # fmt: skip
        text = _clean(str(done.message.get("content") or ""))
        if not text:
            raise Skip("the user role wrote nothing")
        return text

    async def try_assistant(self, task: Task) -> float:
        """The assistant role through a real env (in-process MCP); the env's reward against the plan."""
        from inftool_env.policies.chat import ChatPolicy

        env = await self._the_env(task)
        obs, _ = await env.reset(seed=self.seed, options={"task": task})
        policy = ChatPolicy(self.assistant, temperature=self.temperature, seed=self.seed, max_tokens=160)
        for _ in range(env.limits.max_turns):
            result = await env.step(await policy.act(obs))
            obs = result.observation
            if result.terminated or result.truncated:
                return float(result.reward)
        return 0.0

    async def _the_env(self, task: Task) -> ToolEnv:
        if self._env is None:
            from inftool_env.synth.run import env_config

            config = env_config(self.world).model_copy(update={"user": "scripted", "transport": "inprocess"})
            config = config.model_copy(update={"limits": config.limits.model_copy(update={"max_turns": 8})})
            self._env = ToolEnv(config, [task], self.world.compiled)
        return self._env

    async def aclose(self) -> None:
        if self._env is not None:
            await self._env.close()
            self._env = None
