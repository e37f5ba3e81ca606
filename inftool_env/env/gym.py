"""A synchronous ``gymnasium.Env`` over the async core, with one event loop for the env's life.

The loop runs in a portal thread (anyio's blocking portal), so a sync trainer, ``SyncVectorEnv``
or ``AsyncVectorEnv`` (use ``shared_memory=False``: observations are conversations) can drive it.
An env nobody closes is closed when it is garbage-collected or, at the latest, as the interpreter exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import weakref
from contextlib import AbstractContextManager
from typing import Any

import gymnasium as gym
from anyio.from_thread import BlockingPortal, start_blocking_portal

from inftool_env.env.core import ToolEnv
from inftool_env.env.spaces import AssistantTurnSpace, ConversationSpace
from inftool_env.errors import InftoolError


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
        portal_cm = start_blocking_portal(backend="asyncio")
        self._portal = portal_cm.__enter__()
        # Closes the core and stops the portal: at close(), when the env is collected, or at exit (the
        # finalizer's atexit hook, while the portal's daemon thread still runs). Left to the interpreter's
        # teardown, the portal's context manager would wait on that thread, frozen by then: a hang.
        self._finalizer = weakref.finalize(self, _close, portal_cm, self._portal, env, os.getpid())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._check_open()
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
            self.action_space.seed(seed)
        return self._portal.call(lambda: self.core.reset(seed=seed, options=options))

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self._check_open()
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

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise InftoolError("the environment is closed")

    def close(self) -> None:
        """Idempotent: closes the core (its servers' subprocesses too) and stops the event loop's thread."""
        self._finalizer()


def _close(portal_cm: AbstractContextManager[BlockingPortal], portal: BlockingPortal, core: ToolEnv, pid: int) -> None:
    """Run once per env, by ``close()``, the garbage collector or the exit hook; it must not refer to the env."""
    if os.getpid() != pid:  # a forked child's copy of the env: its portal thread is not in this process
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _close_now(portal_cm, portal, core)
    else:  # collected on a thread running an event loop (the portal's own, even): blocking there would deadlock
        threading.Thread(target=_close_now, args=(portal_cm, portal, core), name="inftool-gym-close").start()


def _close_now(portal_cm: AbstractContextManager[BlockingPortal], portal: BlockingPortal, core: ToolEnv) -> None:
    try:
        portal.call(core.close)
    finally:
        try:  # cancel what still runs there (a call Ctrl-C abandoned) rather than wait for it
            portal.call(portal.stop, True)
        except RuntimeError:  # the portal had stopped
            pass
        portal_cm.__exit__(None, None, None)  # joins the portal's thread
