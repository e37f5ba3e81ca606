"""An ``environment_factory`` for TRL's ``GRPOTrainer`` over our environments.

TRL makes one instance per rollout (pooled and reused across batches), offers the instance's public
methods as tools, calls ``reset(**row)`` with the dataset row before generating, runs each tool call the
model makes by calling the method of that name, and scores the finished rollout with the reward functions:
``gated_reward`` is ours. The factory is a dict, TRL's multi-environment form: one environment class per
tool offer among the tasks (a single-turn task is offered only its own tools), and ``build_dataset`` routes
each row to its offer (the ``environment`` column), so the model is shown what ``inftool eval`` shows it.
Here each instance drives one episode of our async ``ToolEnv`` at a time, on a real MCP server:

- ``reset`` starts the row's task (carried in the row as JSON) with the row's seed;
- each tool call is one assistant step with that call, so the server, gates and trajectory are the ones
  ``inftool eval`` runs (the reward of a multi-call turn does not depend on how its calls are grouped);
- ``message_user`` (offered when a task has more than one user turn, or the user is not scripted) is how
  the model talks to the user mid-episode: its text is an assistant turn without calls and the user's
  answer comes back as the tool's result. TRL's loop ends a rollout at the first reply without a tool
  call, so there is no other way for a user's next turn to reach the model;
- TRL ends a rollout at the model's first reply it cannot read as a tool call — a malformed call too — and
  keeps that reply to itself: ``gated_reward`` hands it to the env as the assistant turn it is (so the
  format gate judges it as in ``inftool eval``), closes the episode (the user's remaining turns answered by
  empty assistant turns) and returns the gated reward;
- a one-shot task (``inftool synth``'s single-turn categories) ends in eval after the first assistant turn,
  all its calls together; TRL runs each call as it comes and generates on. So its tools answer from an
  episode that goes on, as TRL expects, and ``gated_reward`` scores the completion's first assistant
  message, as that one turn, on a fresh episode of the task: the reward ``inftool eval`` gives it.

Every instance of one factory shares one event loop on a daemon thread, the way the Gymnasium adapter
runs the core on a loop of its own: TRL calls the (synchronous) methods from its training thread, and
nothing of ours ever runs on TRL's own asyncio loop, so neither can block the other.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.loop_thread import LoopThread
from inftool_env.train.trl.dataset import check_supported, offer_name
from inftool_env.train.trl.tools import tool_method
from inftool_env.trajectory import RewardBreakdown, Trajectory

T = TypeVar("T")

USER_TOOL = "message_user"
ENDED = "The conversation has ended ({reason}); nothing more is executed."


class InftoolTrlEnv:
    """One rollout's environment. The factory makes a subclass per tool offer whose methods are its tools;
    everything else here is ``reset``, properties or private, which TRL does not offer (``_score`` is
    ``gated_reward``'s)."""

    _factory: ClassVar[TrlEnvFactory]
    _offer: ClassVar[str]  # the offer this class's tools are (offer_name)

    def __init__(self) -> None:
        self._core = self._factory.spawn_core()
        self._result: StepResult | None = None
        self._scored = False  # gated_reward ran: the rollout is over
        self._task: Task | None = None
        self._seed: int | None = None
        self._judge: ToolEnv | None = None  # a one-shot task's first turn is scored here
        self._judged: StepResult | None = None

    # -- what TRL calls -------------------------------------------------------------------------
    def reset(self, task: str | dict[str, Any] | None = None, seed: int | None = None, prompt: Any = None,
              **row: Any) -> str | None:  # fmt: skip
        """Start the row's task. Returns None when the row's prompt already holds the user's opening,
        else the opening (TRL appends it to the prompt's last user message)."""
        chosen = self._factory.task_of(task)
        offer = self._factory.offers[chosen.id]
        if offer != self._offer:
            raise InftoolError(f"task {chosen.id!r} is offered the tools of {offer!r}, not this environment's "
                               f"{self._offer!r}: give the row the 'environment' build_dataset wrote")  # fmt: skip
        self._result = self._judged = None
        self._scored = False
        self._task, self._seed = chosen, seed
        # A one-shot task's tools answer from an episode that goes on past the first turn, as TRL's loop does.
        options = {"task": chosen.model_copy(update={"one_shot": False})} if chosen.one_shot else {"task_id": chosen.id}
        observation, _ = self._factory.run(self._core.reset(seed=seed, options=options))
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

    def _score(self, completion: Any) -> float:
        """The rollout's gated reward: its last reply handed over, the episode closed if the model stopped
        before the user was done; a one-shot task's first turn scored on its own."""
        trajectory = self._trajectory()
        if self._scored:
            raise InftoolError(f"the rollout of task {trajectory.task_id} was scored already; reset() starts another")
        self._scored = True
        if self._one_shot:
            self._judge_first_turn(completion)
            assert self._judged is not None  # noqa: S101 - just judged
            return float(self._judged.reward)
        text = _reply_text(completion)
        if text is not None and not self._done:  # else the episode ended first (the user was done, or a limit)
            self._step({"role": "assistant", "content": text})
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
        """The scored episode: for a one-shot task, its first turn's (once ``gated_reward`` has run)."""
        if self._one_shot:
            return self._judged.info["trajectory"] if self._judged is not None else None
        return self._core.trajectory

    @property
    def reward_breakdown(self) -> RewardBreakdown | None:
        trajectory = self.trajectory
        return trajectory.reward if trajectory else None

    # -- the tools' implementation --------------------------------------------------------------
    @property
    def _one_shot(self) -> bool:
        return self._task is not None and self._task.one_shot

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

    def _judge_first_turn(self, completion: Any) -> None:
        first = next((m for m in completion if isinstance(m, dict) and m.get("role") == "assistant"), None)
        if first is None:
            raise InftoolError("gated_reward got a completion without an assistant message")
        if self._judge is None:
            self._judge = self._factory.spawn_core()
        judge, task, seed = self._judge, self._task, self._seed

        async def judged() -> StepResult:
            # The task as given and the row's seed: the episode the live one started as.
            await judge.reset(seed=seed, options={"task": task})
            return await judge.step(_as_one_turn(first))

        self._judged = self._factory.run(judged())

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


def gated_reward(
    completions: Sequence[Any], environments: Sequence[Any] | None = None, **_: Any
) -> list[float | None]:  # TRL's RewardFunc type
    """``GRPOTrainer(reward_funcs=gated_reward, ...)``: each rollout's gated reward, as ``inftool eval`` gives
    it for the same assistant turns (logged as ``rewards/gated_reward``); None for another library's env.

    A rollout cut by ``max_tool_calling_iterations`` ends on calls TRL never ran; they are not run here either.
    """
    if environments is None:
        raise InftoolError("gated_reward needs GRPOTrainer(environment_factory=...) from inftool_env.train.trl")
    return [env._score(completion) if isinstance(env, InftoolTrlEnv) else None
            for completion, env in zip(completions, environments, strict=True)]  # fmt: skip


def _as_one_turn(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant message of TRL's, its calls together in one turn; a ``message_user`` call in it is
    text to the user, as eval reads a turn without calls."""
    calls: list[dict[str, Any]] = []
    said = [_text(message.get("content"))]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        if function.get("name") == USER_TOOL:
            said.append(str((function.get("arguments") or {}).get("message", "")))
        else:
            calls.append({"id": f"call_{len(calls)}", "type": "function", "function": dict(function)})
    turn: dict[str, Any] = {"role": "assistant", "content": "\n".join(s for s in said if s)}
    return {**turn, "tool_calls": calls} if calls else turn


def _reply_text(completion: Any) -> str | None:
    """The text of the completion's last message if that is a reply without calls (what ended the rollout)."""
    last = completion[-1] if isinstance(completion, list) and completion else None
    if not isinstance(last, dict) or last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    return _text(last.get("content"))


def _text(content: Any) -> str:
    """A message's text, from a string or content blocks."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


class UnknownOffer(InftoolError, KeyError):
    """A KeyError still, for code that looks an offer up with ``try: factory[k] except KeyError``."""

    __str__ = Exception.__str__  # the message as written, not KeyError's quoted repr


class TrlEnvFactory(dict[str, Callable[[], InftoolTrlEnv]]):
    """What ``GRPOTrainer(environment_factory=...)`` takes: a dict (TRL's multi-environment form) of one
    factory per tool offer among the tasks, keyed by ``offer_name``, each making instances of that offer's
    class (``classes``); ``build_dataset`` writes each row's key. Called with no argument, the factory
    makes an instance of its only offer. ``close()`` ends every instance's connections and the shared loop.

    ``env`` is copied (its config, compiled servers, user and reward; ``tasks`` instead of its own if given):
    the copy's connections live on the factory's loop and close with it, and ``env`` stays its caller's."""

    def __init__(self, env: ToolEnv, *, tasks: Sequence[Task] | None = None, user_tool: bool | None = None) -> None:
        if type(env) is not ToolEnv:  # a subclass's behaviour would be lost in the copy
            raise InftoolError(f"the TRL factory runs a copy of the env it is given, which a {type(env).__name__} "
                               "cannot be; pass an env id or a ToolEnv")  # fmt: skip
        chosen = env.tasks if tasks is None else list(tasks)
        refuse_bfcl(env.config.id, env.config, chosen)
        self.env = ToolEnv(env.config, chosen, env.servers, user=env.user, reward_fn=env.reward_fn)
        self.tasks = {t.id: t for t in chosen}
        if user_tool is None:
            user_tool = env.config.user != "scripted" or any(len(t.turns) > 1 for t in chosen)
        check_supported(env.config.id, chosen, env.servers)
        super().__init__()
        self.classes: dict[str, type[InftoolTrlEnv]] = {}
        self.offers = {t.id: offer_name(env.config.id, t, env.servers) for t in chosen}  # task id -> its offer
        for task in chosen:
            offer = self.offers[task.id]
            if offer not in self.classes:
                self.classes[offer] = self._make_class(offer, task, user_tool)
                self[offer] = functools.partial(self._make, offer)
        self._loop = LoopThread(f"inftool-trl-{env.config.id}", "the TRL environment")
        self._cores: list[ToolEnv] = []
        self.instances: list[InftoolTrlEnv] = []  # every instance made, in order (TRL pools and reuses them)
        atexit.register(self.close)

    def __call__(self, offer: str | None = None) -> InftoolTrlEnv:
        if offer is None:
            if len(self) != 1:
                raise InftoolError(f"the tasks are offered {len(self)} different sets of tools: name the offer, "
                                   f"one of {list(self)}")  # fmt: skip
            offer = next(iter(self))
        return self[offer]()

    def __missing__(self, offer: str) -> Callable[[], InftoolTrlEnv]:
        """``factory[row["environment"]]`` for an offer none of these tasks has: the row is another task list's."""
        raise UnknownOffer(f"no tool offer {offer!r} among this factory's {list(self)}: the dataset row comes from "
                           "other tasks; pass the same tasks to build_dataset and environment_factory")  # fmt: skip

    def _make(self, offer: str) -> InftoolTrlEnv:
        instance = self.classes[offer]()
        self.instances.append(instance)
        return instance

    def _make_class(self, offer: str, task: Task, user_tool: bool) -> type[InftoolTrlEnv]:
        """The class whose public methods are the tools ``task`` is offered (and ``message_user``)."""
        namespace: dict[str, Any] = {"_factory": self, "_offer": offer, "__module__": __name__,
                                     "__doc__": f"{offer} for TRL: one episode per reset()."}  # fmt: skip
        excluded = set(task.excluded_tools)
        for name in task.servers or self.env.servers:  # [] is every server, as ToolEnv.reset reads it
            for spec in self.env.servers[name].suite.tools:
                if spec.name in excluded:
                    continue
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
        name = re.sub(r"\W", "_", offer.split("/")[-1])
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
    scripted). Pass ``gated_reward`` in ``reward_funcs``: it is the reward. A BFCL env is refused (for evaluation only).
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
