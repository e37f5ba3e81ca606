"""An ``environment_factory`` for TRL's ``GRPOTrainer`` over our environments.

TRL makes one instance per rollout (pooled and reused across batches), offers the instance's public
methods as tools, calls ``reset(**row)`` with the dataset row before generating, runs each tool call the
model makes by calling the method of that name, and scores the finished rollout with ``get_reward()``.
Here each instance drives one episode of our async ``ToolEnv`` at a time, on a real MCP server:

- ``reset`` starts the row's task (carried in the row as JSON) with the row's seed;
- each tool call is one assistant step with that call, so the server, gates and trajectory are the ones
  ``inftool eval`` runs (the reward of a multi-call turn does not depend on how its calls are grouped);
- ``message_user`` (offered when a task has more than one user turn, or the user is not scripted) is how
  the model talks to the user mid-episode: its text is an assistant turn without calls and the user's
  answer comes back as the tool's result. TRL's loop ends a rollout at the first reply without a tool
  call, so there is no other way for a user's next turn to reach the model;
- ``get_reward`` closes the episode — the model's last reply, which TRL keeps to itself, becomes an
  empty assistant turn; no correctness component reads the text — and returns the gated reward.

Every instance of one factory shares one event loop on a daemon thread, the way the Gymnasium adapter
runs the core on a loop of its own: TRL calls the (synchronous) methods from its training thread, and
nothing of ours ever runs on TRL's own asyncio loop, so neither can block the other.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.trl.tools import tool_method
from inftool_env.trajectory import RewardBreakdown, Trajectory

T = TypeVar("T")

USER_TOOL = "message_user"
ENDED = "The conversation has ended ({reason}); nothing more is executed."


class _Loop:
    """One asyncio loop on a daemon thread: a process can exit even if nobody closes it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread or self.loop.is_closed():
            coro.close()
            why = "is closed" if self.loop.is_closed() else "cannot be called from its own event loop"
            raise InftoolError(f"the TRL environment {why}")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class InftoolTrlEnv:
    """One rollout's environment. The factory makes a subclass per env whose methods are its tools;
    everything else here is ``reset``, ``get_reward``, properties or private, which TRL does not offer."""

    _factory: ClassVar[TrlEnvFactory]

    def __init__(self) -> None:
        self._core = self._factory.spawn_core()
        self._result: StepResult | None = None

    # -- what TRL calls -------------------------------------------------------------------------
    def reset(self, task: str | dict[str, Any] | None = None, seed: int | None = None, prompt: Any = None,
              **row: Any) -> str | None:  # fmt: skip
        """Start the row's task. Returns None when the row's prompt already holds the user's opening,
        else the opening (TRL appends it to the prompt's last user message)."""
        chosen = self._factory.task_of(task)
        self._result = None
        observation, _ = self._factory.run(self._core.reset(seed=seed, options={"task_id": chosen.id}))
        opening = str(observation["messages"][-1]["content"])
        given = _last_user_text(prompt)
        if given == opening:
            return None
        if not given:
            return opening
        raise InftoolError(
            f"task {chosen.id}: the row's prompt opens with {given!r} but the env's user says {opening!r}; "
            "build the dataset with inftool_env.train.trl.build_dataset from the same env and tasks"
        )

    def get_reward(self) -> float:
        """The episode's gated reward (closing it first if the model stopped before the user was done)."""
        trajectory = self._trajectory()
        # Each empty turn lets the user say their next line or finish; max_turns bounds the loop anyway.
        for _ in range(self._core.limits.max_turns + 1):
            if self._done:
                break
            self._step({"role": "assistant", "content": ""})
        if trajectory.reward is None:
            raise InftoolError(f"episode of task {trajectory.task_id} did not end")
        return float(trajectory.reward.reward)

    # -- what a trainer or test may read ----------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory | None:
        return self._core.trajectory

    @property
    def reward_breakdown(self) -> RewardBreakdown | None:
        trajectory = self._core.trajectory
        return trajectory.reward if trajectory else None

    # -- the tools' implementation --------------------------------------------------------------
    @property
    def _done(self) -> bool:
        return self._result is not None and (self._result.terminated or self._result.truncated)

    def _trajectory(self) -> Trajectory:
        trajectory = self._core.trajectory
        if trajectory is None:
            raise InftoolError("the environment was used before reset()")
        return trajectory

    def _step(self, action: dict[str, Any]) -> StepResult:
        self._result = self._factory.run(self._core.step(action))
        return self._result

    def _ended(self) -> str:
        reason = self._trajectory().truncation_reason or "the user is done"
        return ENDED.format(reason=reason)

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """One assistant step with this one call; the call's result (an error result too) as text."""
        trajectory = self._trajectory()
        if self._done:
            return self._ended()
        call = {"id": f"call_{len(trajectory.turns)}", "type": "function",
                "function": {"name": name, "arguments": arguments}}  # fmt: skip
        result = self._step({"role": "assistant", "content": "", "tool_calls": [call]})
        calls = result.info.get("calls") or []
        if not calls:  # the turn did not parse (e.g. arguments that are not an object)
            return f"Error: {result.info.get('parse_error') or 'the call was not understood'}"
        return str(calls[-1]["result"])

    def _message_user(self, message: str) -> str:
        self._trajectory()
        if self._done:
            return self._ended()
        result = self._step({"role": "assistant", "content": message})
        if self._done:
            return self._ended()
        last = result.observation["messages"][-1]
        return str(last["content"]) if last.get("role") == "user" else ""


