"""The LLM-simulated server (the paper's third agent): a model writes each tool's result from the
tool's spec, the call and the episode's history of calls so far.

Results are cached by (model, prompt, seed), so an episode replays exactly and a replay costs no
model call; ``cache_path`` keeps the cache across runs (JSONL, appended). A simulation that is not
JSON is a tool error; one that does not fit the tool's output schema is rejected by the server's
output validation — an ``isError`` result either way, never a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inftool_env.errors import ToolCallError
from inftool_env.llm import ChatModel, Usage
from inftool_env.parsing.base import strip_code_fence
from inftool_env.spec.ir import ToolSpec, ToolSuite

SYSTEM = """You simulate the API "{api}". {description}
Answer each call with the result the real API would return, as JSON only (no prose, no code fence). Keep it
consistent with the earlier calls of this session and with the initial state. For a call that the real API
would reject, return {{"error": "<message>"}}."""


class LLMSimBackend:
    def __init__(
        self, chat: ChatModel, suite: ToolSuite, *, temperature: float = 0.0, cache_path: Path | None = None
    ) -> None:
        self.chat, self.suite, self.temperature, self.cache_path = chat, suite, temperature, cache_path
        self.cache: dict[str, str] = {}
        self.usage = Usage()
        if cache_path is not None and cache_path.is_file():
            for line in cache_path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self.cache[entry["key"]] = entry["text"]

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"seed": seed, "initial": dict(initial or {}), "history": []}

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: dict[str, Any]) -> Any:
        messages = self._prompt(tool, arguments, state)
        key = hashlib.sha256(json.dumps([self.chat.name, messages, state["seed"]], sort_keys=True).encode()).hexdigest()
        text = self.cache.get(key)
        if text is None:
            done = await self.chat.complete(messages, temperature=self.temperature, seed=state["seed"])
            self.usage += done.usage
            text = str(done.message.get("content") or "")
            self._remember(key, text)
        value = _json(text, tool.name)
        state["history"].append({"tool": tool.name, "arguments": arguments, "result": value})
        if isinstance(value, dict) and set(value) == {"error"}:
            raise ToolCallError(json.dumps(value, ensure_ascii=False))
        return value

    def snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"history": state["history"]}

    def _prompt(self, tool: ToolSpec, arguments: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
        spec = {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema,
                "output_schema": tool.output_schema}  # fmt: skip
        system = SYSTEM.format(api=self.suite.name, description=self.suite.description[:1000])
        session = {"initial_state": state["initial"], "earlier_calls": state["history"]}
        user = (f"Tool: {json.dumps(spec, ensure_ascii=False)}\nSession: {json.dumps(session, ensure_ascii=False)}\n"
                f"Call: {json.dumps(arguments, ensure_ascii=False)}")  # fmt: skip
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _remember(self, key: str, text: str) -> None:
        self.cache[key] = text
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "text": text}, ensure_ascii=False) + "\n")


def _json(text: str, tool: str) -> Any:
    try:
        return json.loads(strip_code_fence(text.strip()))
    except json.JSONDecodeError as exc:
        raise ToolCallError(f"the simulated {tool} returned malformed output ({exc.msg}): {text[:200]!r}") from None
