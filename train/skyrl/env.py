"""A SkyRL-gym 0.4 ``BaseTextEnv`` over our ``ToolEnv``: text in, chat messages out, gated reward at the end.

SkyRL's generator makes one env per trajectory (``skyrl_gym.make(env_class, env_config=…, extras=row)``),
calls ``init(prompt)`` once and ``step(model_text)`` until ``done``, appending the returned
observations (chat messages) to the conversation it renders with the model's chat template. Here:

- ``init`` resets our env on the row's task and seed and returns our conversation (system message
  with the tools rendered in the row's tool-call format, e.g. ``hermes`` for Qwen, and the user's
  opening) in place of the dataset's prompt, so both always agree;
- ``step`` parses the text in that format, runs the calls on the env's real MCP server (its own
  isolated episode state) and returns the tool results (role ``tool``) and the user's reply
  (role ``user``) as the observations;
- the reward is 0 until the episode ends, then our gated reward (breakdown in ``metadata``).

Our env is async. Every instance in the process runs its core on one event loop, on a daemon thread
that outlives them all, so SkyRL may call any instance from any thread (its generator uses a thread
pool). One loop, not one per instance: in-process, the cores spawned from one base env share its
connections, kept by a task on the loop that opened them; a loop per instance would run every sibling
over the first instance's loop, from other threads, and kill them all when that instance closed.
A forked process starts afresh (its own loop and base envs, made on first use); an instance made
before the fork is its parent's, and using it there is an error.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import threading
from collections.abc import Coroutine, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from inftool_env.env import ToolEnv
from inftool_env.env.core import refuse_missing_servers
from inftool_env.errors import InftoolError, first_invalid
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.tasks import Task
from inftool_env.train.checks import check_seed, check_text_format, text_format
from inftool_env.train.loop_thread import LoopThread
from inftool_env.train.skyrl.register import env_key

T = TypeVar("T")

_BASE: dict[tuple[str, str | None], ToolEnv] = {}
_BASE_LOCK = threading.Lock()
_LOOP: LoopThread | None = None
_LOOP_LOCK = threading.Lock()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the process's one loop for these envs (started on first use) and wait for it."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = LoopThread("inftool-skyrl", "the SkyRL environments' event loop")
            atexit.register(_shutdown)
        loop = _LOOP
    return loop.run(coro)


def _forget_the_parents() -> None:
    """In a forked child: the parent's loop has no thread here and its envs' connections are the parent's."""
    global _LOOP, _LOOP_LOCK, _BASE_LOCK
    _LOOP, _LOOP_LOCK = None, threading.Lock()  # a lock another thread held at the fork stays held: new ones
    _BASE.clear()
    _BASE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_the_parents)


def _shutdown() -> None:
    """At exit: close the base envs (their connections), end what an unclosed env left running (a
    stdio server's keeper, which then stops its subprocess), and stop the loop."""
    if _LOOP is None or _LOOP.loop.is_closed():
        return
    try:
        with _BASE_LOCK:
            bases = list(_BASE.values())
            _BASE.clear()
        for env in bases:
            run(env.close())  # never raises
        run(_cancel_the_rest())
    finally:
        _LOOP.stop()


async def _cancel_the_rest() -> None:
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def base_env(env_id: str, fmt: str | None = None) -> ToolEnv:
    """One compiled env per (id, format) in this process; each text env spawns from it (shared
    servers, isolated episodes), so a trajectory does not recompile the spec.

    ``fmt`` defaults to the manifest's where it is a text format, else hermes (Qwen2.5's): the registry's
    manifests say ``openai``, whose structured calls a text trainer never produces, so its prompts would list
    no tools and every reward would be 0. A format like that is refused; a BFCL env too (evaluation only)."""
    with _BASE_LOCK:
        key = (env_id, fmt)  # as given: every episode makes its env here, so the manifest is read once per key
        if key not in _BASE:
            from inftool_env.registration import default_registry, make

            config = default_registry().resolve(env_id).config
            refuse_bfcl(env_id, config)  # before anything is compiled
            chosen = text_format(config.format, fmt)
            check_text_format(chosen, "SkyRL")
            env = make(env_id, trainer_driven=True, format=chosen)
            refuse_bfcl(env_id, env.config, env.tasks)  # its tasks too: BFCL's, however the env is named
            _BASE[key] = env
        return _BASE[key]


def _setting(name: str, extras: Mapping[str, Any], env_config: Any, default: Any = None) -> Any:
    """A row's ``extras`` win over the env config (a dict or an omegaconf DictConfig)."""
    if name in extras and extras[name] is not None:
        return extras[name]
    if env_config is not None:
        value = env_config.get(name) if hasattr(env_config, "get") else getattr(env_config, name, None)
        if value is not None:
            return value
    return default


