"""An ``environment_factory`` for TRL's ``GRPOTrainer`` over our environments.

TRL makes one instance per rollout (pooled and reused across batches), offers the instance's public
methods as tools, calls ``reset(**row)`` with the dataset row before generating, runs each tool call the
model makes by calling the method of that name, and scores the finished rollout with the reward functions:
``gated_reward`` is ours. The factory is a dict, TRL's multi-environment form: one environment class per
tool offer among the tasks (a single-turn task is offered only its own tools), and ``build_dataset`` routes
each row to its offer (the ``environment`` column), so the model is shown what ``inftool eval`` shows it.
Each instance runs two episodes of our async ``ToolEnv`` per rollout, on a real MCP server:

- the live one answers the model as it goes: ``reset`` starts the row's task (carried in the row as JSON)
  with the row's seed, and each tool call TRL runs is one step with that call. ``message_user`` (offered
  when a task has more than one user turn, or the user is not scripted) is how the model talks to the
  user mid-episode: its text is an assistant turn without calls and the user's answer comes back as the
  tool's result. TRL's loop ends a rollout at the first reply without a tool call, so there is no other
  way for a user's next turn to reach the model;
- the judged one is ``inftool eval``'s episode of the same completion, run by ``gated_reward`` on the
  task and the row's seed: each assistant message is one turn with all its calls (split where it calls
  ``message_user``, whose text is a turn of its own), so ``max_turns`` counts messages as eval does; the
  calls TRL never hands the env are in it too (a tool the environment lacks, which TRL answers "Tool X
  not found" itself, and arguments that are not an object), for the schema and format gates to judge;
  the model's last reply, which TRL keeps to itself (a malformed call ends a rollout there too), is its
  last turn; the user's remaining turns are answered by empty assistant turns. The user says again what
  it said in the live episode (an LLM user is not asked twice), so the reward is eval's for the assistant
  turns the model wrote, however TRL grouped and ran their calls;
- a rollout that TRL cut on calls it never ran (``max_tool_calling_iterations``, or results that would pass
  ``max_completion_length``) is judged without that last message: the model never saw those results;
- a one-shot task (``inftool synth``'s single-turn categories) ends in eval after the first assistant turn,
  all its calls together; TRL runs each call as it comes and generates on. So its live episode goes on, as
  TRL expects, and the judged one is the completion's first assistant message alone: the reward
  ``inftool eval`` gives it.

The live episode is never scored (it runs the task without its ground truth). Its turn limit is
``max_turns`` plus ``max_tool_calls``: its steps are its calls (``max_tool_calls`` cuts those) and its
``message_user`` turns, each a turn of the judged episode, so the turn limit cuts it only once the judged
episode has ended.

Every instance of one factory shares one event loop on a daemon thread, the way the Gymnasium adapter
runs the core on a loop of its own: TRL calls the (synchronous) methods from its training thread, and
nothing of ours ever runs on TRL's own asyncio loop, so neither can block the other.
"""

from __future__ import annotations

import atexit
import functools
import inspect
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
from inftool_env.train.trl.dataset import check_supported, offer_name, refuse_duplicate_ids
from inftool_env.train.trl.tools import tool_method
from inftool_env.trajectory import RewardBreakdown, Trajectory
from inftool_env.users import UserReply, UserSimulator

T = TypeVar("T")

USER_TOOL = "message_user"
ENDED = "The conversation has ended ({reason}); nothing more is executed."


