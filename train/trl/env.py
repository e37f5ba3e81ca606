"""An ``environment_factory`` for TRL's ``GRPOTrainer`` over our environments.

TRL makes one instance per rollout (pooled and reused across batches), offers the instance's public
methods as tools, calls ``reset(**row)`` with the dataset row before generating, runs each tool call the
model makes by calling the method of that name, and scores the finished rollout: first the reward functions,
``final_reply`` among them, then ``get_reward()``.
Here each instance drives one episode of our async ``ToolEnv`` at a time, on a real MCP server:

- ``reset`` starts the row's task (carried in the row as JSON) with the row's seed;
- each tool call is one assistant step with that call, so the server, gates and trajectory are the ones
  ``inftool eval`` runs (the reward of a multi-call turn does not depend on how its calls are grouped);
- ``message_user`` (offered when a task has more than one user turn, or the user is not scripted) is how
  the model talks to the user mid-episode: its text is an assistant turn without calls and the user's
  answer comes back as the tool's result. TRL's loop ends a rollout at the first reply without a tool
  call, so there is no other way for a user's next turn to reach the model;
- TRL ends a rollout at the model's first reply it cannot read as a tool call — a malformed call too — and
  keeps that reply to itself: ``final_reply`` (a reward function) hands it to the env as the assistant turn
  it is, so the format gate judges it as in ``inftool eval``;
- ``get_reward`` closes the episode (the user's remaining turns answered by empty assistant turns) and
  returns the gated reward.

Every instance of one factory shares one event loop on a daemon thread, the way the Gymnasium adapter
runs the core on a loop of its own: TRL calls the (synchronous) methods from its training thread, and
nothing of ours ever runs on TRL's own asyncio loop, so neither can block the other.
"""

from __future__ import annotations

import atexit
import json
import re
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.loop_thread import LoopThread
from inftool_env.train.trl.dataset import unsupported
from inftool_env.train.trl.tools import tool_method
from inftool_env.trajectory import RewardBreakdown, Trajectory

T = TypeVar("T")

USER_TOOL = "message_user"
ENDED = "The conversation has ended ({reason}); nothing more is executed."


class InftoolTrlEnv:
    """One rollout's environment. The factory makes a subclass per env whose methods are its tools;
    everything else here is ``reset``, ``get_reward``, properties or private, which TRL does not offer."""

    _factory: ClassVar[TrlEnvFactory]

    def __init__(self) -> None:
        self._core = self._factory.spawn_core()
        self._result: StepResult | None = None
        self._scored = False  # get_reward ran: a final reply arriving now would not count

    # -- what TRL calls -------------------------------------------------------------------------
    def reset(self, task: str | dict[str, Any] | None = None, seed: int | None = None, prompt: Any = None,
              **row: Any) -> str | None:  # fmt: skip
        """Start the row's task. Returns None when the row's prompt already holds the user's opening,
        else the opening (TRL appends it to the prompt's last user message)."""
        chosen = self._factory.task_of(task)
        self._result = None
        self._scored = False
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
        """The episode's gated reward (closing it first if the model stopped before the user was done).

        Alone it never sees the model's last reply (TRL keeps it), so a malformed call there passes the format
        gate: train with ``reward_funcs=final_reply``, which hands that reply over before this runs."""
        trajectory = self._trajectory()
        self._scored = True
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

    def _final_reply(self, text: str) -> None:
        """The reply that ended TRL's rollout, as the assistant turn ``inftool eval`` would take."""
        self._trajectory()
        if self._scored:
            raise InftoolError("get_reward() ran before final_reply saw the rollout's last reply; list "
                               "final_reply in reward_funcs (TRL calls those before get_reward)")  # fmt: skip
        if not self._done:  # else the episode ended first (the user was done, or a limit): eval stops there too
            self._step({"role": "assistant", "content": text})

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


# What every instance has: a tool of one of these names would replace it (TRL offers public methods as tools).
OWN_NAMES = frozenset(name for name in dir(InftoolTrlEnv) if not name.startswith("_"))


