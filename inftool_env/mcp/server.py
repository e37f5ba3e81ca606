"""Compile a ToolSuite + Backend into a real MCP server (the official SDK's low-level ``Server``).

The low-level server does not validate arguments, so we do: one cached Draft 2020-12 validator per
tool, its ``pattern`` keywords time-bounded (``spec/patterns.py``). Every failure a model can act on
comes back as an ``isError`` result whose text says what to fix and whose ``_meta`` carries its kind
under ``inftool/error_kind`` (WIRE.md): ``unknown_tool``, ``schema``, ``execution`` (the backend
refused: ``ToolCallError``), ``backend`` (the backend raised anything else: a simulator bug, logged
here with its traceback), ``timeout``, ``capacity``, ``too_large``. Nothing here raises to the
client, and hostile arguments (``mcp/guards.py``) are refused before any work. A call past its time
(``limits.call_timeout_s``, or less when the client asks) is answered with kind ``timeout`` and its
work cancelled at its next ``await`` (a backend computing without awaiting cannot be interrupted);
validation that runs regexes (or big arguments) runs in a worker thread, off the event loop.

State: each episode owns one backend state. A client names its episode (and seed, and optionally
an initial state) in the request ``_meta`` under ``inftool/…`` keys; ids should be unguessable
(``uuid4().hex``): whoever knows one can act in that episode. A call naming none uses the server's
single default episode when ``limits.shared_default_episode`` (stdio and in-process: one client),
and over HTTP always a fresh throwaway state, so strangers never share one. (On the 2026-07-28
protocol every request gets a fresh session object, so the session cannot be the key.) A client
releases its episode with the ``inftool/end_episode`` request (``ToolClient.end_episode``); an
episode idle past ``limits.episode_ttl_s`` is released and logged; at ``limits.max_episodes`` a new
episode is refused with kind ``capacity`` — a live one is never evicted.

Trust: the spec's patterns and the model's arguments are untrusted; the backend is not — a
``python:`` backend runs its module's code in this process, with this process's rights.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, KeysView, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

import anyio
import mcp_types as types
from jsonschema.exceptions import best_match
from mcp.server.lowlevel import Server

from inftool_env.backends.base import Backend, copy_tree, data_key
from inftool_env.errors import ServerError, ToolCallError
from inftool_env.mcp.guards import Problem, ServerLimits, argument_problem, has_lone_surrogate, scrub
from inftool_env.spec.fast_check import Check, compile_check
from inftool_env.spec.ir import ToolSpec, ToolSuite
from inftool_env.spec.patterns import PatternTimeout, bounded_validator, deadline, has_patterns

logger = logging.getLogger(__name__)

META_EPISODE = "inftool/episode"
META_SEED = "inftool/seed"
META_INITIAL = "inftool/initial_state"
META_TIMEOUT = "inftool/timeout_s"  # a client's own limit for this call; the server cuts at the smaller
META_ERROR_KIND = "inftool/error_kind"
END_EPISODE = "inftool/end_episode"
DEFAULT_EPISODE = "default"
MAX_REPORTED_ERRORS = 5
OFF_LOOP_BYTES = 64 * 1024  # arguments this large are validated in a worker thread
LARGE_RESULT_CHARS = 2048  # a tool that has returned this much JSON has its texts kept (CompiledServer._encode)
KEPT_RESULT_BYTES = 8 * 1024 * 1024  # a server's kept texts and their keys, at most (one: an eighth of it)
_T = TypeVar("_T")


class EndEpisodeParams(types.RequestParams):
    episode: str


class EndEpisodeRequest(types.Request[EndEpisodeParams, Literal["inftool/end_episode"]]):
    """Release one episode's state (a request of this server's own, beside MCP's)."""

    method: Literal["inftool/end_episode"] = "inftool/end_episode"
    params: EndEpisodeParams


class EndEpisodeResult(types.Result):
    ended: bool


