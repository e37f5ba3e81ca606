"""``inftool eval bfcl``: a policy through our envs on BFCL v4, scored with BFCL's semantics.

Every entry is an episode (single-turn entries one-shot on their own server, multi-turn ones on
the domain servers); its verdict is the reward's ``correct`` (gates aside, as BFCL has none).
``score_results`` scores results in BFCL's own file format instead, without running a policy. The
report (``bfcl_report.py``) gathers the verdicts, and names the episodes that broke on infrastructure
(an endpoint down: ``report.broken``), which ``inftool eval bfcl`` then exits non-zero on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inftool_env.env import ToolEnv, run_batch
from inftool_env.env.batch import PolicyFactory
from inftool_env.env.config import EnvConfig, Limits, ServerConfig, TaskSource
from inftool_env.errors import SpecError
from inftool_env.eval.bfcl_data import CATEGORIES, BfclCategory, CategoryData, load_category
from inftool_env.eval.bfcl_known import UNPASSABLE
from inftool_env.eval.bfcl_report import BfclReport, EntryVerdict, save_report
from inftool_env.eval.bfcl_results import decode_step, decode_turns, encode, read_results, result_file
from inftool_env.eval.runner import infrastructure_failures
from inftool_env.parsing.base import call_in_text
from inftool_env.policies import close_policy
from inftool_env.rewards.bfcl_ast import Verdict, check_ast, check_relevance
from inftool_env.rewards.multi_turn import verdict_multi_turn
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory

CHUNK = 64  # single-turn entries per env: each has its own server, connected per worker


# -- running a policy --------------------------------------------------------------------------------
async def run_category(
    data: CategoryData,
    policy: PolicyFactory,
    *,
    format: str = "openai",
    concurrency: int = 8,
    progress: bool = True,
) -> list[Trajectory]:
    cat = data.category
    limits = Limits(max_turns=128, max_tool_calls=256, max_consecutive_errors=32, max_total_errors=128)
    if cat.kind == "multi_turn":
        return await _run(cat, data.tasks, data.servers, policy, limits, format, concurrency, progress)
    out: list[Trajectory] = []
    for start in range(0, len(data.tasks), CHUNK):
        chunk = data.tasks[start : start + CHUNK]
        servers = {t.id: data.servers[t.id] for t in chunk}
        out += await _run(cat, chunk, servers, policy, limits, format, concurrency, progress)
    return out


async def _run(
    cat: BfclCategory, tasks: list[Task], servers: dict[str, Any], policy: PolicyFactory, limits: Limits,
    format: str, concurrency: int, progress: bool,
) -> list[Trajectory]:  # fmt: skip
    config = EnvConfig(
        id=f"bfcl/{cat.name}", servers=[ServerConfig(name=n, spec=f"bfcl:{n}") for n in servers],
        tasks=TaskSource(source=f"bfcl:{cat.name}"), format=format, limits=limits,
    )  # fmt: skip
    env = ToolEnv(config, tasks, servers)
    episodes = [(i, t.id) for i, t in enumerate(tasks)]
    try:
        return await run_batch(env, policy, episodes=episodes, concurrency=concurrency, progress=progress)
    finally:
        await env.close()


def verdicts(data: CategoryData, trajectories: list[Trajectory]) -> list[EntryVerdict]:
    tasks = {t.id: t for t in data.tasks}
    out = []
    for traj in trajectories:
        task = tasks[traj.task_id]
        reward = traj.reward
        valid = bool(reward and reward.correct)
        errors = [n for n in (reward.notes if reward else []) if not n.startswith("truncated")]
        error_type = (reward.error_type if reward else None) or ("" if valid else "inference_error")
        if traj.error:
            errors.append(traj.error)
        if traj.replies_cut:
            n = traj.replies_cut
            errors.append(f"{n} repl{'y' if n == 1 else 'ies'} cut at the token limit (max_tokens)")
        called = [c.name for t in traj.turns for c in t.calls]
        as_text = any(t.parse_error is None and call_in_text(t.content) for t in traj.turns)
        verdict = Verdict(valid, error_type, errors)
        out.append(_verdict(task, verdict, called, cut=traj.replies_cut > 0, as_text=as_text))
    return out


def _verdict(
    task: Task, verdict: Verdict, called: list[str], *, cut: bool = False, as_text: bool = False
) -> EntryVerdict:
    ref = task.bfcl
    names = ref.tool_names if ref else {}
    expected = [names.get(c.name, c.name) for turn in task.ground_truth for c in turn]
    tools = sorted(set(expected or [names.get(n, n) for n in called]))
    known = UNPASSABLE.get(task.id, "")
    if not known and ref and ref.category == "live_relevance":
        known = "no ground truth: BFCL ships no answer for relevance entries"
    return EntryVerdict(task.id, ref.category if ref else task.category, verdict.valid, verdict.error_type or "",
                        list(verdict.errors), tools, known, cut, as_text)  # fmt: skip


def write_results(out: Path, data: CategoryData, trajectories: list[Trajectory]) -> Path:
    """Our trajectories in BFCL's result format (scoreable by its harness and by ``score_results``)."""
    out.mkdir(parents=True, exist_ok=True)
    multi = data.category.kind == "multi_turn"
    path = out / result_file(data.category.name)
    with path.open("w", encoding="utf-8") as f:
        for traj in trajectories:
            f.write(json.dumps({"id": traj.task_id, "result": encode(traj, multi_turn=multi)}) + "\n")
    return path


