"""The multi-turn tool environment: async core.

``reset`` picks a task and starts a fresh episode (its own server state, seed and rng); ``step``
takes one assistant turn — raw text in the env's tool-call format, or an OpenAI-style message —
runs its calls over MCP in order, and hands a turn without calls to the user simulator. Tool
failures are observations, and so are format errors (a tool message says why the turn ran nothing);
broken infrastructure truncates the episode with the error recorded. How a turn enters the messages
(one id per call in its message and its answer, a text format's calls kept once) is history.py's.
``reset(options=...)`` takes ``task`` or ``task_id``; any other key, or both, is refused.

Connections to the servers are opened once and kept by a keeper task, so ``reset``/``step``/``close``
may be called from any task (trainers, the Gymnasium portal). A connection that broke (a stdio server
that died) ends its episode with a ``ServerError`` on the trajectory and is reopened at the next
``reset``. Episode ids are ``uuid4`` (unique across processes); an episode's server state is released
over the wire when it ends or is replaced. Whatever the model sends, ``step`` returns: hostile text
is a format error, lone surrogates become U+FFFD (noted on the turn), and ``close`` never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from gymnasium.utils import seeding
from pydantic import ValidationError

from inftool_env.backends.base import copy_tree
from inftool_env.env.config import EnvConfig, Limits
from inftool_env.env.history import (
    assistant_message,
    call_ids,
    calls_as_made,
    malformed_answers,
    unrun_answers,
)
from inftool_env.env.readonly import freeze
from inftool_env.env.stalls import timeout_excluding_stalls
from inftool_env.errors import InftoolError, RegistrationError, ServerError, UserSimError, first_invalid
from inftool_env.mcp import (
    CompiledServer,
    RemoteTool,
    StdioCommand,
    ToolClient,
    new_episode_id,
    open_client,
    running_http,
)
from inftool_env.parsing import ParsedCall, ParseResult, get_format
from inftool_env.parsing.openai import OpenAIFormat
from inftool_env.rewards import EpisodeOutcome, GatedReward, RewardFn
from inftool_env.rewards.multi_turn import is_replayable, replay_turns, results_by_turn, steps_by_turn
from inftool_env.tasks import Task
from inftool_env.trajectory import CallRecord, ErrorKind, Trajectory, TurnRecord, clean_text, failure, scrub
from inftool_env.users import UserSimulator, get_user

logger = logging.getLogger(__name__)
_ENV_IDS = itertools.count()  # names the keeper task in logs; episode ids are uuid4
# Error kinds a server reports in ``_meta`` (WIRE.md) -> the trajectory's; None: infrastructure.
# Servers that report none (not ours) give "execution" for any error.
SERVER_KINDS: dict[str, ErrorKind | None] = {
    "unknown_tool": "unknown_tool", "schema": "schema", "too_large": "schema", "execution": "execution",
    "timeout": "timeout", "backend": None, "capacity": None,
}  # fmt: skip
# A call's budget goes to the server, which stops the work and answers "timeout" (the policy's error:
# the episode goes on). No answer by the budget plus this grace is a hung server: the episode is cut
# (call_timeout), time the event loop spent stalled not counted (stalls.py). The client's own read
# timeout is only a backstop, so the env's clock decides.
ANSWER_GRACE_S = 1.0
BACKSTOP_S = 120.0  # the client's own wait for an answer: past any stall the env's clock does not count
RELEASE_TIMEOUT_S = 5.0  # ending an episode on a server that does not answer
RESET_OPTIONS = ("task", "task_id")  # reset(options=...): one task given, or one of the env's by id


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
    released: bool = False


def missing_servers(task: Task, servers: Collection[str]) -> list[str]:
    """The servers ``task`` names that an env serving ``servers`` lacks: none of its episodes could start."""
    return [n for n in task.servers or () if n not in servers]


def refuse_missing_servers(what: str, tasks: Sequence[Task], servers: Collection[str]) -> None:
    """Raise naming the first of ``tasks`` that names servers the env lacks (and how many more do): a
    wrong env, not a hard task, found before any episode."""
    cannot = [(t.id, unknown) for t in tasks if (unknown := missing_servers(t, servers))]
    if cannot:
        (task_id, unknown), more = cannot[0], f" ({len(cannot) - 1} more such tasks)" if len(cannot) > 1 else ""
        raise RegistrationError(f"{what}: task {task_id} names servers {unknown} the env does not have{more}; "
                                "is it another env's task?")  # fmt: skip


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
        # A task naming a server the env lacks can never start: said here, by task and server, not later
        # as an episode that "broke on infrastructure" (every env, task file and worker is built here).
        refuse_missing_servers(config.id, tasks, servers)
        self.config = config
        self.tasks = list(tasks)
        self._task_index = {t.id: t for t in self.tasks}
        self.servers = servers
        try:
            self.format = get_format(config.format)
            self.user = user or get_user(config.user)
        except RegistrationError as exc:  # say whose setting it is
            raise RegistrationError(f"{config.id}: {exc}") from None
        weights = {str(k): v for k, v in config.reward.weights.items()}
        self.reward_fn = reward_fn or GatedReward(config.reward.gates, config.reward.basis, weights)
        self.limits: Limits = config.limits
        self.np_random, _ = seeding.np_random(None)
        self._uid = next(_ENV_IDS)
        self._keeper: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._clients: dict[str, ToolClient] = {}
        self._listings: dict[str, list[RemoteTool]] = {}
        self._frozen: dict[str, tuple[list[RemoteTool], list[dict[str, Any]]]] = {}  # per listing, for _offer
        self._episode: _Episode | None = None
        self._broken: str | None = None  # why the connections cannot be trusted: reopen them at reset
        self._closed = False
        self._lender: ToolEnv | None = None  # a spawned in-process worker uses its parent's connections
        self._lending: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def spawn(self) -> ToolEnv:
        """Another env over the same compiled servers and tasks (its episodes isolated by key). In-process,
        it uses this env's connections (opened once, kept until this env closes): a worker's own would
        cost a tools listing and the client's output-schema compilation per tool, per worker."""
        worker = ToolEnv(self.config, self.tasks, self.servers, user=self.user, reward_fn=self.reward_fn)
        if self.config.transport == "inprocess":
            worker._lender = self._lender or self
        return worker

    # -- lifecycle ------------------------------------------------------------------------------
    async def _connect(self) -> None:
        lender = self._lender
        keeper = lender._keeper if lender is not None else None
        if keeper is not None and not keeper.done() and keeper.get_loop() is not asyncio.get_running_loop():
            # The lender's connections live on another event loop (each Gymnasium env has its own): used
            # from here they would run from two threads and die with that loop. This worker opens its own.
            self._lender = lender = None
        if lender is not None:
            if lender._closed:
                raise InftoolError("the environment this worker was spawned from is closed")
            if self._broken and self._clients is lender._clients:  # broken since the lender last connected
                lender._broken = lender._broken or self._broken
            self._broken = None
            loop = asyncio.get_running_loop()
            if lender._lending is None or lender._lending[0] is not loop:
                lender._lending = (loop, asyncio.Lock())
            async with lender._lending[1]:  # one connects; the others wait for its listings
                await lender._connect()
            self._clients, self._listings, self._frozen = lender._clients, lender._listings, lender._frozen
            return
        if self._keeper is not None and (self._broken or self._keeper.done()):
            logger.warning("%s: reconnecting to its servers (%s)", self.config.id, self._broken or "connection lost")
            await self._disconnect()
        if self._keeper is not None:
            return
        ready: asyncio.Future[dict[str, ToolClient]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep(ready, self._stop), name=f"inftool-env-{self._uid}")
        try:
            self._clients = await ready
            for name, client in self._clients.items():
                self._listings[name] = await client.list_tools()
        except BaseException:
            await self._disconnect()
            raise

    async def _keep(self, ready: asyncio.Future[dict[str, ToolClient]], stop: asyncio.Event) -> None:
        """Owns every connection (their cancel scopes must open and close in one task). Never raises:
        a connection that dies ends this task, and the next ``reset`` opens new ones."""
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
                logger.warning("%s: a server connection ended: %s", self.config.id, failure(exc, ServerError))

    async def _disconnect(self) -> None:
        """Close every connection (subprocesses included); never raises."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None and self._stop is not None:
            self._stop.set()
            try:
                await keeper
            except BaseException as exc:  # noqa: BLE001 - closing must not fail; a cancel of our own task goes on
                if isinstance(exc, asyncio.CancelledError) and not keeper.cancelled():
                    raise
                logger.debug("%s: closing its connections: %r", self.config.id, exc)
        self._clients, self._listings, self._broken = {}, {}, None

    @contextlib.asynccontextmanager
    async def _open(self, name: str, compiled: CompiledServer) -> Any:
        timeout = self.limits.call_timeout_s + 2 * ANSWER_GRACE_S  # each call passes its own budget
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

    def _keeps_episodes(self, name: str) -> bool:
        """Whether server ``name`` keeps its episodes' states after our connection to it is reopened: not
        the servers this env starts itself (their states go with them). A shared server does."""
        return False

    async def close(self) -> None:
        """Idempotent, and never raises: ends the episode and every connection (subprocesses included)."""
        if self._closed:
            return
        self._closed = True
        await self._release()
        self._episode = None
        await self._disconnect()

    async def end_episode(self) -> None:
        """Let the episode go, as a pooled worker between episodes should: the servers drop its state and
        the env no longer holds its trajectory (``trajectory`` and ``state()`` are None after). The env
        stays open for the next ``reset``; never raises."""
        try:
            await self._release()
        finally:  # a cancel mid-release still lets the episode go here (a remote server's idle timeout ends it there)
            self._episode = None

    async def _release(self) -> None:
        """Tell each server to drop this episode's state (over the wire: every transport); never raises.
        A shared server is told as the episode ends; an in-process one, whose states only this env can
        reach, at the next reset or close (so ``state()`` still shows how the episode left it)."""
        ep = self._episode
        if ep is None or ep.released:
            return
        ep.released = True
        lost = self._keeper is None or self._keeper.done()
        if (self._broken or lost) and self.config.transport == "inprocess":  # the server lives in this process
            for name in ep.clients:
                self.servers[name].end_episode(ep.key)
            return
        for name, client in ep.clients.items():
            # A suspect connection is still asked to end the episode on a server that outlives it (a shared
            # one: else the state stays until its TTL); a subprocess's or our own HTTP server's state goes
            # with the reconnect, and a lost connection cannot be asked (a remote server expires the state).
            if lost or (self._broken and not self._keeps_episodes(name)):
                continue
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT_S):
                    await client.end_episode()
            except Exception as exc:  # the episode is over either way; a server that keeps it expires it
                logger.warning(
                    "%s: ending episode %s on %s: %s", self.config.id, ep.key, name, failure(exc, ServerError)
                )

    # -- reset ----------------------------------------------------------------------------------
    async def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._closed:
            raise InftoolError("the environment is closed")
        options = self._check_options(options)
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        await self._release()
        self._episode = None
        await self._connect()
        task = self._pick_task(options)
        episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        key = new_episode_id()
        names = task.servers or list(self.servers)
        unknown = missing_servers(task, self.servers)
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

    def _check_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """``reset``'s options, refused before the running episode is let go: an unknown key would be
        ignored (a task drawn instead of the one meant), and with both ``task`` and ``task_id`` one is."""
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise RegistrationError(f"{self.config.id}: reset(options=...) takes a dict, not {type(options).__name__}")
        unknown = sorted(map(repr, set(options) - set(RESET_OPTIONS)))
        if unknown:
            raise RegistrationError(f"{self.config.id}: unknown reset option {', '.join(unknown)}; known: "
                                    f"{', '.join(RESET_OPTIONS)}")  # fmt: skip
        if "task" in options and "task_id" in options:
            raise RegistrationError(f"{self.config.id}: reset(options=...) takes 'task' or 'task_id', not both")
        return options

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
            listing = self._listings[name]
            frozen = self._frozen.get(name)
            if frozen is None or frozen[0] is not listing:  # once per listing: observations share them
                fns = [{"name": t.name, "description": t.description, "parameters": t.input_schema} for t in listing]
                entries = [{"type": "function", "function": fn} for fn in fns]
                frozen = self._frozen[name] = (listing, freeze(entries))
            for tool, entry in zip(listing, frozen[1], strict=True):
                if tool.name in task.excluded_tools or tool.name in withheld:
                    continue
                if tool.name in owner:
                    raise RegistrationError(f"tool {tool.name!r} is offered by both {owner[tool.name]} and {name}")
                owner[tool.name] = name
                tools.append(entry)
        return tools, owner

    def _observation(self) -> dict[str, Any]:
        assert self._episode is not None  # noqa: S101 - internal invariant
        return {
            "messages": copy_tree(self._episode.trajectory.messages),
            "tools": list(self._episode.tools),  # read-only entries, shared (env/readonly.py)
        }

    # -- step -----------------------------------------------------------------------------------
    async def step(self, action: str | dict[str, Any]) -> StepResult:
        ep = self._episode
        if ep is None or ep.done:
            raise InftoolError("step() before reset(), or after the episode ended: call reset()")
        if isinstance(action, dict) and action.get("role", "assistant") != "assistant":  # the caller's slip
            raise InftoolError(f"step() takes the assistant's turn; this message's role is {action['role']!r}")
        traj = ep.trajectory
        parsed, text, replaced = self._read(action)
        turn = TurnRecord(step=len(traj.turns), content=parsed.content, parse_error=parsed.error)
        made = None
        if parsed.error is not None and isinstance(action, dict) and self._as_message(action):
            made, more = calls_as_made(action, turn.step) or (None, 0)
            replaced += more
        if replaced:
            turn.notes.append(f"{replaced} lone surrogate(s) replaced with U+FFFD: text must be valid Unicode")
        traj.turns.append(turn)
        ids = call_ids([c.id for c in parsed.calls], turn.step)  # one id per call: its message and its answer
        traj.messages.append(assistant_message(parsed, text, ids, made))
        truncation = None

        if parsed.error is not None:  # answered, so the model can correct itself (history.py)
            traj.messages.extend(malformed_answers(parsed.error, made))
            truncation = self._count_error()
        elif parsed.calls:
            for call, call_id in zip(parsed.calls, ids, strict=True):
                if ep.tool_calls >= self.limits.max_tool_calls:  # one turn may list any number of calls
                    truncation = "max_tool_calls"
                    break
                record, cut = await self._run_call(ep, call.name, call.arguments)
                turn.calls.append(record)
                traj.messages.append({"role": "tool", "tool_call_id": call_id, "name": call.name,
                                      "content": record.result})  # fmt: skip
                ep.tool_calls += 1
                if cut is not None:
                    truncation = cut
                    if cut == "server_error":
                        traj.error = traj.error or record.result
                    break
                if record.is_error:
                    truncation = self._count_error()
                    if truncation:
                        break
                else:
                    ep.consecutive_errors = 0
            if truncation is not None:  # the calls after the one that ended the episode, answered as not run
                left = len(turn.calls)  # each run call has its record and its answer
                names = [call.name for call in parsed.calls[left:]]
                traj.messages.extend(unrun_answers(names, ids[left:], truncation))
        if ep.task.one_shot and truncation is None:
            return await self._finish(terminated=True, reason=None)
        if parsed.error is None and not parsed.calls:
            try:
                reply = await self.user.reply(ep.task, traj.messages)
            except Exception as exc:  # the user simulator broke: infrastructure, recorded
                traj.error = failure(exc, UserSimError)
                return await self._finish(terminated=False, reason="user_error")
            if reply.usage is not None:
                for key, value in vars(reply.usage).items():
                    traj.user_usage[key] = traj.user_usage.get(key, 0) + value
            if reply.done:
                return await self._finish(terminated=True, reason=None)
            message = clean_text(reply.message)[0] if reply.message is not None else None
            turn.user_reply = message
            traj.messages.append({"role": "user", "content": message})
            ep.user_turn += 1
            if ep.user_turn in ep.task.tools_added:
                ep.tools, ep.owner = self._offer(ep.task, list(ep.clients), turn=ep.user_turn)

        truncation = truncation or self._limit_reached(ep)
        if truncation:
            return await self._finish(terminated=False, reason=truncation)
        return StepResult(self._observation(), 0.0, False, False, self._step_info(turn))

    def _read(self, action: str | dict[str, Any]) -> tuple[ParseResult, str, int]:
        """The parsed turn, its text, and how many lone surrogates were replaced in them. Never raises:
        whatever the action holds ends as calls, text, or a format error."""
        raw: Any = action
        if isinstance(action, dict):
            raw = action.get("content")
        text, replaced = clean_text(raw) if isinstance(raw, str) else ("", 0)
        try:
            if isinstance(action, str):
                parsed = self.format.parse(text)
            elif isinstance(action, dict) and self._as_message(action):
                parsed = OpenAIFormat().parse_message(action)
            elif isinstance(action, dict):
                parsed = self.format.parse(text)
            else:
                parsed = ParseResult(error=f"an action is text or a message dict, not {type(action).__name__}")
        except Exception as exc:  # a format's bug must not end the episode's process
            logger.warning("%s: the %s parser raised on a turn", self.config.id, self.format.name, exc_info=True)
            parsed = ParseResult(content=text, error=f"the turn could not be parsed: {type(exc).__name__}")
        content = clean_text(parsed.content)[0]  # the text's own, counted above
        calls = []
        for call in parsed.calls:  # JSON escapes (``"\\ud800"``) decode to lone surrogates
            (name, arguments, call_id), n = scrub([call.name, call.arguments, call.id])
            calls.append(ParsedCall(name, arguments, call_id))
            replaced += n
        error = clean_text(parsed.error)[0] if parsed.error is not None else None
        return ParseResult(content=content, calls=tuple(calls), error=error), text, replaced

    def _as_message(self, action: dict[str, Any]) -> bool:
        """Whether a dict action is read as an OpenAI message (its ``tool_calls``), not as text to parse."""
        return isinstance(self.format, OpenAIFormat) or "tool_calls" in action

    async def _run_call(self, ep: _Episode, name: str, arguments: dict[str, Any]) -> tuple[CallRecord, str | None]:
        """One call's record, and the truncation it forces (a hung server, the episode's deadline, broken
        infrastructure), if any."""
        server = ep.owner.get(name)
        if server is None:
            offered = ", ".join(ep.owner)
            return CallRecord(name=name, arguments=arguments, is_error=True, error_kind="unknown_tool",
                              result=f"Unknown tool {name!r}. Offered tools: {offered}."), None  # fmt: skip
        remaining = ep.deadline - time.monotonic()
        by_deadline = remaining < self.limits.call_timeout_s
        if remaining <= 0:
            return CallRecord(name=name, arguments=arguments, server=server, is_error=True, error_kind="timeout",
                              result=f"{name} was not run: the episode's time ran out"), "episode_timeout"  # fmt: skip
        budget = min(self.limits.call_timeout_s, remaining)
        try:
            async with timeout_excluding_stalls(budget + ANSWER_GRACE_S):
                outcome = await ep.clients[server].call(name, arguments, timeout=budget, wait=budget + BACKSTOP_S)
        except TimeoutError:
            # Our servers answer by the budget; one that did not is hung (or not ours): reopen it at reset.
            # Not an in-process one: its connection is a pair of queues in this process, still sound (a
            # worker's reconnect would close them under its siblings' live episodes), and a handler stuck
            # in a thread is not freed by reconnecting.
            if self.config.transport != "inprocess":
                self._broken = f"ServerError: {server} did not answer {name!r} in {budget + ANSWER_GRACE_S:g}s"
            why = "the episode's time ran out" if by_deadline else f"the server did not answer in {budget:g}s"
            hung = CallRecord(name=name, arguments=arguments, server=server, is_error=True, error_kind="timeout",
                              result=f"{name} timed out: {why}")  # fmt: skip
            return hung, "episode_timeout" if by_deadline else "call_timeout"
        except Exception as exc:  # the connection broke (or the client did): not the policy's doing
            self._broken = failure(exc, ServerError)
            return CallRecord(name=name, arguments=arguments, server=server, is_error=True,
                              error_kind="infrastructure", result=self._broken), "server_error"  # fmt: skip
        result = clean_text(outcome.text)[0]
        if not outcome.is_error:
            return CallRecord(name=name, arguments=arguments, server=server, result=result), None
        reported = outcome.error_kind
        kind = SERVER_KINDS.get(reported, "execution") if reported is not None else "execution"
        if kind is None:  # the server's own failure (a simulator bug, no room for the episode)
            return CallRecord(name=name, arguments=arguments, server=server, is_error=True,
                              error_kind="infrastructure",
                              result=f"ServerError: {server} ({reported}): {result}"), "server_error"  # fmt: skip
        record = CallRecord(name=name, arguments=arguments, server=server, result=result, is_error=True,
                            error_kind=kind)  # fmt: skip
        # The server stopped the work at the budget: the model's error, unless the deadline set the budget.
        return record, "episode_timeout" if kind == "timeout" and by_deadline else None

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
    def time_left(self) -> float | None:
        """Seconds until the running episode's deadline (``episode_timeout_s``); None without one."""
        ep = self._episode
        return None if ep is None or ep.done else ep.deadline - time.monotonic()

    async def truncate(self, reason: str) -> StepResult:
        """End the running episode from outside a step (a policy past the episode's deadline), scored
        as any truncated episode is."""
        if self._episode is None or self._episode.done:
            raise InftoolError("truncate() needs a running episode")
        return await self._finish(terminated=False, reason=reason)

    async def _finish(self, *, terminated: bool, reason: str | None) -> StepResult:
        ep = self._episode
        assert ep is not None  # noqa: S101 - internal invariant
        ep.done = True
        traj = ep.trajectory
        traj.terminated, traj.truncated, traj.truncation_reason = terminated, not terminated, reason
        turns = None
        servers = {n: self.servers[n] for n in ep.clients}
        try:
            if ep.task.ground_truth and not ep.task.one_shot and is_replayable(servers):
                turns = await replay_turns(servers, ep.task, steps_by_turn(traj), seed=ep.seed,
                                           live=results_by_turn(traj))  # fmt: skip
            traj.reward = self.reward_fn(EpisodeOutcome(ep.task, traj, turns))
        except Exception as exc:  # a reward's bug: the trajectory is kept, with the failure on it
            logger.warning("%s: scoring %s raised", self.config.id, ep.task.id, exc_info=True)
            traj.error = traj.error or f"reward: {type(exc).__name__}: {exc}"
        if self.config.transport != "inprocess":
            await self._release()
        score = traj.reward.reward if traj.reward else 0.0
        breakdown = traj.reward.model_dump() if traj.reward else None
        info = {**self._step_info(traj.turns[-1] if traj.turns else TurnRecord(step=0)), "reward_breakdown": breakdown,
                "truncation_reason": reason, "trajectory": traj}  # fmt: skip
        return StepResult(self._observation(), score, terminated, not terminated, info)

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
    def episode_id(self) -> str | None:
        """The id the servers keep the current (or last) episode's state under: uuid4, not part of the
        trajectory, which stays equal for equal seeds and actions (Gymnasium's determinism check)."""
        return self._episode.key if self._episode else None

    @property
    def task(self) -> Task | None:
        return self._episode.task if self._episode else None
