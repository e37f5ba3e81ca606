"""The world a synthesis run works in: the servers of a registered env, a manifest, or a raw spec.

``open_world`` compiles them; ``World.fresh()`` compiles them again (a fresh server, never one that
served the generator) and ``run_calls`` executes calls on a new state with a task's pinned initial
state, the one path both the generators and the verifier take to execute. Function docs with no
executor get a recording backend (single-turn categories judged on their calls) or, with a model, the
LLM-simulated one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inftool_env.backends.base import copy_tree
from inftool_env.backends.record import RecordingBackend
from inftool_env.backends.stateful import StatefulBackend
from inftool_env.compiler import compile_spec, load_suite
from inftool_env.env.build import resolve_spec
from inftool_env.env.config import EnvConfig, ServerConfig
from inftool_env.errors import BackendError, InftoolError
from inftool_env.mcp.server import CompiledServer
from inftool_env.spec.ir import ToolSpec
from inftool_env.synth.values import words_of
from inftool_env.tasks import ToolCall

if TYPE_CHECKING:
    from inftool_env.registration import EnvEntry


@dataclass(frozen=True)
class ManifestSource:
    """An env's config and the folder its relative paths resolve against (a manifest, read)."""

    config: EnvConfig
    base_dir: Path


@dataclass(frozen=True)
class CallResult:
    text: str
    value: Any
    is_error: bool


@dataclass
class World:
    name: str  # CamelCase, for the manifest's id
    servers: list[ServerConfig]  # specs resolved (absolute paths)
    compiled: dict[str, CompiledServer]
    config: EnvConfig | None = None  # a registered env's own config (its user, limits, reward)
    raw: bool = True  # a raw spec: synthesis writes its manifest
    notes: dict[str, str] = field(default_factory=dict)  # why an executor is missing, per server

    @property
    def tools(self) -> list[tuple[str, ToolSpec]]:
        return [(name, tool) for name, server in self.compiled.items() for tool in server.suite.tools]

    def owner(self) -> dict[str, str]:
        return {tool.name: name for name, tool in self.tools}

    def tool(self, name: str) -> ToolSpec:
        server = self.owner()[name]
        return self.compiled[server].suite.tool(name)

    def executes(self, server: str) -> bool:
        """Whether calls on this server have effects and results (not merely recorded)."""
        return not isinstance(self.compiled[server].backend, RecordingBackend)

    def fresh(self) -> dict[str, CompiledServer]:
        """The servers compiled again from their specs: what a verifier or a new env would get."""
        out = {}
        for s in self.servers:
            if s.backend == "record":
                suite = load_suite(s.spec)
                out[s.name] = CompiledServer(suite, RecordingBackend())
            else:
                out[s.name] = compile_spec(s.spec, backend=s.backend)
        return out

    def initial_state(self, server: str, seed: int) -> dict[str, Any]:
        backend = self.compiled[server].backend
        return dict(backend.snapshot(backend.new_state(seed=seed)) or {})


def open_world(source: str | Path | ManifestSource, *, model: str | None = None) -> World:
    """Any source ``inftool serve`` accepts, a registered env id, or a manifest (path or ManifestSource)."""
    if isinstance(source, ManifestSource):
        return _from_config(source.config, source.base_dir)
    text = str(source)
    entry = env_entry(text)
    if entry is not None:
        return _from_config(entry.config, entry.base_dir)
    return _from_spec(text, model)


def env_entry(source: str) -> EnvEntry | None:
    """The registered env or manifest a source names, or None for a spec. An id that is not registered,
    with no file of that name, raises the registry's error (close ids), not "no such spec"."""
    from inftool_env.registration import ID_RE, default_registry, is_manifest_path

    registry = default_registry()
    if is_manifest_path(source) or ID_RE.match(source) and (source in registry.ids() or not Path(source).exists()):
        return registry.resolve(source)
    return None


def names_no_file(source: str) -> bool:
    """A spec given by scheme (bfcl:, python:, stdio:) or URL, not by a file's path."""
    return ":" in source.split("/")[0] or source.startswith("http")


def _from_config(config: EnvConfig, base_dir: Path) -> World:
    servers = [s.model_copy(update={"spec": resolve_spec(s, base_dir)}) for s in config.servers]
    compiled = {}
    for s in servers:
        if s.backend == "record":
            compiled[s.name] = CompiledServer(load_suite(s.spec), RecordingBackend())
        else:
            compiled[s.name] = compile_spec(s.spec, backend=s.backend)
    name = config.id.rsplit("/", 1)[-1].rsplit("-v", 1)[0]
    return World(name, servers, compiled, config=config, raw=False)