def final_reply(
    completions: Sequence[Any], environments: Sequence[Any] | None = None, **_: Any
) -> list[float | None]:  # TRL's RewardFunc type
    """``GRPOTrainer(reward_funcs=final_reply, ...)``: hands each rollout's last reply to its environment
    before ``get_reward`` scores it. It scores nothing itself (None, which TRL leaves out of the sum and logs
    as an empty ``rewards/final_reply``): the reward is ``get_reward``'s, logged under the env's class name.

    A rollout cut by ``max_tool_calling_iterations`` ends on calls TRL never ran; they are not run here either.
    """
    if environments is None:
        raise InftoolError("final_reply needs GRPOTrainer(environment_factory=...) from inftool_env.train.trl")
    for completion, env in zip(completions, environments, strict=True):
        text = _reply_text(completion)
        if isinstance(env, InftoolTrlEnv) and text is not None:
            env._final_reply(text)
    return [None for _ in completions]


def _reply_text(completion: Any) -> str | None:
    """The text of the completion's last message if that is a reply without calls (what ended the rollout)."""
    last = completion[-1] if isinstance(completion, list) and completion else None
    if not isinstance(last, dict) or last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    content = last.get("content")
    if isinstance(content, list):  # content blocks
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


class TrlEnvFactory:
    """Callable with no arguments, as ``GRPOTrainer(environment_factory=...)`` wants: each call makes an
    instance of ``env_class``. ``close()`` ends every instance's connections and the shared loop.

    ``env`` is copied (its config, compiled servers, user and reward; ``tasks`` instead of its own if given):
    the copy's connections live on the factory's loop and close with it, and ``env`` stays its caller's."""

    def __init__(self, env: ToolEnv, *, tasks: Sequence[Task] | None = None, user_tool: bool | None = None) -> None:
        if type(env) is not ToolEnv:  # a subclass's behaviour would be lost in the copy
            raise InftoolError(f"the TRL factory runs a copy of the env it is given, which a {type(env).__name__} "
                               "cannot be; pass an env id or a ToolEnv")  # fmt: skip
        chosen = env.tasks if tasks is None else list(tasks)
        self.env = ToolEnv(env.config, chosen, env.servers, user=env.user, reward_fn=env.reward_fn)
        self.tasks = {t.id: t for t in chosen}
        if user_tool is None:
            user_tool = env.config.user != "scripted" or any(len(t.turns) > 1 for t in chosen)
        self._loop = LoopThread(f"inftool-trl-{env.config.id}", "the TRL environment")
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
                if spec.name in OWN_NAMES:
                    raise InftoolError(f"{self.env.config.id}: tool {spec.name!r} would replace the TRL environment's "
                                       f"own {spec.name!r} (TRL offers every public method as a tool)")  # fmt: skip
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
        why = unsupported(chosen, self.env.servers)
        if why:
            raise InftoolError(f"task {chosen.id!r} {why}")
        return chosen

    def close(self) -> None:
        if not self._loop.usable:  # closed, or this is a fork, whose parent owns the loop and connections
            return
        try:
            for core in self._cores:
                self.run(core.close())
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
    limit, ``trainer_driven``) or a ``ToolEnv`` (copied as configured, and left open: see ``TrlEnvFactory``);
    ``tasks``: a tasks JSONL file or tasks instead of the env's own (give ``build_dataset`` the same);
    ``user_tool``: offer ``message_user`` (default: when some task has several user turns, or the user is not
    scripted). Pass ``final_reply`` in ``reward_funcs`` too, so the model's last reply reaches the env.
    """
    if isinstance(env, str):
        from inftool_env.registration import make

        base: ToolEnv = make(env, trainer_driven=True, **overrides)  # never connected: the factory's copy runs
    elif overrides:
        raise TypeError("overrides apply to an env id, not to a ToolEnv")
    else:
        base = env
    chosen = None if tasks is None else load_tasks(tasks) if isinstance(tasks, str | Path) else list(tasks)
    return TrlEnvFactory(base, tasks=chosen, user_tool=user_tool)


def _last_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content") or "")
    return ""