class InftoolTextEnv(BaseTextEnv):
    """Row ``extras``: ``task`` (a task as JSON, not among the env's own: a synthesized one), else ``task_id``
    (else a task drawn with ``seed``), ``seed`` (default 0), ``format``
    (the policy's text tool-call format; default the manifest's text format or hermes, see ``base_env``),
    ``env_id`` (or registered per env). Each is checked before any work: a wrong one (a seed that is not
    an integer 0 or more, a task that is not a task's JSON, or is BFCL's) is refused in one line naming it."""

    def __init__(self, env_config: Any = None, extras: Mapping[str, Any] | None = None, *,
                 env_id: str | None = None) -> None:  # fmt: skip
        super().__init__()
        extras = dict(extras or {})
        info = extras.get("extra_info")
        extras = {
            **(info if isinstance(info, Mapping) else {}),
            **extras,
        }  # SkyRL datasets often keep per-row fields under extra_info
        env_id = _setting("env_id", extras, env_config, env_id)
        if not env_id:
            raise InftoolError("InftoolTextEnv needs an env id: register it per env (register_envs) or give env_id")
        if not isinstance(env_id, str | Path):
            raise InftoolError(f"the row's env_id must be an env id or a manifest path, not {_shown(env_id)}")
        self.env_id = env_key(env_id)  # a manifest's absolute path: one base env however the path is written
        # Each field is checked here, before any work, in one line naming it (SkyRL hands us the row as it is).
        self.task_id: str | None = _text("task_id", _setting("task_id", extras, env_config), self.env_id)
        fmt = _text("format", _setting("format", extras, env_config), self.env_id)
        self.seed = _seed(_setting("seed", extras, env_config, 0), self.env_id)
        self.task: Task | None = _task(_setting("task", extras, env_config), self.env_id)
        base = base_env(self.env_id, fmt)
        if self.task is not None:
            refuse_missing_servers(f"{self.env_id}: the row's task", [self.task], base.servers)
        self.core = base.spawn()
        self._pid = os.getpid()
        self.max_turns = self.core.limits.max_turns
        self._closed = False
        self._shown = 0  # messages of our conversation already handed to SkyRL
        self._final: dict[str, Any] = {}

    def init(self, prompt: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        self._check_process()
        options = {"task": self.task} if self.task else {"task_id": self.task_id} if self.task_id else None
        obs, info = run(self.core.reset(seed=self.seed, options=options))
        messages = [_chat(m) for m in obs["messages"]]
        self._shown = len(obs["messages"])
        return messages, {**info, "tools": obs["tools"]}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self._check_process()
        self.turns += 1
        result = run(self.core.step(action))
        messages = result.observation["messages"]
        # Our conversation holds the assistant turn we were given (SkyRL already has it) and, after
        # it, what the env answered: those are the observations.
        new = [_chat(m) for m in messages[self._shown + 1 :]]
        self._shown = len(messages)
        done = result.terminated or result.truncated
        metadata: dict[str, Any] = {"parse_error": result.info.get("parse_error"), "calls": result.info.get("calls")}
        if done:
            breakdown = result.info["reward_breakdown"]
            self._final = {"reward": float(result.reward), "terminated": result.terminated,
                           "truncation_reason": result.info.get("truncation_reason"), **breakdown}  # fmt: skip
            metadata |= {"reward_breakdown": breakdown, "truncation_reason": result.info.get("truncation_reason")}
            new = []  # nothing more for the model to read
        return BaseTextEnvStepOutput(observations=new, reward=float(result.reward) if done else 0.0, done=done,
                                     metadata=metadata)  # fmt: skip

    def get_metrics(self) -> dict[str, Any]:
        if not self._final:
            return {"turns": self.turns}
        gates = {f"gate_{k}": float(v) for k, v in self._final.get("gates", {}).items()}
        components = {k: float(v) for k, v in self._final.get("components", {}).items() if v is not None}
        return {"turns": self.turns, "reward": self._final["reward"], **gates, **components}

    def close(self) -> None:
        if self._closed or os.getpid() != self._pid:  # a fork's copy: the core is the parent's to close
            return
        self._closed = True
        if _LOOP is not None and not _LOOP.loop.is_closed():  # else its core went with the loop at exit
            run(self.core.close())  # this episode and any connections of its own; never the shared ones

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise InftoolError(
                f"this {self.env_id} env was made in process {self._pid}, and this process is a fork of it, where "
                "its connections do not run: make the env in this process (skyrl_gym.make)"
            )


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error shows it: its repr, cut short (a row's task may be long), and its type."""
    text = repr(value)
    text = text if len(text) <= limit else f"{text[: limit - 3]}..."
    return f"{text} ({type(value).__name__})"


def _text(name: str, value: Any, env_id: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InftoolError(f"{env_id}: the row's {name} must be a string, not {_shown(value)}")
    return value


def _seed(value: Any, env_id: str) -> int:
    """An integer, 0 or more: not a float (2.7 is not seed 2), a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InftoolError(f"{env_id}: the row's seed must be an integer, 0 or more, not {_shown(value)}")
    seed = int(value)  # numpy's integers (a dataset's column) are Integral too
    check_seed(seed, f"{env_id}: the row's seed")
    return seed


def _task(value: Any, env_id: str) -> Task | None:
    """A task given in the row (JSON, as ``dataset_rows`` writes it, or its dict), checked whole; BFCL's refused."""
    if value is None or isinstance(value, Task):
        task = value
    else:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InftoolError(f"{env_id}: the row's task must be a task as JSON (as dataset_rows writes it), "
                                   f"but it is not JSON ({exc}): {_shown(value)}") from None  # fmt: skip
        if not isinstance(value, Mapping):
            raise InftoolError(f"{env_id}: the row's task must be a task (a JSON object), not {_shown(value)}")
        try:
            task = Task.model_validate(dict(value))
        except ValidationError as exc:
            raise InftoolError(f"{env_id}: the row's task is not a task: {first_invalid(exc)}") from None
    if task is not None:
        refuse_bfcl(f"{env_id}: the row's task", None, [task])  # training data: BFCL's tasks, in whatever env
    return task


def _chat(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as SkyRL's chat template expects: role and text content (tool calls are in the text)."""
    return {"role": str(message["role"]), "content": str(message.get("content") or "")}