class InftoolTrlEnv:
    """One rollout's environment. The factory makes a subclass per tool offer whose methods are its tools;
    everything else here is ``reset``, properties or private, which TRL does not offer (``_score`` is
    ``gated_reward``'s)."""

    _factory: ClassVar[TrlEnvFactory]
    _offer: ClassVar[str]  # the offer this class's tools are (offer_name)
    _tools: ClassVar[frozenset[str]]  # the methods TRL offers and runs: the names it can dispatch
    _renamed: ClassVar[dict[str, dict[str, str]]]  # tool -> its methods' parameter names -> the schema's

    def __init__(self) -> None:
        self._core = self._factory.spawn_core()  # the live episode: the model's calls, as TRL runs them
        limits = self._core.limits  # a step per call: cut on turns only where the judged episode is too
        self._core.limits = limits.model_copy(update={"max_turns": limits.max_turns + limits.max_tool_calls})
        self._heard: list[Any] = []  # what the live episode's user said: its opening, then each UserReply
        self._core.user = _Recording(self._core.user, self._heard)
        self._result: StepResult | None = None
        self._scored = False  # gated_reward ran: the rollout is over
        self._task: Task | None = None
        self._seed: int | None = None
        self._judge: ToolEnv | None = None  # eval's episode of the completion is run here
        self._judged: Trajectory | None = None

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
        # Never scored, so without the ground truth (nothing replayed when it ends); a one-shot task's tools
        # answer from an episode that goes on past the first turn, as TRL's loop does.
        live = chosen.model_copy(update={"one_shot": False, "ground_truth": []})
        observation, _ = self._factory.run(self._core.reset(seed=seed, options={"task": live}))
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
        """The rollout's gated reward: eval's episode of the completion's assistant turns (a one-shot task's
        first turn alone), run on the task and the row's seed."""
        if self._scored:
            assert self._task is not None  # noqa: S101 - reset() ran
            raise InftoolError(f"the rollout of task {self._task.id} was scored already; reset() starts another")
        self._trajectory()  # an error before reset()
        self._scored = True
        self._factory.run(self._core.end_episode())  # the rollout is over: its live state goes now
        if self._one_shot:
            first = next((m for m in _messages(completion) if m.get("role") == "assistant"), None)
            if first is None:
                raise InftoolError("gated_reward got a completion without an assistant message")
            turns = [self._as_one_turn(first)]
        else:
            turns = self._turns(completion)
        self._judged = self._judge_turns(turns)
        assert self._judged.reward is not None  # noqa: S101 - _judge_turns checked
        return float(self._judged.reward.reward)

    # -- what a trainer or test may read ----------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory | None:
        """The scored episode, eval's of the completion (once ``gated_reward`` has run; None before)."""
        return self._judged

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

    def _ended(self) -> str | None:
        """The note a call gets once the live episode has ended (or the rollout was scored), else None."""
        if self._scored:
            return ENDED.format(reason="the rollout was scored")
        trajectory = self._trajectory()
        if not self._done:
            return None
        return ENDED.format(reason=trajectory.truncation_reason or "the user is done")

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """One live step with this one call; the call's result (an error result too) as text."""
        ended = self._ended()
        if ended is not None:
            return ended
        trajectory = self._trajectory()
        call = {"id": f"call_{len(trajectory.turns)}", "type": "function",
                "function": {"name": name, "arguments": arguments}}  # fmt: skip
        result = self._step({"role": "assistant", "content": "", "tool_calls": [call]})
        calls = result.info.get("calls") or []
        if not calls:  # the turn did not parse (e.g. arguments JSON cannot carry)
            return f"Error: {result.info.get('parse_error') or 'the call was not understood'}"
        return str(calls[-1]["result"])

    def _message_user(self, message: str) -> str:
        ended = self._ended()
        if ended is not None:
            return ended
        result = self._step({"role": "assistant", "content": message})
        ended = self._ended()
        if ended is not None:
            return ended
        last = result.observation["messages"][-1]
        return str(last["content"]) if last.get("role") == "user" else ""

    # -- the judged episode -----------------------------------------------------------------------
    def _judge_turns(self, turns: list[dict[str, Any]]) -> Trajectory:
        """Eval's episode of these assistant turns, then empty ones until the user is done (or a limit cuts
        it), on the task as given and the row's seed: the episode the live one started as."""
        if self._judge is None:
            self._judge = self._factory.spawn_core()
        judge, task, seed = self._judge, self._task, self._seed
        assert task is not None  # noqa: S101 - reset() ran
        judge.user = _Replaying(self._factory.env.user, list(self._heard))
        closing = [{"role": "assistant", "content": ""}] * (judge.limits.max_turns + 1)  # max_turns ends it first

        async def judged() -> Trajectory | None:
            await judge.reset(seed=seed, options={"task": task})
            for turn in [*turns, *closing]:
                result = await judge.step(turn)
                if result.terminated or result.truncated:
                    return result.info["trajectory"]
            return None

        trajectory = self._factory.run(judged())
        if trajectory is None or trajectory.reward is None:
            why = "did not end" if trajectory is None else f"was not scored ({trajectory.error})"
            raise InftoolError(f"episode of task {task.id} {why}")
        return trajectory

    def _turns(self, completion: Any) -> list[dict[str, Any]]:
        """The completion's assistant messages as eval's turns: each message's calls together, split where it
        calls ``message_user`` (a turn of its own, text to the user); every call the model wrote is kept,
        those TRL could not run on this env too. A last message whose calls TRL never ran (it cut the
        rollout there) is left out."""
        messages = _messages(completion)
        if messages and messages[-1].get("role") == "assistant" and messages[-1].get("tool_calls"):
            messages = messages[:-1]
        turns: list[dict[str, Any]] = []
        for message in messages:
            if message.get("role") != "assistant":
                continue
            content = _text(message.get("content"))
            calls: list[dict[str, Any]] = []
            for call in message.get("tool_calls") or []:
                said = self._said(call)
                if said is None:
                    calls.append(self._eval_call(call))
                    continue
                if calls:
                    turns.append({"role": "assistant", "content": content, "tool_calls": calls})
                    content, calls = "", []
                turns.append({"role": "assistant", "content": "\n".join(s for s in (content, said) if s)})
                content = ""
            if calls or not message.get("tool_calls"):  # a reply without calls: what ended the rollout
                turns.append({"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})})
        return turns

    def _as_one_turn(self, message: dict[str, Any]) -> dict[str, Any]:
        """An assistant message, its calls together in one turn; a ``message_user`` call in it is text to
        the user, as eval reads a turn without calls."""
        calls: list[dict[str, Any]] = []
        said = [_text(message.get("content"))]
        for call in message.get("tool_calls") or []:
            text = self._said(call)
            if text is None:
                calls.append(self._eval_call(call))
            else:
                said.append(text)
        turn: dict[str, Any] = {"role": "assistant", "content": "\n".join(s for s in said if s)}
        return {**turn, "tool_calls": calls} if calls else turn

    def _said(self, call: Any) -> str | None:
        """The text of a ``message_user`` call TRL ran (else None: a call for the env to judge)."""
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or function.get("name") != USER_TOOL or USER_TOOL not in self._tools:
            return None
        arguments = function.get("arguments")
        if not isinstance(arguments, dict) or set(arguments) != {"message"}:  # TRL's call raised TypeError
            return None
        message = arguments["message"]
        return message if isinstance(message, str) else ""  # as the live step read it

    def _eval_call(self, call: Any) -> dict[str, Any]:
        """A call as eval's turn holds it: arguments under the schema's names, as the tool's method passes
        them on; a name this env lacks, or arguments that are not an object, as the model wrote them (the
        env's parser and schema gate judge them, as in eval)."""
        function = dict(call.get("function") or {}) if isinstance(call, dict) else {}
        name = function.get("name")
        renamed = self._renamed.get(name) if isinstance(name, str) else None
        arguments = function.get("arguments")
        if renamed and isinstance(arguments, dict):
            function["arguments"] = {renamed.get(k, k): v for k, v in arguments.items()}
        return {"type": "function", "function": function}


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


class _Recording:
    """The live episode's user, what it says written down (``heard``: the opening, then each reply)."""

    def __init__(self, user: UserSimulator, heard: list[Any]) -> None:
        self.user, self.heard = user, heard

    async def opening(self, task: Task) -> str:
        text = await self.user.opening(task)
        self.heard[:] = [text]
        return text

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        reply = await self.user.reply(task, messages)
        self.heard.append(reply)
        return reply


class _Replaying:
    """The judged episode's user: says again what the live episode's said, in order (the model saw those
    words, and an LLM user is not asked twice); past them (the model's last reply, the closing turns, or
    a live episode that ended first), the user itself answers."""

    def __init__(self, user: UserSimulator, heard: list[Any]) -> None:
        self.user, self.heard = user, heard
        self.next = 1

    async def opening(self, task: Task) -> str:
        self.next = 1
        return str(self.heard[0]) if self.heard else await self.user.opening(task)

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        if self.next < len(self.heard):
            self.next += 1
            reply: UserReply = self.heard[self.next - 1]
            return reply
        return await self.user.reply(task, messages)


def gated_reward(
    completions: Sequence[Any], environments: Sequence[Any] | None = None, **_: Any
) -> list[float | None]:  # TRL's RewardFunc type
    """``GRPOTrainer(reward_funcs=gated_reward, ...)``: each rollout's gated reward, as ``inftool eval`` gives
    it for the same assistant turns (logged as ``rewards/gated_reward``); None for another library's env.

    A rollout cut by ``max_tool_calling_iterations`` ends on calls TRL never ran; they are not judged either.
    """
    if environments is None:
        raise InftoolError("gated_reward needs GRPOTrainer(environment_factory=...) from inftool_env.train.trl")
    return [env._score(completion) if isinstance(env, InftoolTrlEnv) else None
            for completion, env in zip(completions, environments, strict=True)]  # fmt: skip


def _messages(completion: Any) -> list[dict[str, Any]]:
    """A conversational completion's messages (none for anything else)."""
    return [m for m in completion if isinstance(m, dict)] if isinstance(completion, list) else []


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
        refuse_duplicate_ids(env.config.id, chosen)  # one would shadow the other in ``tasks``
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
        renamed: dict[str, dict[str, str]] = {}
        namespace: dict[str, Any] = {"_factory": self, "_offer": offer, "_renamed": renamed, "__module__": __name__,
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
                renamed[spec.name] = dict(method.arguments)
        if user_tool:
            if USER_TOOL in namespace:
                raise InftoolError(f"{self.env.config.id} has a tool named {USER_TOOL!r}; pass user_tool=False")
            namespace[USER_TOOL] = message_user
        name = re.sub(r"\W", "_", offer.split("/")[-1])
        cls: type[InftoolTrlEnv] = type(name, (InftoolTrlEnv,), namespace)
        # As GRPOTrainer lists them: a call of any other name it answers "Tool X not found" itself.
        cls._tools = frozenset(n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
                               if n not in ("reset", "get_reward") and not n.startswith("_"))  # fmt: skip
        return cls

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
