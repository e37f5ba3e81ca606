"""``synthesize``: a source -> verified tasks in every category that applies, and what was dropped and why.

The quota (``n`` over the categories, or a target plan's cells) is met attempt by attempt: a builder
makes a candidate, the verifier re-runs it on fresh servers, a near-duplicate of a kept task is
dropped; every drop is counted under its reason. A category that cannot apply says why. A caller's
``admit`` check may refuse a verified candidate too (evolve: an answer longer than the policy may write in a
turn), and the attempt is made again.

What one attempt gives: its category does not apply (and the category stops), or a candidate (the
builder's task, and any companion tasks it made beside it, each kept or dropped; or the builder's own
give-up, a drop). So ``attempts - not_applicable_attempts + companions == kept + dropped``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import textwrap
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from tqdm import tqdm

from inftool_env.env.config import EnvConfig, Limits, TaskSource
from inftool_env.errors import RolloutError
from inftool_env.llm import ChatModel
from inftool_env.synth.categories import BUILDERS, CATEGORIES, parse_categories
from inftool_env.synth.context import Context, NotApplicable, Skip
from inftool_env.synth.foreign import ForeignRequest
from inftool_env.synth.target import ANY_TOOL, TargetPlan, cell_of
from inftool_env.synth.verify import ERROR_CHARS, Deduper, find_failure
from inftool_env.synth.world import ManifestSource, SynthError, World, open_world
from inftool_env.tasks import Task

ATTEMPTS_PER_TASK = 6
SHOWN_TOOLS = 8  # uncovered tools the table names (stats.json lists them all)
SHOWN_FAILURES = 12  # (reason, tool) lines of the table's failures
SHOWN_ERROR_CHARS = 100  # of each failure's first error
logger = logging.getLogger(__name__)
# A caller's last check on a verified candidate: None keeps it; else why it is dropped, "short reason: detail".
Admit = Callable[[Task], str | None]


@dataclass
class Drops:
    """Every drop: ``counts`` by its short reason (``simple: execution``, the table's counts), ``reasons``
    by its whole reason (``simple: execution: getBuild: No project …``), and ``by_tool``: per (short
    reason, tool) how many and the first error (the tool "" where no one tool failed)."""

    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    by_tool: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, category: str, reason: str, *, whole: str = "", tool: str = "", error: str = "") -> None:
        """``reason``: the short one; ``whole``: the full one where it says more."""
        self.counts[f"{category}: {reason}"] += 1
        self.reasons[f"{category}: {whole or reason}"] += 1
        if tool or whole:
            said = error if tool else whole.removeprefix(f"{reason}: ")
            count, first = self.by_tool.get((reason, tool), (0, said))
            self.by_tool[(reason, tool)] = (count + 1, first)

    def add_skip(self, category: str, skip: Skip) -> None:
        """A builder's give-up: its reason, and the tool and error it names, if any."""
        error = " ".join(skip.error.split())[:ERROR_CHARS]
        whole = ": ".join(filter(None, [str(skip), skip.tool, error])) if skip.tool else ""
        self.add(category, str(skip), whole=whole, tool=skip.tool, error=error)


@dataclass
class SynthRun:
    tasks: list[Task]
    not_applicable: dict[str, str]
    env_config: EnvConfig
    world: World
    attempts: int = 0  # builder calls
    plan: TargetPlan | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    drops: Drops = field(default_factory=Drops)
    not_applicable_attempts: int = 0  # attempts that found their category does not apply
    companions: int = 0  # candidates a builder made beside its task

    @property
    def dropped(self) -> dict[str, int]:
        """Drops by short reason ("simple: execution"); ``drops`` holds the whole reasons."""
        return dict(self.drops.counts)

    def table(self) -> str:
        return format_table(self)

    def write(self, out_dir: str | Path) -> Path:
        """``tasks.jsonl``, the manifest ``<Name>-v0.toml`` (servers with paths relative to it), ``stats.json``
        and, for a targeted run, ``plan.json``. Returns the manifest's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "tasks.jsonl").open("w", encoding="utf-8") as f:
            for task in self.tasks:
                f.write(task.model_dump_json(exclude_defaults=True) + "\n")
        manifest = out / f"{self.env_config.id.rsplit('/', 1)[-1]}.toml"
        manifest.write_text(to_toml(self.env_config, out), encoding="utf-8")
        (out / "stats.json").write_text(json.dumps(self.stats, indent=2), encoding="utf-8")
        if self.plan is not None:
            (out / "plan.json").write_text(self.plan.model_dump_json(indent=2), encoding="utf-8")
        return manifest


def synthesize(
    source: str | Path | ManifestSource | World,
    n: int = 200,
    categories: list[str] | None = None,
    generator: str | ChatModel = "schema",
    seed: int = 0,
    plan: TargetPlan | None = None,
    round: int = 0,  # noqa: A002 - the contract's name for the loop round
    progress: bool = False,
    attempts_per_task: int = ATTEMPTS_PER_TASK,
    foreign: Sequence[ForeignRequest] = (),
    admit: Admit | None = None,
) -> SynthRun:
    """Verified tasks for ``source`` (see the module doc); sync wrapper of ``synthesize_async``."""

    async def go() -> SynthRun:
        return await synthesize_async(source, n=n, categories=categories, generator=generator, seed=seed,
                                      plan=plan, round=round, progress=progress,
                                      attempts_per_task=attempts_per_task, foreign=foreign, admit=admit)  # fmt: skip

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(go)
    with ThreadPoolExecutor(1) as pool:  # called from async code (make() in a coroutine): its own loop
        return pool.submit(anyio.run, go).result()


async def synthesize_async(
    source: str | Path | ManifestSource | World,
    *,
    n: int = 200,
    categories: list[str] | None = None,
    generator: str | ChatModel = "schema",
    seed: int = 0,
    plan: TargetPlan | None = None,
    round: int = 0,  # noqa: A002
    progress: bool = False,
    attempts_per_task: int = ATTEMPTS_PER_TASK,
    foreign: Sequence[ForeignRequest] = (),
    admit: Admit | None = None,
) -> SynthRun:
    """``generator``: "schema", a model string, or a ChatModel object (both agent roles play on it).
    ``source``: also a World ``open_world`` made (the CLI opens it first, to check ``--out`` against it).
    ``foreign``: other sources' requests, a share of irrelevance offers this source's tools (synth/foreign.py).
    ``admit``: a last check on each verified candidate (see ``Admit``); a refusal is a drop, counted by reason."""
    wanted = parse_categories(categories)
    if n < 0 or attempts_per_task < 1:
        raise SynthError(f"n must be at least 0 and attempts_per_task at least 1, not {n} and {attempts_per_task}")
    model = None if generator == "schema" else generator
    world = source if isinstance(source, World) else open_world(source, model=model if isinstance(model, str) else None)
    quota = _quota(wanted, n, plan, key=f"{seed}|{world.name}")
    run = SynthRun([], {}, env_config(world), world, plan=plan)
    fresh = world.fresh()
    kept: list[Task] = []
    parents: dict[tuple[str, str], Task] = {}
    for hard in plan.hard_tasks if plan else []:  # hardest first: a cell's parent is its hardest task
        parents.setdefault(cell_of(hard), hard)
    bar = tqdm(total=sum(quota.values()), desc=f"synth {world.name}", disable=not progress, unit="task")
    agents = None
    if model is not None:
        from inftool_env.synth.llm_agents import CachedChat, ThreeAgents

        if isinstance(model, str):
            agents = ThreeAgents.from_model(model, world, seed=seed)
        else:
            chat = CachedChat(model)
            agents = ThreeAgents(chat, chat, world, seed=seed)
    name = generator if isinstance(generator, str) else generator.name
    try:
        await _fill(run, world, quota, fresh, kept, parents, bar, agents, name, seed, round, attempts_per_task,
                    tuple(foreign), admit)  # fmt: skip
    finally:
        bar.close()
        if agents is not None:
            await agents.aclose()
    run.stats = stats(run)
    return run


async def _fill(
    run: SynthRun, world: World, quota: dict[tuple[str, str], int], fresh: dict[str, Any], kept: list[Task],
    parents: dict[tuple[str, str], Task], bar: Any, agents: Any, generator: str, seed: int, round: int,  # noqa: A002
    attempts_per_task: int, foreign: tuple[ForeignRequest, ...], admit: Admit | None,
) -> None:  # fmt: skip
    dedup, drops = Deduper(), run.drops
    for (focus, category), count in quota.items():
        ctx = Context.create(world, seed=zlib.crc32(f"{seed}|{category}|{focus}".encode()) % 2**31, foreign=foreign)
        made = 0
        for attempt in range(count * attempts_per_task + 2):
            if made >= count:
                break
            run.attempts += 1
            ctx.new_task()
            try:
                if agents is not None:
                    built = await agents.attempt(ctx, category, None if focus == ANY_TOOL else focus)
                else:
                    built = await BUILDERS[category](ctx, None if focus == ANY_TOOL else focus)
                task, *companions = built if isinstance(built, list) else [built]
                parent = parents.get((focus, category))
                origin = {"generator": generator, "seed": seed, "round": round, "attempt": attempt,
                          "parent": parent.id if parent else None}  # fmt: skip
                if not await _keep(task, world, origin, fresh, dedup, kept, drops, round, seed, admit):
                    continue
                made += 1
                bar.update(1)
                paired = {**origin, "companion_of": kept[-1].id}
                for companion in companions:  # beyond the quota: the bar grows with them
                    run.companions += 1  # as each is verified: one that raises is a drop, the rest never candidates
                    if await _keep(companion, world, paired, fresh, dedup, kept, drops, round, seed, admit):
                        bar.total += 1
                        bar.update(1)
            except NotApplicable as exc:
                run.not_applicable[category] = str(exc)
                run.not_applicable_attempts += 1
                break
            except Skip as exc:
                drops.add_skip(category, exc)
            except RolloutError:  # the model's endpoint or a server is down: every attempt would fail alike
                raise
            except Exception as exc:  # a bug met by one odd tool or value costs this attempt, not the run
                _internal_error(category, exc, drops)
        if made == 0 and category not in run.not_applicable and count:
            top = next((r for r, _ in drops.counts.most_common() if r.startswith(f"{category}:")), "no attempt")
            run.not_applicable.setdefault(category, f"no candidate verified ({top.split(': ', 1)[-1]})")
    run.tasks = kept


def _internal_error(category: str, exc: Exception, drops: Drops) -> None:
    """Count an unexpected exception as a drop reason; the first of each kind is logged with its traceback."""
    kind = type(exc).__name__
    message = textwrap.shorten(str(exc), 80, placeholder=" …")
    reason = f"internal error ({kind}: {message})" if message else f"internal error ({kind})"
    if not drops.counts[f"{category}: {reason}"]:
        logger.warning("synth %s: %s", category, reason, exc_info=exc)
    drops.add(category, reason)


async def _keep(task: Task, world: World, origin: dict[str, Any], fresh: dict[str, Any], dedup: Deduper,
                kept: list[Task], drops: Drops, round: int, seed: int, admit: Admit | None) -> bool:  # noqa: A002  # fmt: skip
    """Verify, admit, name and deduplicate one candidate; kept ones are appended, dropped ones counted by reason."""
    failure = await find_failure(task, fresh)
    if failure is not None:
        drops.add(task.category, failure.kind, whole=failure.reason, tool=failure.tool, error=failure.error)
        return False
    refused = admit(task) if admit is not None else None
    if refused is not None:
        drops.add(task.category, refused.split(": ", 1)[0], whole=refused)
        return False
    task = task.model_copy(update={
        "id": f"{world.name.lower()}-{task.category}-r{round}-s{seed}-{len(kept):04d}",
        "provenance": {**task.provenance, **origin},
    })  # fmt: skip
    if not dedup.add(task):
        drops.add(task.category, "near-duplicate")
        return False
    kept.append(task)
    return True


def _quota(categories: list[str], n: int, plan: TargetPlan | None, *, key: str) -> dict[tuple[str, str], int]:
    if plan is not None:
        outside = sorted({c for (_, c), k in plan.cells.items() if k > 0 and c not in categories})
        if outside:  # its tasks would be dropped unseen: the plan must be made for these categories
            raise SynthError(f"the plan gives tasks to {', '.join(outside)}, which this run does not make; "
                             "plan with plan_targets(..., categories=) set to the run's")  # fmt: skip
        return {(t, c): k for (t, c), k in plan.cells.items() if k > 0}
    base, extra = divmod(n, len(categories))
    # The categories that get one task more are drawn per source and seed (``key``): taken in order, a split
    # smaller than the categories (6 held-out tasks over 8) left the same last ones out on every source.
    more = set(random.Random(key).sample(range(len(categories)), extra))
    return {(ANY_TOOL, c): base + (i in more) for i, c in enumerate(categories)}


def too_few(n: int, categories: list[str]) -> str | None:
    """A WARN line where ``n`` tasks cannot give every category one; None where they can."""
    if 0 < n < len(categories):
        return (
            f"WARN  {n} tasks over {len(categories)} categories: {len(categories) - n} get none on each source "
            f"(drawn per source and seed); ask for {len(categories)} or more, or fewer --categories"
        )
    return None


def env_config(world: World) -> EnvConfig:
    """The env for the written tasks: a registered env's own settings, or a raw spec's defaults."""
    tasks = TaskSource(source="tasks.jsonl")
    if world.config is not None:
        base = world.config
        return base.model_copy(update={"id": f"synth/{world.name}-v0", "servers": world.servers, "tasks": tasks,
                                       "description": f"Synthesized tasks on {base.id}'s servers."})  # fmt: skip
    return EnvConfig(
        id=f"synth/{world.name}-v0", description=f"Synthesized from {world.servers[0].spec}",
        servers=world.servers, tasks=tasks, user="scripted", limits=Limits(max_turns=12),
    )  # fmt: skip


def stats(run: SynthRun) -> dict[str, Any]:
    """What ``stats.json`` holds. ``verification_rate``: kept / candidates, where a candidate is a task a
    builder made (kept, or dropped by the verifier or as a near-duplicate) or a builder's give-up (a drop);
    ``attempts``: builder calls, of which ``not_applicable_attempts`` found their category does not apply;
    ``companions``: candidates made beside another's task (see the module doc for how these add up)."""
    values: list[str] = []
    for task in run.tasks:
        for turn in task.ground_truth:
            for call in turn:
                values += [f"{call.name}.{k}={json.dumps(v, sort_keys=True)}" for k, v in call.arguments.items()]
    tools = {c.name for t in run.tasks for turn in t.ground_truth for c in turn}
    total_dropped = sum(run.dropped.values())
    return {
        "per_category": dict(Counter(t.category for t in run.tasks)),
        "dropped": run.dropped,
        "not_applicable": run.not_applicable,
        "tools_covered": len(tools),
        "tools_total": len(run.world.tools),
        "value_diversity": round(len(set(values)) / len(values), 3) if values else 0.0,
        "verification_rate": round(len(run.tasks) / max(len(run.tasks) + total_dropped, 1), 3),
        "attempts": run.attempts,
        "tools_uncovered": [tool.name for _, tool in run.world.tools if tool.name not in tools],
        "dropped_reasons": dict(run.drops.reasons.most_common()),
        "failed_tools": [
            {"reason": reason, "tool": tool, "count": count, "first_error": first}
            for (reason, tool), (count, first) in sorted(run.drops.by_tool.items(), key=lambda kv: -kv[1][0])
        ],
        "kept": len(run.tasks),
        "candidates": len(run.tasks) + total_dropped,
        "not_applicable_attempts": run.not_applicable_attempts,
        "companions": run.companions,
    }


def format_table(run: SynthRun) -> str:
    s = run.stats or stats(run)
    lines = [f"{'category':<18} {'tasks':>5}  note"]
    for category in CATEGORIES:
        note = run.not_applicable.get(category, "")
        count = s["per_category"].get(category, 0)
        if count or note:
            lines.append(f"{category:<18} {count:>5}  {note}")
    lines.append(f"{'total':<18} {len(run.tasks):>5}")
    lines.append(f"tools covered {s['tools_covered']}/{s['tools_total']}, argument-value diversity "
                 f"{s['value_diversity']:.0%}")  # fmt: skip
    lines.append(_rate_line(s))
    uncovered = s["tools_uncovered"]
    if uncovered:
        more = f" and {len(uncovered) - SHOWN_TOOLS} more" if len(uncovered) > SHOWN_TOOLS else ""
        lines.append(f"tools not covered: {', '.join(uncovered[:SHOWN_TOOLS])}{more}")
    if run.dropped:
        lines.append("dropped:")
        lines += [f"  {k}: {v}" for k, v in sorted(run.dropped.items(), key=lambda kv: -kv[1])]
    failed = s["failed_tools"]
    if failed:
        lines.append("dropped, by tool (times): first error")
        for row in failed[:SHOWN_FAILURES]:
            first = textwrap.shorten(row["first_error"], SHOWN_ERROR_CHARS, placeholder=" …")
            which = f"{row['reason']}: {row['tool']}" if row["tool"] else row["reason"]
            lines.append(f"  {which} ({row['count']})" + (f": {first}" if first else ""))
        if len(failed) > SHOWN_FAILURES:
            lines.append(f"  and {len(failed) - SHOWN_FAILURES} more (stats.json lists them)")
    return "\n".join(lines)


def _rate_line(s: dict[str, Any]) -> str:
    """The verification rate and the counts it is of, which add up: attempts, less those that found their
    category does not apply, plus companions, are the candidates; kept and dropped ones are too."""
    dropped = s["candidates"] - s["kept"]
    line = f"verification rate {s['verification_rate']:.0%}: {s['kept']} of {s['candidates']} candidates kept"
    line += f", {dropped} dropped (below); {s['attempts']} attempts" if dropped else f"; {s['attempts']} attempts"
    if s["not_applicable_attempts"]:
        line += f", {s['not_applicable_attempts']} of which found their category does not apply"
    if s["companions"]:
        line += f"; {s['companions']} candidates made beside another's task"
    return line


def to_toml(config: EnvConfig, out_dir: Path) -> str:
    """The manifest as TOML; spec paths relative to the manifest when they are files."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    data["tasks"] = config.tasks.model_dump(exclude_defaults=True)
    servers = []
    for s in config.servers:
        entry = s.model_dump(exclude_none=True)
        if Path(s.spec).is_absolute() and Path(s.spec).exists():
            entry["spec"] = os.path.relpath(s.spec, out_dir.resolve())
        servers.append(entry)
    data["servers"] = servers
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{key}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: Any) -> str:
    return str(key) if re.fullmatch(r"[A-Za-z0-9_-]+", str(key)) else json.dumps(str(key))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise SynthError(f"cannot write {type(value).__name__} into a manifest")