class _Refused(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Reply(NamedTuple):
    """A call's answer before it is an MCP result: its JSON text and structured content (a checker's replay
    reads the text alone, so it builds no pydantic result)."""

    text: str
    structured: Any


class _Failed(NamedTuple):
    """An error result before it is an MCP one (``error_result``'s message and kind): a checker's replay of
    a call the backend refuses reads its text alone, and a pydantic result costs more than the call."""

    message: str
    kind: str

    @property
    def text(self) -> str:
        return _scrub_text(self.message)


_Outcome = _Reply | _Failed | types.CallToolResult  # a result, or an error result


class Checked(NamedTuple):
    """A call ``CompiledServer.check`` found would run: its tool and its arguments' size (about their JSON's).
    Handed back with those very arguments to ``call_text``, their checks are not run twice."""

    tool: ToolSpec
    size: int


@dataclass
class _Live:
    state: Any
    used: float
    charged: int  # bytes of state as JSON: measured, plus what calls since may have added


class CompiledServer:
    """A ToolSuite served over MCP by a Backend; ``.server`` is the SDK server any transport runs.

    ``limits`` (``ServerLimits``) may be replaced at any time, e.g. ``dataclasses.replace``."""

    def __init__(
        self,
        suite: ToolSuite,
        backend: Backend,
        *,
        seed: int = 0,
        initial_state: Mapping[str, Any] | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.suite = suite
        self.backend = backend
        self.seed = seed
        self.initial_state = initial_state
        self.limits = limits or ServerLimits()
        self._tools = {t.name: t for t in suite.tools}
        self._listing = types.ListToolsResult(tools=[to_mcp_tool(t) for t in suite.tools])
        self._validators: dict[str, Any] = {}
        self._output_validators: dict[str, Any] = {}
        self._fast_checks: dict[tuple[str, bool], Check | None] = {}  # (tool, output?) -> compiled once
        self._slow_input = {t.name for t in suite.tools if has_patterns(t.input_schema)}
        self._slow_output = {t.name for t in suite.tools if t.output_schema and has_patterns(t.output_schema)}
        self._large_results: set[str] = set()  # tools that have returned LARGE_RESULT_CHARS of JSON
        self._texts: OrderedDict[bytes, str] = OrderedDict()  # such a result's data_key -> its JSON
        self._texts_bytes = 0  # about what _texts holds (keys and texts' lengths)
        self._texts_lock = threading.Lock()  # _result may run in a worker thread
        self._episodes: OrderedDict[str, _Live] = OrderedDict()
        self._default: _Live | None = None
        self.server: Server[Any] = Server(
            suite.name,
            version=suite.version,
            description=suite.description[:500] or None,
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
            get_tool_input_schema=lambda name: t.input_schema if (t := self._tools.get(name)) else None,
            lifespan=self._lifespan,
        )
        self.server.add_request_handler(END_EPISODE, EndEpisodeParams, self._on_end_episode)

    @property
    def tool_names(self) -> KeysView[str]:
        """The suite's tool names, in its order."""
        return self._tools.keys()

    @contextlib.asynccontextmanager
    async def _lifespan(self, _server: Any) -> AsyncIterator[dict[str, Any]]:
        """Entered per connection (stdio, in-process) or once (HTTP): a backend may hold resources."""
        hook = getattr(self.backend, "lifespan", None)
        if hook is None:
            yield {}
            return
        async with hook():
            yield {}

    # -- state ----------------------------------------------------------------------------------
    @property
    def live_episodes(self) -> int:
        """Episodes holding state now (the default one not counted)."""
        return len(self._episodes)

    def episode_state(self, episode: str = DEFAULT_EPISODE, *, seed: int | None = None,
                      initial: Mapping[str, Any] | None = None) -> Any:  # fmt: skip
        """The state of one episode, created fresh (seeded) on first use; ``ServerError`` when the
        server is at capacity or the initial state is over the size limit."""
        try:
            return self._live(episode, seed, initial).state
        except _Refused as exc:
            raise ServerError(str(exc)) from None

    def end_episode(self, episode: str) -> bool:
        """Release an episode's state; whether there was one."""
        if episode == DEFAULT_EPISODE:
            ended, self._default = self._default is not None, None
            return ended
        return self._episodes.pop(episode, None) is not None

    def _live(self, key: str, seed: int | None, initial: Mapping[str, Any] | None) -> _Live:
        now = time.monotonic()
        if key == DEFAULT_EPISODE and self._default is not None:
            self._default.used = now
            return self._default
        live = self._episodes.get(key)
        if live is not None:
            live.used = now
            self._episodes.move_to_end(key)
            return live
        if key != DEFAULT_EPISODE:
            self._expire(now)
            if len(self._episodes) >= self.limits.max_episodes:
                raise _Refused("capacity", f"the server holds {len(self._episodes)} live episodes, its limit; "
                                           "end one (end_episode) or retry later")  # fmt: skip
        live = self._fresh(seed, initial, now)
        if key == DEFAULT_EPISODE:
            self._default = live
        else:
            self._episodes[key] = live
        return live

    def _fresh(self, seed: int | None, initial: Mapping[str, Any] | None, now: float) -> _Live:
        initial = initial if initial is not None else self.initial_state
        size = 0
        if initial is not None:
            limit = self.limits.max_state_bytes
            problem, size = argument_problem(dict(initial), max_bytes=limit, max_depth=self.limits.max_argument_depth)
            if problem is not None:
                # Too big is the limit's business; anything else is a broken task, not the model's doing.
                raise _Refused("too_large" if size > limit else "backend", f"initial state: {problem.message}")
        state = self.backend.new_state(seed=self.seed if seed is None else seed, initial=initial)
        return _Live(state, now, size)

    def _expire(self, now: float) -> None:
        ttl = self.limits.episode_ttl_s
        if ttl is None:
            return
        while self._episodes:
            key, live = next(iter(self._episodes.items()))  # least recently used first
            if now - live.used <= ttl:
                return
            del self._episodes[key]
            logger.info("episode %s released after %.0f s idle (ttl %g s)", key, now - live.used, ttl)

    def _state_size(self, state: Any) -> int:
        try:
            return len(json.dumps(self.backend.snapshot(state), ensure_ascii=False, default=str))
        except (TypeError, ValueError, RecursionError):
            logger.debug("state of %s cannot be measured", self.suite.name, exc_info=True)
            return 0

    # -- handlers -------------------------------------------------------------------------------
    async def _on_list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return self._listing

    async def _on_end_episode(self, ctx: Any, params: EndEpisodeParams) -> EndEpisodeResult:
        return EndEpisodeResult(ended=self.end_episode(params.episode))

    async def _on_call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        meta = ctx.meta if isinstance(ctx.meta, Mapping) else {}
        key = meta.get(META_EPISODE)
        seed = meta.get(META_SEED)
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        initial = meta.get(META_INITIAL) if isinstance(meta.get(META_INITIAL), Mapping) else None
        timeout = meta.get(META_TIMEOUT)
        timeout = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
        over_http = getattr(ctx, "request", None) is not None
        try:
            if isinstance(key, str) and key:
                live: _Live | None = self._live(key, seed, initial)
            elif self.limits.shared_default_episode and not over_http:
                live = self._live(DEFAULT_EPISODE, seed, initial)
            else:
                live = None  # a throwaway state for this one call
            state = live.state if live is not None else self._fresh(seed, initial, time.monotonic()).state
        except _Refused as exc:
            return error_result(str(exc), exc.kind)
        except Exception as exc:  # the backend cannot make a state: infrastructure, not the model
            logger.warning("%s: cannot create episode state", self.suite.name, exc_info=True)
            return error_result(f"the server cannot create this episode's state: {type(exc).__name__}: {exc}",
                                "backend")  # fmt: skip
        return _as_result(await self._call(params.name, params.arguments, state, timeout, live))

    async def call(
        self, name: str, arguments: Any, state: Any, *, timeout: float | None = None
    ) -> types.CallToolResult:
        """Validate and run one call against ``state``; every failure is an ``isError`` result with its
        kind in ``_meta``. ``timeout`` (seconds) tightens ``limits.call_timeout_s`` for this call."""
        return _as_result(await self._call(name, arguments, state, timeout, None))

    async def call_text(self, name: str, arguments: Any, state: Any, *, checked: Checked | None = None) -> str:
        """``call``'s result text alone, as ``call`` would give it (what a checker's replay compares).
        ``checked``: what ``check`` said of this very call (its arguments the same object, unchanged since),
        so its checks are not run again."""
        outcome = await self._call(name, arguments, state, None, None, checked)
        return result_text(outcome) if isinstance(outcome, types.CallToolResult) else outcome.text

    async def _call(
        self, name: Any, arguments: Any, state: Any, timeout: float | None, live: _Live | None,
        checked: Checked | None = None,
    ) -> _Outcome:  # fmt: skip
        screened = checked or self._screen(name, arguments)
        if isinstance(screened, types.CallToolResult):
            return screened
        tool, size = screened
        limits = self.limits
        arguments = {} if arguments is None else arguments
        writes = not tool.annotations.read_only
        if live is not None and writes and live.charged > limits.max_state_bytes:
            live.charged = self._state_size(live.state)  # the estimate ran over: measure
            if live.charged > limits.max_state_bytes:
                return error_result(f"this episode's state is over the server's {limits.max_state_bytes:,}-byte "
                                    f"limit; {name!r} may add to it, so it is refused", "too_large")  # fmt: skip
        budget = min((t for t in (limits.call_timeout_s, timeout) if t is not None), default=None)
        if budget is None or not self._may_suspend(tool, size):
            # No cancel scope to enter (a sixth of a fast call's cost) where it could not act: a scope
            # cuts a call only at an await, and this one has none (its sync work could not be cut).
            result = await self._checked_call(tool, arguments, state, size, budget, valid=checked is not None)
            return self._charge(live, writes, size, result)
        with anyio.move_on_after(budget) as scope:
            result = await self._checked_call(tool, arguments, state, size, budget, valid=checked is not None)
        if scope.cancelled_caught:
            return error_result(f"{name!r} did not finish within the server's {budget:g} s limit; "
                                "its work was stopped", "timeout")  # fmt: skip
        return self._charge(live, writes, size, result)

    def check(self, name: str, arguments: Any) -> types.CallToolResult | Checked | None:
        """What ``call`` answers a call it refuses before running anything (an unknown tool, arguments
        refused or invalid), a call that so changes no state; ``Checked`` where the call would run, its
        checks having run here and passed; None where its checks would run in a thread (a tool with
        patterns, big arguments), so did not run here."""
        screened = self._screen(name, arguments)
        if isinstance(screened, types.CallToolResult):
            return screened
        tool, size = screened
        if self._checked_off_loop(name, size):
            return None
        problems = self._argument_errors(tool, {} if arguments is None else arguments)
        return _invalid(name, problems) if problems else Checked(tool, size)

    def _screen(self, name: Any, arguments: Any) -> tuple[ToolSpec, int] | types.CallToolResult:
        """The tool and the arguments' size (about their JSON's), or the refusal of a call to no tool or
        with arguments refused before any work (mcp/guards.py)."""
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return self._unknown(name)
        limits = self.limits
        problem, size = argument_problem(arguments, max_bytes=limits.max_argument_bytes,
                                         max_depth=limits.max_argument_depth)  # fmt: skip
        return (tool, size) if problem is None else _refused(name, problem)

    def _may_suspend(self, tool: ToolSpec, size: int) -> bool:
        """Whether the call may await: an async backend, or checks that run in a thread (_checked_call)."""
        name = tool.name
        suspends = getattr(self.backend, "suspends", True)
        return suspends or self._checked_off_loop(name, size) or name in self._slow_output

    def _checked_off_loop(self, name: str, size: int) -> bool:
        """Whether the arguments' check runs in a worker thread: a regex to run, or arguments this large."""
        return name in self._slow_input or size > OFF_LOOP_BYTES

    @staticmethod
    def _charge(live: _Live | None, writes: bool, size: int, outcome: _Outcome) -> _Outcome:
        if live is not None and writes and isinstance(outcome, _Reply):
            live.charged += size + len(outcome.text)
        return outcome

    async def _checked_call(
        self, tool: ToolSpec, arguments: dict[str, Any], state: Any, size: int, budget: float | None,
        *,
        valid: bool = False,
    ) -> _Outcome:  # fmt: skip
        name = tool.name
        try:
            if valid:  # found so by check(), on these very arguments
                problems = []
            elif self._checked_off_loop(name, size):
                problems = await _off_loop(lambda: self._argument_errors(tool, arguments), budget)
            else:  # no regex to run, and little to check: not worth a thread
                problems = self._argument_errors(tool, arguments)
        except PatternTimeout as exc:
            return error_result(f"Checking the arguments of {name!r} took too long: {exc}", "timeout")
        if problems:
            return _invalid(name, problems)
        try:
            # A copy: backends may mutate what they are given (BFCL's post_tweet appends to `mentions`),
            # and in-process callers (replays, the env) must not see their calls change under them.
            result = await self.backend.call(tool, copy_tree(arguments), state)
        except ToolCallError as exc:
            return _Failed(str(exc), "execution")
        except Exception as exc:  # a simulator bug: the server's fault, logged with its traceback
            logger.warning("%s: backend failed on %s", self.suite.name, name, exc_info=True)
            return error_result(f"{name} failed inside the server (not a problem with the call): "
                                f"{type(exc).__name__}: {exc}", "backend")  # fmt: skip
        if name not in self._slow_output:
            return self._result(tool, result)
        try:
            return await _off_loop(lambda: self._result(tool, result), budget)
        except PatternTimeout as exc:
            return error_result(f"Checking the result of {name!r} took too long: {exc}", "timeout")

    def _unknown(self, name: Any) -> types.CallToolResult:
        shown = repr(name) if isinstance(name, str) and not has_lone_surrogate(name) else "(not valid text)"
        close = difflib.get_close_matches(name, self._tools, n=3) if isinstance(name, str) else []
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return error_result(f"Unknown tool {shown}.{hint} Available tools: {', '.join(self._tools)}.", "unknown_tool")

    def argument_errors(self, tool: ToolSpec, arguments: Any) -> list[str]:
        """What is wrong with ``arguments`` under the tool's input schema (at most a few problems)."""
        try:
            return self._argument_errors(tool, arguments)
        except PatternTimeout as exc:
            return [str(exc)]

    def _surely_valid(self, tool: ToolSpec, value: Any, *, output: bool) -> bool:
        """The compiled check (spec/fast_check.py): True only where the full validator would pass."""
        key = (tool.name, output)
        if key not in self._fast_checks:
            self._fast_checks[key] = compile_check(tool.output_schema if output else tool.input_schema)
        check = self._fast_checks[key]
        return check is not None and check(value)

    def _argument_errors(self, tool: ToolSpec, arguments: Any) -> list[str]:
        if self._surely_valid(tool, arguments, output=False):
            return []
        validator = self._validators.get(tool.name)
        if validator is None:
            validator = self._validators[tool.name] = bounded_validator(tool.input_schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
        return [_describe(e) for e in errors[:MAX_REPORTED_ERRORS]]

    def forget_results(self) -> None:
        """Drop the kept result texts (a benchmark's round starts cold, as a fresh server would)."""
        with self._texts_lock:
            self._large_results.clear()
            self._texts.clear()
            self._texts_bytes = 0

    def _encode(self, name: str, result: Any) -> str:
        """``result``'s JSON. A tool's large results are kept by their ``data_key`` (equal keys: the same
        values, types and key order, so the same JSON): a GRPO group's rollouts, or a checker's replays, call
        the same lookup on the same state, and a result of a thousand floats takes milliseconds to write
        (a float's shortest text costs ~0.5 us), its key microseconds. One marshal cannot hold (a backend's
        own object) is written each time, and json.dumps says what is wrong with it."""
        key = data_key(result) if name in self._large_results else None
        if key is not None:
            with self._texts_lock:
                text = self._texts.get(key)
                if text is not None:
                    self._texts.move_to_end(key)
                    return text
        text = json_text(result)
        if len(text) >= LARGE_RESULT_CHARS:
            with self._texts_lock:
                self._large_results.add(name)  # from now on its results are looked up first
                if key is not None and len(key) + len(text) <= KEPT_RESULT_BYTES // 8 and key not in self._texts:
                    self._texts[key] = text
                    self._texts_bytes += len(key) + len(text)
                    while self._texts_bytes > KEPT_RESULT_BYTES:
                        old_key, old_text = self._texts.popitem(last=False)
                        self._texts_bytes -= len(old_key) + len(old_text)
        return text

    def _result(self, tool: ToolSpec, result: Any) -> _Outcome:
        try:
            text = self._encode(tool.name, result)
        except (TypeError, ValueError, RecursionError) as exc:
            return error_result(f"{tool.name} returned a value that is not JSON: {exc}", "backend")
        if has_lone_surrogate(text):
            # Not UTF-8-encodable, so no transport could send it: mark the bad characters instead.
            text = _scrub_text(text)
            result = json.loads(text)
        structured = None
        if tool.output_schema is not None:
            structured = {"result": result} if tool.output_schema.get("x-wrapped") else result
            error = None
            if not self._surely_valid(tool, structured, output=True):
                validator = self._output_validators.get(tool.name)
                if validator is None:
                    validator = self._output_validators[tool.name] = bounded_validator(tool.output_schema)
                error = best_match(validator.iter_errors(structured))
            if error is not None:
                # A backend bug, shown rather than hidden: the client would reject it anyway.
                return error_result(
                    f"{tool.name} produced output outside its output schema: {_describe(error)}", "backend"
                )
        elif isinstance(result, dict):
            structured = result
        return _Reply(text, structured)


async def _off_loop(fn: Callable[[], _T], budget: float | None) -> _T:
    """``fn()`` in a worker thread, its pattern searches sharing ``budget`` (the thread is abandoned
    if the call is cancelled; its searches end by themselves, and they do not hold the GIL)."""

    def bounded() -> _T:
        with deadline(budget) if budget is not None else contextlib.nullcontext():
            return fn()

    return await anyio.to_thread.run_sync(bounded, abandon_on_cancel=True)


def _c_encoder() -> Callable[[Any, int], Any] | None:
    make = getattr(json.encoder, "c_make_encoder", None)  # None where the C accelerator is missing
    if make is None:
        return None
    default = json.JSONEncoder().default  # raises TypeError, as json.dumps does
    try:
        return make(None, default, json.encoder.encode_basestring, None, ": ", ", ", False, False, False)
    except TypeError:  # another Python's signature
        return None


_C_ENCODE = _c_encoder()


def json_text(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, allow_nan=False)``, the same text and errors (a cycle: a
    RecursionError), from one C encoder made once: json.dumps builds an encoder per call, two thirds of a
    small result's cost. Without a cycle check, it holds no state: threads may share it."""
    if _C_ENCODE is None:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    return "".join(_C_ENCODE(value, 0))


def _as_result(outcome: _Outcome) -> types.CallToolResult:
    if isinstance(outcome, types.CallToolResult):
        return outcome
    if isinstance(outcome, _Failed):
        return error_result(outcome.message, outcome.kind)
    return types.CallToolResult(content=[types.TextContent(text=outcome.text)], structured_content=outcome.structured)


def result_text(result: types.CallToolResult) -> str:
    """A result's text: its text blocks, a line each."""
    return "\n".join(getattr(block, "text", "") for block in result.content)


def error_result(message: str, kind: str) -> types.CallToolResult:
    """An ``isError`` result whose ``_meta`` names its kind (WIRE.md)."""
    return types.CallToolResult(
        content=[types.TextContent(text=_scrub_text(message))], is_error=True, _meta={META_ERROR_KIND: kind}
    )


def _refused(name: str, problem: Problem) -> types.CallToolResult:
    prefix = "Invalid arguments" if problem.kind == "schema" else "Arguments refused"
    return error_result(f"{prefix} for {name!r}: {problem.message}", problem.kind)


def _invalid(name: str, problems: list[str]) -> types.CallToolResult:
    return error_result(f"Invalid arguments for {name!r}: " + "; ".join(problems), "schema")


def _scrub_text(text: str) -> str:
    scrubbed: str = scrub(text)
    return scrubbed


def to_mcp_tool(tool: ToolSpec) -> types.Tool:
    a = tool.annotations
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(
            title=tool.original_name if tool.original_name != tool.name else None,
            read_only_hint=a.read_only,
            destructive_hint=a.destructive,
            idempotent_hint=a.idempotent,
        ),
        _meta={"inftool/original_name": tool.original_name},
    )


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"at '{where}': {message}" if where else message
