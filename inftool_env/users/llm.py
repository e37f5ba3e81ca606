"""The LLM user simulator: a persona with a goal and hidden facts, played by a chat model.

It opens with the task's first turn, then answers only what the assistant asked (from the facts,
never inventing one), and says ``[DONE]`` when the goal is met or nothing more can be done. Roles
are flipped for the model (the assistant's words are its "user" input; tool traffic is not shown:
a user does not see the API). Seeded per task and turn; tokens reported per reply, summed by the env.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from inftool_env.errors import RegistrationError
from inftool_env.llm import ChatModel, resolve_model
from inftool_env.tasks import Task
from inftool_env.users import UserReply

DONE = "[DONE]"
PERSONA = """You are a user talking to an AI assistant that can use tools. Stay in character as the user.
Your goal: {goal}
Facts only you know (give one only when the assistant asks for it): {facts}
Rules: reply in one or two short sentences; answer only what the assistant asked; if it asks for something
that is not in your facts, say you do not know; never solve the task yourself. When your goal is achieved,
or the assistant cannot do more, reply with exactly {done}."""


class LLMUser:
    def __init__(self, chat: ChatModel, *, temperature: float = 0.0) -> None:
        self.chat, self.temperature = chat, temperature

    @classmethod
    def from_spec(cls, spec: str) -> LLMUser:
        chat, options = resolve_model(spec)
        temperature = float(options.pop("temperature", "0"))
        if options:
            raise RegistrationError(f"user llm:{spec}: unknown options {sorted(options)}")
        return cls(chat, temperature=temperature)

    async def opening(self, task: Task) -> str:
        return task.turns[0]

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        goal = task.goal or " Then: ".join(task.turns)
        system = PERSONA.format(goal=goal, facts=json.dumps(task.facts, ensure_ascii=False) or "{}", done=DONE)
        flipped = [{"role": "system", "content": system}]
        for m in messages:
            if m.get("role") == "assistant" and m.get("content"):
                flipped.append({"role": "user", "content": str(m["content"])})
            elif m.get("role") == "user":
                flipped.append({"role": "assistant", "content": str(m.get("content") or "")})
        seed = zlib.crc32(task.id.encode()) + len(messages)
        done = await self.chat.complete(flipped, temperature=self.temperature, seed=seed)
        text = str(done.message.get("content") or "").strip()
        if DONE in text or not text:
            return UserReply(None, done=True, usage=done.usage)
        return UserReply(text, usage=done.usage)