# -- scoring results written by anyone ----------------------------------------------------------------
async def score_results(
    data: CategoryData, results: list[dict[str, Any]], *, on_entry: Callable[[], None] | None = None
) -> list[EntryVerdict]:
    """Verdicts for the result lines of one category (entries without one are the caller's to report)."""
    by_id = {str(r["id"]): r["result"] for r in results}
    unknown = sorted(set(by_id) - {t.id for t in data.tasks})
    if unknown:
        raise SpecError(f"{data.category.name}: results for entries not in BFCL's data: {unknown[:5]}")
    out = []
    for task in data.tasks:
        if task.id in by_id:
            out.append(await _score_one(data, task, by_id[task.id]))
        if on_entry is not None:
            on_entry()
    return out


async def _score_one(data: CategoryData, task: Task, result: Any) -> EntryVerdict:
    ref = task.bfcl
    assert ref is not None  # noqa: S101 - BFCL tasks carry their reference
    if data.category.kind == "multi_turn":
        turns = decode_turns(result)
        if turns is None:
            return _verdict(task, Verdict(False, "multi_turn:inference_error", ["Not a list of turns."]), [])
        called = [c.name for t in turns for s in t for c in s]
        if len(turns) != len(task.ground_truth):
            message = f"{len(turns)} turns of results for {len(task.ground_truth)} turns."
            return _verdict(task, Verdict(False, "multi_turn:force_terminated", [message]), called)
        return _verdict(task, await verdict_multi_turn(data.servers, task, turns, seed=0), called)
    calls = decode_step(result)
    names = [n for c in calls or [] for n in c]
    if data.category.kind == "relevance":
        return _verdict(task, check_relevance(calls, ref.category), names)
    if calls is None:
        return _verdict(task, Verdict(False, "ast_decoder:decoder_failed", ["The result could not be decoded."]), [])
    output = [{ref.tool_names.get(n, n): args for n, args in c.items()} for c in calls]
    verdict = check_ast(ref.docs, output, ref.possible, ref.category, language=ref.language)
    return _verdict(task, verdict, names)


# -- whole runs --------------------------------------------------------------------------------------
async def evaluate_bfcl(
    policy_name: str,
    policy: PolicyFactory,
    categories: list[BfclCategory],
    *,
    limit: int | None = None,
    out: Path | None = None,
    format: str = "openai",
    concurrency: int = 8,
    progress: bool = True,
) -> BfclReport:
    report = BfclReport(policy_name, [], {c.name: c.reason for c in categories if c.kind == "not_run"})
    errors: list[str | None] = []
    try:
        for cat in categories:
            if cat.kind == "not_run":
                continue
            data = load_category(cat, limit=limit)
            if progress:
                print(f"{cat.name}: {len(data.tasks)} entries", flush=True)
            trajectories = await run_category(data, policy, format=format, concurrency=concurrency, progress=progress)
            report.entries += verdicts(data, trajectories)
            errors += [t.error for t in trajectories]
            report.broken = infrastructure_failures(errors)
            if out is not None:
                write_results(out / "results", data, trajectories)
    finally:
        await close_policy(policy)
    if out is not None:
        save_report(report, out)
    return report


async def score_path(path: Path, *, out: Path | None = None, progress: bool = True) -> BfclReport:
    """Score result files (BFCL's format) found at ``path``: each category present, all its entries."""
    by_category = read_results(path)
    unknown = sorted(set(by_category) - set(CATEGORIES))
    if unknown:
        raise SpecError(f"results name categories BFCL does not have: {unknown}", source=str(path))
    report = BfclReport(f"results from {path}", [], {})
    for name in CATEGORIES:
        if name not in by_category:
            continue
        cat = CATEGORIES[name]
        if cat.kind == "not_run":
            report.not_run[name] = cat.reason
            continue
        data = load_category(cat)
        bar = tqdm(total=len(data.tasks), desc=name, unit="entry", disable=not progress)
        try:
            scored = await score_results(data, by_category[name], on_entry=functools.partial(bar.update, 1))
        finally:
            bar.close()
        report.entries += scored
        if len(scored) < len(data.tasks):
            report.missing[name] = len(data.tasks) - len(scored)
    if out is not None:
        save_report(report, out)
    return report
