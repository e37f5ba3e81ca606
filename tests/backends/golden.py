"""The stateful backend's outputs, pinned: replays and tasks depend on the same seed and calls giving
the same bytes, so a speed-up must not change one of them.

A transcript runs every tool of a spec once on a seeded state (arguments sampled from its input schema,
path ids pointing at records that exist, so reads, updates and deletes succeed), samples each output
schema alone, and ends with the state's snapshot; each step is kept as the SHA-256 of its JSON text
(key order included). ``python -m tests.backends.golden`` rewrites ``golden_stateful.json`` — only
for a change that is meant to change outputs, said so in its commit.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from inftool_env import load_spec
from inftool_env.backends import StatefulBackend
from inftool_env.spec.ir import ToolSuite
from inftool_env.spec.sample import sample
from tests.conftest import REPO, corpus_files

GOLDEN = Path(__file__).with_name("golden_stateful.json")
SEEDS = (0, 7)
REPO_SPECS = {
    "bookshelf": REPO / "servers" / "bookshelf" / "openapi.yaml",
    "google_calendar": REPO / "servers" / "google_calendar" / "openapi.yaml",
    "yelp": REPO / "servers" / "yelp" / "swagger.json",
}


def spec_paths() -> dict[str, Path]:
    """The repo's stateful domains, and the shared corpus where it is present."""
    return {**REPO_SPECS, **{p.name: p for p in corpus_files()}}


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def _first(records: dict[str, Any] | None) -> str | None:
    return next(iter(records), None) if records else None


def _existing_ids(backend: StatefulBackend, tool_name: str, state: Any) -> dict[str, str]:
    """Path parameter -> an id the state holds (parents first, then the item in the scoped collection)."""
    route = backend.routes[tool_name]
    ids: dict[str, str] = {}
    scoped = route.collection
    for parent, param in route.parents:
        found = _first(state.collections.get(parent))
        if found is not None:
            ids[param] = found
            scoped = scoped.replace("{" + param + "}", found)
    if route.item_param is not None and (found := _first(state.collections.get(scoped))) is not None:
        ids[route.item_param] = found
    return ids


async def transcript(suite: ToolSuite, seed: int, *, kept: bool = False) -> list[tuple[str, str]]:
    """(label, JSON text) of every step, in order; ``kept``: on a seeded world the backend kept from an
    earlier ``new_state`` with the same seed (which the first one was then used and changed)."""
    backend = StatefulBackend(suite)
    state = backend.new_state(seed=seed)
    if kept:
        await _use(backend, suite, state)
        state = backend.new_state(seed=seed)
    steps = [("new_state", _text(backend.snapshot(state)))]
    for tool in suite.tools:
        if tool.name not in backend.routes:
            continue
        rng = random.Random(f"{seed}:{tool.name}")
        if tool.output_schema is not None:
            steps.append((f"sample-output {tool.name}", _text(sample(tool.output_schema, rng))))
        args = sample(tool.input_schema, rng, optional=0.5)
        args = args if isinstance(args, dict) else {}
        props = tool.input_schema.get("properties", {})
        for param, found in _existing_ids(backend, tool.name, state).items():
            for arg, binding in tool.bindings.items():
                if binding.location == "path" and binding.name == param:
                    integer = isinstance(props.get(arg), dict) and props[arg].get("type") == "integer"
                    args[arg] = int(found) if integer and found.isdigit() else found
        steps.append((f"args {tool.name}", _text(args)))
        try:
            result = _text(await backend.call(tool, args, state))
        except Exception as exc:  # noqa: BLE001 - a refusal is an output too
            result = f"{type(exc).__name__}: {exc}"
        steps.append((f"call {tool.name}", result))
    steps.append(("snapshot", _text(backend.snapshot(state))))
    return steps


async def _use(backend: StatefulBackend, suite: ToolSuite, state: Any) -> None:
    """Write to ``state`` through every tool that creates, so a kept world that shared with it would show."""
    for tool in suite.tools:
        if tool.http is not None and tool.http.method == "POST" and tool.name in backend.routes:
            try:
                await backend.call(tool, sample(tool.input_schema, random.Random(tool.name)), state)
            except Exception:  # noqa: BLE001, S112 - only the writes that succeed matter here
                continue
    for records in state.collections.values():
        for record in records.values():
            record["touched"] = True


def digests(steps: list[tuple[str, str]]) -> dict[str, str]:
    return {label: hashlib.sha256(text.encode()).hexdigest()[:20] for label, text in steps}


async def _write() -> None:
    golden = {}
    for name, path in sorted(spec_paths().items()):
        suite = load_spec(path)
        golden[name] = {str(seed): digests(await transcript(suite, seed)) for seed in SEEDS}
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(golden)} specs)")


if __name__ == "__main__":
    import anyio

    anyio.run(_write)
