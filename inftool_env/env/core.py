"""The multi-turn tool environment: async core.

``reset`` picks a task and starts a fresh episode (its own server state, seed and rng); ``step``
takes one assistant turn — raw text in the env's tool-call format, or an OpenAI-style message —
runs its calls over MCP in order, and hands a turn without calls to the user simulator. Tool
failures are observations; broken infrastructure truncates the episode with the error recorded.

Connections to the servers are opened once and kept by a keeper task for the env's life, so
``reset``/``step``/``close`` may be called from any task (trainers, the Gymnasium portal).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gymnasium.utils import seeding
from pydantic import ValidationError

from inftool_env.env.config import EnvConfig, Limits
from inftool_env.errors import InftoolError, RegistrationError, ServerError, first_invalid
from inftool_env.mcp import CompiledServer, RemoteTool, StdioCommand, ToolClient, open_client, running_http
from inftool_env.parsing import ParseResult, get_format
from inftool_env.parsing.openai import OpenAIFormat
from inftool_env.rewards import EpisodeOutcome, GatedReward, RewardFn
from inftool_env.rewards.multi_turn import is_replayable, replay_turns, steps_by_turn
from inftool_env.tasks import Task
from inftool_env.trajectory import CallRecord, ErrorKind, Trajectory, TurnRecord
from inftool_env.users import UserSimulator, get_user

_ENV_IDS = itertools.count()


@dataclass
class StepResult:
    observation: dict[str, Any]
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Episode:
    task: Task
    seed: int
    key: str
    clients: dict[str, ToolClient]
    tools: list[dict[str, Any]]
    owner: dict[str, str]  # tool name -> server name
    trajectory: Trajectory
    deadline: float
    tool_calls: int = 0
    user_turn: int = 0
    consecutive_errors: int = 0
    total_errors: int = 0
    done: bool = False


class ToolEnv:
    """One environment instance: many episodes in sequence, each isolated."""

    def __init__(
        self,
        config: EnvConfig,
        tasks: Sequence[Task],
        servers: dict[str, CompiledServer],
        *,
        user: UserSimulator | None = None,
        reward_fn: RewardFn | None = None,
    ) -> None:
        if not tasks:
            raise RegistrationError(f"{config.id}: no tasks")
        self.config = config
        self.tasks = list(tasks)
        self._task_index = {t.id: t for t in self.tasks}
        self.servers = servers
        self.format = get_format(config.format)
        self.user = user or get_user(config.user)
        weights = {str(k): v for k, v in config.reward.weights.items()}
        self.reward_fn = reward_fn or GatedReward(config.reward.gates, config.reward.basis, weights)
        self.limits: Limits = config.limits
        self.np_random, _ = seeding.np_random(None)
        self._uid = next(_ENV_IDS)
        self._episodes = itertools.count()
        self._keeper: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._clients: dict[str, ToolClient] = {}
        self._listings: dict[str, list[RemoteTool]] = {}
        self._episode: _Episode | None = None
        self._closed = False

    def spawn(self) -> ToolEnv:
        """Another env over the same compiled servers and tasks (its episodes isolated by key)."""
        return ToolEnv(self.config, self.tasks, self.servers, user=self.user, reward_fn=self.reward_fn)

    # -- lifecycle ------------------------------------------------------------------------------
    async def _connect(self) -> None:
        if self._keeper is not None:
            return
        ready: asyncio.Future[dict[str, ToolClient]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep(ready, self._stop), name=f"inftool-env-{self._uid}")
        self._clients = await ready
        for name, client in self._clients.items():
            self._listings[name] = await client.list_tools()

    async def _keep(self, ready: asyncio.Future[dict[str, ToolClient]], stop: asyncio.Event) -> None:
        """Owns every connection (their cancel scopes must open and close in one task)."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                clients = {}
                for name, compiled in self.servers.items():
                    clients[name] = await stack.enter_async_context(self._open(name, compiled))
                ready.set_result(clients)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ServerError(str(exc)))
            elif not isinstance(exc, asyncio.CancelledError):
                raise

    @contextlib.asynccontextmanager
    async def _open(self, name: str, compiled: CompiledServer) -> Any:
        timeout = self.limits.call_timeout_s
        if self.config.transport == "inprocess":
            async with open_client(compiled, timeout=timeout) as client:
                yield client
        elif self.config.transport == "http":
            async with running_http(compiled) as url, open_client(url, timeout=timeout) as client:
                yield client
        else:
            server = next(s for s in self.config.servers if s.name == name)
            extra = ("--backend", server.backend) if server.backend else ()
            async with open_client(StdioCommand.inftool_serve(server.spec, *extra), timeout=timeout) as client:
                yield client

    async def close(self) -> None:
        """Idempotent: ends the episode and every connection (subprocesses included)."""
        if self._closed:
            return
        self._closed = True
        self._end_episode()
        if self._keeper is not None and self._stop is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        self._keeper = None

    def _end_episode(self) -> None:
        if self._episode is not None and self.config.transport == "inprocess":
            for name in self._episode.clients:
                self.servers[name].end_episode(self._episode.key)
        self._episode = None

    # -- reset ----------------------------------------------------------------------------------
    async def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._closed:
            raise InftoolError("the environment is closed")
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        options = options or {}
        await self._connect()
        self._end_episode()
        task = self._pick_task(options)
        episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        key = f"env{self._uid}-ep{next(self._episodes)}"
        names = task.servers or list(self.servers)
        unknown = [n for n in names if n not in self.servers]
        if unknown:
            raise RegistrationError(f"task {task.id} names servers {unknown} this env does not have")
        clients = self._episode_clients(task, names, key, episode_seed)
        tools, owner = self._offer(task, names, turn=0)
        messages: list[dict[str, Any]] = []
        parts = (self.config.system_prompt, task.system_prompt, self.format.render_tools(tools))
        system = "\n\n".join(p for p in parts if p)
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": await self.user.opening(task)})
        trajectory = Trajectory(env_id=self.config.id, task_id=task.id, seed=episode_seed, messages=messages)
        self._episode = _Episode(
            task, episode_seed, key, clients, tools, owner, trajectory,
            deadline=time.monotonic() + self.limits.episode_timeout_s,
        )  # fmt: skip
        info = {"task_id": task.id, "category": task.category, "seed": episode_seed, "env_id": self.config.id}
        return self._observation(), info

    def _episode_clients(self, task: Task, names: list[str], key: str, seed: int) -> dict[str, ToolClient]:
        """The shared connections, each speaking for episode ``key`` (its own state on the server)."""
        return {n: self._clients[n].for_episode(key, seed=seed, initial_state=task.initial_for(n)) for n in names}

    def _pick_task(self, options: dict[str, Any]) -> Task:
        """``options["task"]``: a Task (or its JSON dict) not among the env's own, e.g. a synthesized one;
        ``options["task_id"]``: one of the env's tasks; neither: one drawn with the env's rng."""
        if "task" in options:
            given = options["task"]
            if isinstance(given, Task):
                return given
            if isinstance(given, dict):
                try:
                    return Task.model_validate(given)
                except ValidationError as exc:
                    raise RegistrationError(f"reset(options={{'task': ...}}): {first_invalid(exc)}") from None
            raise RegistrationError(f"options['task'] is a Task or a dict, not {type(given).__name__}")
        if "task_id" in options:
            task_id = options["task_id"]
            if task_id not in self._task_index:
                raise RegistrationError(f"{self.config.id} has no task {task_id!r}")
            return self._task_index[task_id]
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _offer(self, task: Task, names: list[str], *, turn: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The tools offered from user turn ``turn`` on: neither excluded nor still withheld."""
        withheld = {name for at, added in task.tools_added.items() if at > turn for name in added}
        tools: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        for name in names:
            for tool in self._listings[name]:
                if tool.name in task.excluded_tools or tool.name in withheld:
                    continue
                if tool.name in owner:
                    raise RegistrationError(f"tool {tool.name!r} is offered by both {owner[tool.name]} and {name}")
                owner[tool.name] = name
                fn = {"name": tool.name, "description": tool.description, "parameters": tool.input_schema}
                tools.append({"type": "function", "function": fn})
        return tools, owner

    def _observation(self) -> dict[str, Any]:
        assert self._episode is not None  # noqa: S101 - internal invariant
        return {
            "messages": copy.deepcopy(self._episode.trajectory.messages),
            "tools": copy.deepcopy(self._episode.tools),
        }

    # -- step -----------------------------------------------------------------------------------
    async def step(self, action: str | dict[str, Any]) -> StepResult:
        ep = self._episode
        if ep is None or ep.done:
            raise InftoolError("step() before reset(), or after the episode ended: call reset()")
        traj = ep.trajectory
        parsed = self._parse(action)
        turn = TurnRecord(step=len(traj.turns), content=parsed.content, parse_error=parsed.error)
        traj.turns.append(turn)
        traj.messages.append(self._assistant_message(parsed, action))
        truncation = None

        if parsed.error is not None:
            truncation = self._count_error()
        elif parsed.calls:
            for i, call in enumerate(parsed.calls):
                record = await self._run_call(ep, call.name, call.arguments)
                turn.calls.append(record)
                traj.messages.append(
                    {"role": "tool", "tool_call_id": call.id or f"call_{turn.step}_{i}", "name": call.name,
                     "content": record.result}
                )  # fmt: skip
                ep.tool_calls += 1
                if record.error_kind == "infrastructure":
                    traj.error = record.result
                    truncation = "server_error"
                    break
                if record.error_kind == "timeout":
                    truncation = "call_timeout"
                    break
                if record.is_error:
                    truncation = self._count_error()
                    if truncation:
                        break
                else:
                    ep.consecutive_errors = 0
        if ep.task.one_shot and truncation is None:
            return await self._finish(terminated=True, reason=None)
        if parsed.error is None and not parsed.calls:
            reply = await self.user.reply(ep.task, traj.messages)
            if reply.usage is not None:
                for key, value in vars(reply.usage).items():
                    traj.user_usage[key] = traj.user_usage.get(key, 0) + value
            if reply.done:
                return await self._finish(terminated=True, reason=None)
            turn.user_reply = reply.message
            traj.messages.append({"role": "user", "content": reply.message})
            ep.user_turn += 1
            if ep.user_turn in ep.task.tools_added:
                ep.tools, ep.owner = self._offer(ep.task, list(ep.clients), turn=ep.user_turn)

        truncation = truncation or self._limit_reached(ep)
        if truncation:
            return await self._finish(terminated=False, reason=truncation)
        return StepResult(self._observation(), 0.0, False, False, self._step_info(turn))

    def _parse(self, action: str | dict[str, Any]) -> ParseResult:
        if isinstance(action, dict):
            if isinstance(self.format, OpenAIFormat) or "tool_calls" in action:
                return OpenAIFormat().parse_message(action)
            action = str(action.get("content") or "")
        if not isinstance(action, str):
            return ParseResult(error=f"an action is text or a message dict, not {type(action).__name__}")
        return self.format.parse(action)

    @staticmethod
    def _assistant_message(parsed: ParseResult, action: str | dict[str, Any]) -> dict[str, Any]:
        content = action if isinstance(action, str) else (action.get("content") or "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if parsed.calls:
            message["tool_calls"] = [
                {"id": c.id or f"call_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for i, c in enumerate(parsed.calls)
            ]  # fmt: skip
        return message

    async def _run_call(self, ep: _Episode, name: str, arguments: dict[str, Any]) -> CallRecord:
        server = ep.owner.get(name)
        if server is None:
            offered = ", ".join(ep.owner)
            return CallRecord(name=name, arguments=arguments, is_error=True, error_kind="unknown_tool",
                              result=f"Unknown tool {name!r}. Offered tools: {offered}.")  # fmt: skip
        remaining = ep.deadline - time.monotonic()
        try:
            async with asyncio.timeout(min(self.limits.call_timeout_s, max(remaining, 0.001))):
                outcome = await ep.clients[server].call(name, arguments)
        except TimeoutError:
            return CallRecord(name=name, arguments=arguments, server=server, is_error=True, error_kind="timeout",
                              result=f"{name} timed out")  # fmt: skip
        except ServerError as exc:
            return CallRecord(name=name, arguments=arguments, server=server, is_error=True,
                              error_kind="infrastructure", result=str(exc))  # fmt: skip
        kind: ErrorKind | None = None
        if outcome.is_error:
            schema_error = outcome.text.startswith(("Invalid arguments for", "Unknown tool"))
            kind = "schema" if schema_error else "execution"
        return CallRecord(name=name, arguments=arguments, server=server, result=outcome.text,
                          is_error=outcome.is_error, error_kind=kind)  # fmt: skip

    def _count_error(self) -> str | None:
        ep = self._episode
        assert ep is not None  # noqa: S101 - internal invariant
        ep.consecutive_errors += 1
        ep.total_errors += 1
        if ep.consecutive_errors >= self.limits.max_consecutive_errors:
            return "max_consecutive_errors"
        if ep.total_errors >= self.limits.max_total_errors:
            return "max_total_errors"
        return None

    def _limit_reached(self, ep: _Episode) -> str | None:
        if len(ep.trajectory.turns) >= self.limits.max_turns:
            return "max_turns"
        if ep.tool_calls >= self.limits.max_tool_calls:
            return "max_tool_calls"
        if time.monotonic() >= ep.deadline:
            return "episode_timeout"
        return None

    @staticmethod
    def _step_info(turn: TurnRecord) -> dict[str, Any]:
        return {
            "parse_error": turn.parse_error,
            "calls": [c.model_dump() for c in turn.calls],
            "errors": [c.result for c in turn.calls if c.is_error],
        }

    # -- the end --------------------------------------------------------------------------------
    async def _finish(self, *, terminated: bool, reason: str | None) -> StepResult:
        ep = self._episode
        assert ep is not None  # noqa: S101 - internal invariant
        ep.done = True
        traj = ep.trajectory
        traj.terminated, traj.truncated, traj.truncation_reason = terminated, not terminated, reason
        turns = None
        servers = {n: self.servers[n] for n in ep.clients}
        if ep.task.ground_truth and not ep.task.one_shot and is_replayable(servers):
            turns = await replay_turns(servers, ep.task, steps_by_turn(traj), seed=ep.seed)
        traj.reward = self.reward_fn(EpisodeOutcome(ep.task, traj, turns))
        info = {**self._step_info(traj.turns[-1]), "reward_breakdown": traj.reward.model_dump(),
                "truncation_reason": reason, "trajectory": traj}  # fmt: skip
        return StepResult(self._observation(), traj.reward.reward, terminated, not terminated, info)

    def state(self) -> dict[str, Any] | None:
        """Each server's state for this episode as JSON (in-process transport only)."""
        ep = self._episode
        if ep is None or self.config.transport != "inprocess":
            return None
        return self._snapshot(ep, ep.key)

    def _snapshot(self, ep: _Episode, key: str) -> dict[str, Any]:
        out = {}
        for n in ep.clients:
            server = self.servers[n]
            state = server.episode_state(key, seed=ep.seed, initial=ep.task.initial_for(n))
            out[n] = server.backend.snapshot(state)
        return out

    @property
    def trajectory(self) -> Trajectory | None:
        return self._episode.trajectory if self._episode else None

    @property
    def task(self) -> Task | None:
        return self._episode.task if self._episode else None
