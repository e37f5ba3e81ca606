"""What a category builder works with: the world, the episode's seeded state, and making a call.

``make_call`` fills a tool's arguments (ids from the seeded state where an argument names a record),
``execute`` runs calls on a new state with the pinned initial state, ``pin`` keeps the part of that
state a task needs (every collection its offered tools reach), so tasks stay small and replay on any
fresh server.
"""

from __future__ import annotations

import random
import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inftool_env.backends.stateful import StatefulBackend
from inftool_env.spec.ir import ToolSpec
from inftool_env.synth.values import CREDENTIALS, ValueMaker, plain_name
from inftool_env.synth.world import (
    CallResult,
    World,
    change_params,
    id_targets,
    needs_created_record,
    run_calls,
    stateful_ids,
    updates_in_place,
)
from inftool_env.tasks import ToolCall

if TYPE_CHECKING:
    from inftool_env.synth.foreign import ForeignRequest


class Skip(Exception):
    """This attempt cannot make a task (counted under its reason; the next attempt may). ``tool`` and
    ``error``: the tool whose call failed and what it said, where one did (the run lists them by tool)."""

    def __init__(self, reason: str, *, tool: str = "", error: str = "") -> None:
        super().__init__(reason)
        self.tool = tool
        self.error = error


class NotApplicable(Exception):
    """The category cannot apply to this source at all (stated in the run's table)."""


@dataclass
class Context:
    world: World
    rng: random.Random
    seed: int
    optional_rate: float = 0.35
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    pinnable: dict[str, bool] = field(default_factory=dict)
    foreign: tuple[ForeignRequest, ...] = ()  # other sources' requests, for irrelevance (synth/foreign.py)
    # The task being built's credentials, per server and parameter: one user holds one token, so every call
    # of a task sends the one its first call drew (``new_task`` forgets them).
    credentials: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def create(cls, world: World, seed: int, foreign: tuple[ForeignRequest, ...] = ()) -> Context:
        ctx = cls(world, random.Random(seed), seed, foreign=foreign)
        for name, server in world.compiled.items():
            state = server.backend.new_state(seed=seed)
            snapshot = server.backend.snapshot(state)
            ctx.snapshots[name] = snapshot if isinstance(snapshot, dict) else {}
            try:  # a state that does not load back from its snapshot cannot be pinned on a task
                again = server.backend.snapshot(server.backend.new_state(seed=seed + 1, initial=snapshot))
                ctx.pinnable[name] = again == snapshot
            except Exception:  # any backend refusing its own snapshot: not pinnable, said by verification
                ctx.pinnable[name] = False
        return ctx

    def new_task(self) -> None:
        """Start the next task: its calls draw credentials of their own."""
        self.credentials.clear()

    # -- tools ----------------------------------------------------------------------------------
    def tools(self, *, executable: bool = False) -> list[tuple[str, ToolSpec]]:
        out = [(s, t) for s, t in self.world.tools if not t.deprecated]
        return [(s, t) for s, t in out if self.world.executes(s)] if executable else out

    def executable(self) -> bool:
        return any(self.world.executes(s) for s in self.world.compiled)

    def server_of(self, tool: str) -> str:
        return self.world.owner()[tool]

    # -- calls ----------------------------------------------------------------------------------
    def make_call(
        self, server: str, tool: ToolSpec, *, fixed: dict[str, Any] | None = None, optional: float | None = None
    ) -> ToolCall:
        fixed = dict(fixed or {})
        if needs_created_record(self.world, server, tool) and not fixed:
            raise Skip("needs a record only an earlier call creates", tool=tool.name)
        root = tool.input_schema
        props: dict[str, Any] = root.get("properties", {})
        required = set(root.get("required", []))
        ids = stateful_ids(self.world, server, self.snapshots.get(server, {}))
        targets = id_targets(self.world, server, tool)
        maker = ValueMaker(self.rng, root)
        rate = self.optional_rate if optional is None else optional
        args: dict[str, Any] = {}
        for name, schema in props.items():
            if name in fixed:
                args[name] = fixed[name]
                continue
            if name not in required and not (self.rng.random() < rate and name not in targets):
                continue
            if isinstance(schema, dict) and (schema.get("readOnly") or schema.get("deprecated")):
                continue
            if name in targets:
                pool = ids.get(targets[name], [])
                if not pool:
                    raise Skip(f"no {targets[name]} record to act on", tool=tool.name)
                value: Any = self.rng.choice(pool)
                if isinstance(schema, dict) and schema.get("type") == "integer" and str(value).isdigit():
                    value = int(value)
                args[name] = value
                continue
            value = _value(maker, name, schema)  # drawn even where a credential is reused: later values stay put
            if plain_name(name) in CREDENTIALS:
                value = self.credentials.setdefault((server, name), value)
            args[name] = value
        change = [n for n in change_params(tool) if n not in targets]
        if updates_in_place(tool) and change and not set(args) & set(change):  # an update names what it changes
            name = self.rng.choice(change)
            args[name] = _value(maker, name, props[name])
        problems = self.world.compiled[server].argument_errors(tool, args)
        if problems:
            said = textwrap.shorten(problems[0], 100, placeholder=" …")
            raise Skip(f"generated arguments do not validate ({said})", tool=tool.name, error=problems[0])
        return ToolCall(name=tool.name, arguments=args)

    async def execute(self, turns: list[list[ToolCall]], *, initial: dict[str, Any]) -> list[list[CallResult]]:
        results, _ = await run_calls(self.world.compiled, self.world.owner(), turns, initial=initial, seed=self.seed)
        for calls, turn in zip(turns, results, strict=True):
            for call, result in zip(calls, turn, strict=True):
                if result.is_error:
                    raise Skip("a ground-truth call failed on the server", tool=call.name, error=result.text)
        return results

    # -- pinned state ---------------------------------------------------------------------------
    def pin(self, offered: list[str]) -> dict[str, Any]:
        """The initial state a task pins: per server its tools reach, the collections they use."""
        owner = self.world.owner()
        servers = sorted({owner[t] for t in offered})
        out: dict[str, Any] = {}
        for name in servers:
            if not self.pinnable.get(name):
                continue
            snapshot = self.snapshots[name]
            backend = self.world.compiled[name].backend
            if isinstance(backend, StatefulBackend) and isinstance(snapshot.get("collections"), dict):
                tools = [self.world.tool(t) for t in offered if owner[t] == name]
                snapshot = {**snapshot, "collections": _reached(backend, tools, snapshot["collections"])}
            if snapshot:
                out[name] = snapshot
        return out


def _value(maker: ValueMaker, name: str, schema: Any) -> Any:
    desc = str(schema.get("description", "")) if isinstance(schema, dict) else ""
    return maker.value(name, schema, description=desc)


def _reached(backend: StatefulBackend, tools: list[ToolSpec], collections: dict[str, Any]) -> dict[str, Any]:
    templates: set[str] = set()
    for tool in tools:
        route = backend.routes.get(tool.name)
        if route is not None:
            templates.add(route.collection)
            templates.update(parent for parent, _ in route.parents)
    for route in backend.routes.values():  # ids named in bodies (``bookId``) reach their collection too
        names = {b.name for t in tools for b in t.bindings.values()}
        if route.item_param in names:
            templates.add(route.collection)
    patterns = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(t)) + "$") for t in templates]
    return {k: v for k, v in collections.items() if any(p.match(k) for p in patterns)}
