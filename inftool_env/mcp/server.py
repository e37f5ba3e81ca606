"""Compile a ToolSuite + Backend into a real MCP server (the official SDK's low-level ``Server``).

The low-level server does not validate arguments, so we do: one cached Draft 2020-12 validator per
tool. Every failure a model can act on — unknown tool, invalid arguments, the backend refusing —
comes back as an ``isError`` result whose text says what to fix; nothing here raises to the client.

State: each episode owns one backend state. A client names its episode (and seed, and optionally
an initial state) in the request ``_meta`` under ``inftool/…`` keys; a client that names none
shares the server's default episode. (On the 2026-07-28 protocol every request gets a fresh
session object, so the session cannot be the key.) Episode states are kept LRU-bounded.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from mcp.server.lowlevel import Server

from inftool_env.backends.base import Backend
from inftool_env.errors import ToolCallError
from inftool_env.spec.ir import ToolSpec, ToolSuite

logger = logging.getLogger(__name__)

META_EPISODE = "inftool/episode"
META_SEED = "inftool/seed"
META_INITIAL = "inftool/initial_state"
DEFAULT_EPISODE = "default"
MAX_REPORTED_ERRORS = 5


class CompiledServer:
    """A ToolSuite served over MCP by a Backend; ``.server`` is the SDK server any transport runs."""

    def __init__(
        self,
        suite: ToolSuite,
        backend: Backend,
        *,
        seed: int = 0,
        initial_state: Mapping[str, Any] | None = None,
        max_episodes: int = 1024,
    ) -> None:
        self.suite = suite
        self.backend = backend
        self.seed = seed
        self.initial_state = initial_state
        self.max_episodes = max_episodes
        self._tools = {t.name: t for t in suite.tools}
        self._listing = types.ListToolsResult(tools=[to_mcp_tool(t) for t in suite.tools])
        self._validators: dict[str, Draft202012Validator] = {}
        self._output_validators: dict[str, Draft202012Validator] = {}
        self._episodes: OrderedDict[str, Any] = OrderedDict()
        self.server: Server[Any] = Server(
            suite.name,
            version=suite.version,
            description=suite.description[:500] or None,
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
            get_tool_input_schema=lambda name: t.input_schema if (t := self._tools.get(name)) else None,
            lifespan=self._lifespan,
        )

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
    def episode_state(self, episode: str = DEFAULT_EPISODE, *, seed: int | None = None,
                      initial: Mapping[str, Any] | None = None) -> Any:  # fmt: skip
        """The state of one episode, created fresh (seeded) on first use."""
        if episode in self._episodes:
            self._episodes.move_to_end(episode)
            return self._episodes[episode]
        state = self.backend.new_state(
            seed=self.seed if seed is None else seed, initial=initial if initial is not None else self.initial_state
        )
        self._episodes[episode] = state
        while len(self._episodes) > self.max_episodes:
            evicted, _ = self._episodes.popitem(last=False)
            logger.warning("episode %r evicted: more than %d live episodes", evicted, self.max_episodes)
        return state

    def end_episode(self, episode: str) -> None:
        self._episodes.pop(episode, None)

    # -- handlers -------------------------------------------------------------------------------
    async def _on_list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return self._listing

    async def _on_call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        meta = ctx.meta if isinstance(ctx.meta, Mapping) else {}
        seed = meta.get(META_SEED)
        state = self.episode_state(
            str(meta.get(META_EPISODE, DEFAULT_EPISODE)),
            seed=seed if isinstance(seed, int) else None,
            initial=meta.get(META_INITIAL) if isinstance(meta.get(META_INITIAL), Mapping) else None,
        )
        return await self.call(params.name, params.arguments, state)

    async def call(self, name: str, arguments: Any, state: Any) -> types.CallToolResult:
        """Validate and run one call against ``state``; every failure is an ``isError`` result."""
        tool = self._tools.get(name)
        if tool is None:
            close = difflib.get_close_matches(name, self._tools, n=3)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            return error_result(f"Unknown tool {name!r}.{hint} Available tools: {', '.join(self._tools)}.")
        arguments = {} if arguments is None else arguments
        problems = self.argument_errors(tool, arguments)
        if problems:
            return error_result(f"Invalid arguments for {name!r}: " + "; ".join(problems))
        try:
            # A copy: backends may mutate what they are given (BFCL's post_tweet appends to `mentions`),
            # and in-process callers (replays, the env) must not see their calls change under them.
            result = await self.backend.call(tool, copy.deepcopy(arguments), state)
        except ToolCallError as exc:
            return error_result(str(exc))
        except Exception as exc:  # a backend's own failure is the model's observation, not a crash
            logger.debug("tool %s raised", name, exc_info=True)
            return error_result(f"{name} failed: {type(exc).__name__}: {exc}")
        return self._result(tool, result)

    def argument_errors(self, tool: ToolSpec, arguments: Any) -> list[str]:
        validator = self._validators.get(tool.name)
        if validator is None:
            validator = self._validators[tool.name] = Draft202012Validator(tool.input_schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        return [_describe(e) for e in errors[:MAX_REPORTED_ERRORS]]

    def _result(self, tool: ToolSpec, result: Any) -> types.CallToolResult:
        try:
            text = json.dumps(result, ensure_ascii=False, sort_keys=False)
        except (TypeError, ValueError) as exc:
            return error_result(f"{tool.name} returned a value that is not JSON: {exc}")
        structured = None
        if tool.output_schema is not None:
            structured = {"result": result} if tool.output_schema.get("x-wrapped") else result
            validator = self._output_validators.get(tool.name)
            if validator is None:
                validator = self._output_validators[tool.name] = Draft202012Validator(tool.output_schema)
            error = best_match(validator.iter_errors(structured))
            if error is not None:
                # A backend bug, shown rather than hidden: the client would reject it anyway.
                return error_result(f"{tool.name} produced output outside its output schema: {_describe(error)}")
        elif isinstance(result, dict):
            structured = result
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


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