def _from_spec(source: str, model: str | None) -> World:
    spec = source if names_no_file(source) else str(Path(source).resolve())
    suite = load_suite(spec)
    server = re.sub(r"[^a-z0-9_]+", "_", suite.name.lower()).strip("_") or "api"
    notes = {}
    try:
        compiled = compile_spec(spec)
        backend = None
    except BackendError as exc:
        if "function docs only" not in str(exc):
            raise
        backend = f"llm:{model}" if model else "record"
        notes[server] = "function docs with no executor: " + (
            f"results simulated by {model}" if model else "calls are recorded and judged by their schema"
        )
        if model:
            compiled = compile_spec(spec, backend=backend)
        else:
            compiled = CompiledServer(suite, RecordingBackend())
    name = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", suite.name) if w) or "Api"
    name = name if name[0].isalpha() else f"Api{name}"
    return World(name, [ServerConfig(name=server, spec=spec, backend=backend)], {server: compiled}, notes=notes)


async def run_calls(
    servers: dict[str, CompiledServer],
    owner: dict[str, str],
    turns: list[list[ToolCall]],
    *,
    initial: dict[str, Any],
    seed: int,
) -> tuple[list[list[CallResult]], dict[str, Any]]:
    """Every turn's calls in order on one new state per server; (results per turn, final snapshots)."""
    states = {n: s.backend.new_state(seed=seed, initial=initial.get(n) or None) for n, s in servers.items()}
    results: list[list[CallResult]] = []
    for calls in turns:
        done = []
        for call in calls:
            server = owner.get(call.name)
            if server is None or server not in servers:
                done.append(CallResult(f"unknown tool {call.name}", None, True))
                continue
            outcome = await servers[server].call(call.name, copy_tree(call.arguments), states[server])
            text = "\n".join(getattr(b, "text", "") for b in outcome.content)
            done.append(CallResult(text, _parse(text), bool(outcome.is_error)))
        results.append(done)
    snapshots = {n: servers[n].backend.snapshot(state) for n, state in states.items()}
    return results, snapshots


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def stateful_ids(world: World, server: str, snapshot: dict[str, Any]) -> dict[str, list[str]]:
    """The ids each top-level collection holds in a stateful snapshot: ``{"/books": ["boo_1", …]}``."""
    if not isinstance(world.compiled[server].backend, StatefulBackend):
        return {}
    collections = snapshot.get("collections", {}) if isinstance(snapshot, dict) else {}
    return {k: list(v) for k, v in collections.items() if "{" not in k and isinstance(v, dict)}


def id_targets(world: World, server: str, tool: ToolSpec) -> dict[str, str]:
    """Arguments of a tool that name a record of a collection: ``{"bookId": "/books"}`` (path ids of its
    route and its parents, and any argument named like another route's item parameter)."""
    backend = world.compiled[server].backend
    if not isinstance(backend, StatefulBackend):
        return {}
    seeded = backend.readable  # collections that start with records (the others hold none to name)
    by_param: dict[str, str] = {}
    for route in backend.routes.values():
        if route.item_param and route.collection in seeded and "{" not in route.collection:
            by_param.setdefault(route.item_param, route.collection)
        for parent, param in route.parents:
            if parent in seeded and "{" not in parent:
                by_param.setdefault(param, parent)
    out = {}
    for arg, binding in tool.bindings.items():
        name = binding.name or arg
        if name in by_param and binding.location in ("path", "body", "query", "formData"):
            out[arg] = by_param[name]
    return out


def needs_created_record(world: World, server: str, tool: ToolSpec) -> bool:
    """An item of a nested collection (``/members/{id}/loans/{loanId}``): only an earlier call makes one."""
    backend = world.compiled[server].backend
    if not isinstance(backend, StatefulBackend):
        return False
    route = backend.routes.get(tool.name)
    return route is not None and route.item_param is not None and "{" in route.collection


# A parameter that names a record (``bookId``, ``vault_uuid``, ``id``) selects what a call acts on.
IDLIKE = re.compile(r"(^|_)(id|uuid|key|code)$|[a-z](Id|ID|Uuid|Key)$")
UPDATE_VERBS = ("update", "edit", "modify", "change", "patch", "set", "rename")


def change_params(tool: ToolSpec) -> list[str]:
    """What an update may change: its arguments that do not select the record (path ids, id-like
    names) and, where the tool takes a body, only body fields (query options change nothing)."""
    body = any(b.location == "body" for b in tool.bindings.values())
    out = []
    for name, schema in tool.input_schema.get("properties", {}).items():
        binding = tool.bindings.get(name)
        if isinstance(schema, dict) and (schema.get("readOnly") or schema.get("deprecated")):
            continue
        if IDLIKE.search(name) or binding is not None and binding.location == "path":
            continue
        if body and (binding is None or binding.location != "body"):
            continue
        out.append(name)
    return out


def updates_in_place(tool: ToolSpec) -> bool:
    """A PATCH/PUT (or an ``update…`` function) that takes fields to change: a call of it must change one,
    else "change the book" says nothing of what to change. A PUT with nothing to send (star a repo) is an
    action, not an update."""
    if tool.annotations.read_only or not change_params(tool):
        return False
    if tool.http is not None:
        return tool.http.method.upper() in ("PATCH", "PUT")
    words = words_of(tool.name)
    return bool(words) and words[0] in UPDATE_VERBS


class SynthError(InftoolError):
    """A synthesis request that cannot be met (a source with no tools, an unknown category)."""