def message_user(self, message: str) -> str:  # an annotated self would become a tool argument
    """Say something to the user (ask for what is missing, or report what you did) and wait for their answer.

    Args:
        message: What to tell or ask the user.

    Returns:
        The user's answer, or a note that the conversation has ended.
    """
    return self._message_user(message)


class TrlEnvFactory:
    """Callable with no arguments, as ``GRPOTrainer(environment_factory=...)`` wants: each call makes an
    instance of ``env_class``. ``close()`` ends every instance's connections and the shared loop."""

    def __init__(self, env: ToolEnv, *, user_tool: bool | None = None, owns_env: bool = False) -> None:
        self.env = env
        self.tasks = {t.id: t for t in env.tasks}
        if user_tool is None:
            user_tool = env.config.user != "scripted" or any(len(t.turns) > 1 for t in env.tasks)
        self._owns_env = owns_env
        self._loop = _Loop(f"inftool-trl-{env.config.id}")
        self._cores: list[ToolEnv] = []
        self.instances: list[InftoolTrlEnv] = []  # every instance made, in order (TRL pools and reuses them)
        self.env_class = self._make_class(user_tool)
        atexit.register(self.close)

    def __call__(self) -> InftoolTrlEnv:
        instance = self.env_class()
        self.instances.append(instance)
        return instance

    def _make_class(self, user_tool: bool) -> type[InftoolTrlEnv]:
        namespace: dict[str, Any] = {"_factory": self, "__module__": __name__,
                                     "__doc__": f"{self.env.config.id} for TRL: one episode per reset()."}  # fmt: skip
        for server in self.env.servers.values():
            for spec in server.suite.tools:
                if spec.name in namespace:
                    raise InftoolError(f"{self.env.config.id}: two servers offer a tool named {spec.name!r}")
                method = tool_method(spec.name, spec.description, spec.input_schema, "_call_tool")
                namespace[spec.name] = method.function
        if user_tool:
            if USER_TOOL in namespace:
                raise InftoolError(f"{self.env.config.id} has a tool named {USER_TOOL!r}; pass user_tool=False")
            namespace[USER_TOOL] = message_user
        # TRL logs the reward under the class name (``rewards/Bookshelf_v0``).
        name = re.sub(r"\W", "_", self.env.config.id.split("/")[-1])
        return type(name, (InftoolTrlEnv,), namespace)

    def spawn_core(self) -> ToolEnv:
        core = self.env.spawn()
        self._cores.append(core)
        return core

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    def task_of(self, task: str | dict[str, Any] | Task | None) -> Task:
        """The factory's task that the row names (and must equal: a stale dataset is an error)."""
        if task is None:
            raise InftoolError("the dataset row has no 'task' column; build it with train.trl's build_dataset")
        try:
            raw = json.loads(task) if isinstance(task, str) else task
            chosen = task if isinstance(task, Task) else Task.model_validate(raw)
        except ValueError as exc:
            raise InftoolError(f"the dataset row's 'task' is not a task: {exc}") from None
        known = self.tasks.get(chosen.id)
        if known is None or known != chosen:
            why = "is not among" if known is None else "differs from its namesake in"
            raise InftoolError(f"task {chosen.id!r} {why} the environment's tasks; pass the same tasks to "
                               "build_dataset and environment_factory")  # fmt: skip
        if chosen.one_shot:
            raise InftoolError(f"task {chosen.id!r} is one-shot, which TRL's tool loop cannot end (see build_dataset)")
        return chosen

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            for core in self._cores:
                self.run(core.close())
            if self._owns_env:
                self.run(self.env.close())
        finally:
            self._loop.stop()
            atexit.unregister(self.close)

    def __enter__(self) -> TrlEnvFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def environment_factory(
    env: str | ToolEnv, *, tasks: str | Path | Sequence[Task] | None = None, user_tool: bool | None = None,
    **overrides: Any,
) -> TrlEnvFactory:  # fmt: skip
    """``GRPOTrainer(environment_factory=environment_factory("inftool/Bookshelf-v0"), ...)``.

    ``env``: a registered env id (``overrides`` replace manifest fields; its episodes get no wall-clock
    limit, ``trainer_driven``) or a ``ToolEnv`` (kept as configured); ``tasks``: a
    tasks JSONL file or tasks instead of the env's own (give ``build_dataset`` the same); ``user_tool``:
    offer ``message_user`` (default: when some task has several user turns, or the user is not scripted).
    """
    if isinstance(env, str):
        from inftool_env.registration import make

        core: ToolEnv = make(env, trainer_driven=True, **overrides)
    elif overrides:
        raise TypeError("overrides apply to an env id, not to a ToolEnv")
    else:
        core = env
    if tasks is not None:
        chosen = load_tasks(tasks) if isinstance(tasks, str | Path) else list(tasks)
        core = ToolEnv(core.config, chosen, core.servers, user=core.user, reward_fn=core.reward_fn)
    return TrlEnvFactory(core, user_tool=user_tool, owns_env=isinstance(env, str))


def _last_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content") or "")
    return ""
