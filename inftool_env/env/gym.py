"""A synchronous ``gymnasium.Env`` over the async core, with one event loop for the env's life.

The loop runs in a portal thread (anyio's blocking portal), so a sync trainer, ``SyncVectorEnv``
or ``AsyncVectorEnv`` (use ``shared_memory=False``: observations are conversations) can drive it.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
from anyio.from_thread import start_blocking_portal

from inftool_env.env.core import ToolEnv
from inftool_env.env.spaces import AssistantTurnSpace, ConversationSpace


class GymToolEnv(gym.Env[dict[str, Any], Any]):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, env_id: str | None = None, *, env: ToolEnv | None = None, render_mode: str | None = None,
                 **overrides: Any) -> None:  # fmt: skip
        if env is None:
            if env_id is None:
                raise TypeError("GymToolEnv needs an env_id or an env")
            from inftool_env.registration import make

            env = make(env_id, **overrides)
        self.core: ToolEnv = env
        self.render_mode = render_mode
        self.observation_space = ConversationSpace()
        self.action_space = AssistantTurnSpace()
        self._portal_cm = start_blocking_portal(backend="asyncio")
        self._portal = self._portal_cm.__enter__()
        self._closed = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
            self.action_space.seed(seed)
        return self._portal.call(lambda: self.core.reset(seed=seed, options=options))

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        result = self._portal.call(self.core.step, action)
        info = {k: v for k, v in result.info.items() if k != "trajectory"}
        if "trajectory" in result.info:
            info["trajectory"] = result.info["trajectory"].model_dump()
        return result.observation, float(result.reward), result.terminated, result.truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.core.trajectory is None:
            return None
        lines = []
        for m in self.core.trajectory.messages:
            text = m.get("content") or ""
            if m.get("tool_calls"):
                text += " " + json.dumps([c["function"] for c in m["tool_calls"]], ensure_ascii=False)
            lines.append(f"[{m['role']}] {text}")
        return "\n".join(lines)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self.core.close)
        finally:
            self._portal_cm.__exit__(None, None, None)
