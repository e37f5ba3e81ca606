"""``inftool eval bfcl``: a policy through our envs on BFCL v4, scored with BFCL's semantics.

Every entry is an episode (single-turn entries one-shot on their own server, multi-turn ones on
the domain servers); its verdict is the reward's ``correct`` (gates aside, as BFCL has none).
``score_results`` scores results in BFCL's own file format instead, without running a policy. The
report (``bfcl_report.py``) gathers the verdicts, and names the episodes that broke on infrastructure
(an endpoint down: ``report.broken``), which ``inftool eval bfcl`` then exits non-zero on.

A run's ``out`` is held as ``inftool eval`` holds its own (``ResultsOut``): made, locked and cleared of an
earlier run's files before any entry, each result line written as its episode ends, and the report after
each category; an interrupted run (Ctrl-C) leaves its finished entries and a report of them marked incomplete.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
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
from inftool_env.eval.bfcl_results import ResultsOut, decode_step, decode_turns, read_results
from inftool_env.eval.runner import LockedOut, infrastructure_failures
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
    on_done: Callable[[Trajectory], None] | None = None,
) -> list[Trajectory]:
    """The category's trajectories in entry order; each also handed to ``on_done`` the moment it ends."""
    cat = data.category
    limits = Limits(max_turns=128, max_tool_calls=256, max_consecutive_errors=32, max_total_errors=128)
    run = functools.partial(_run, cat, policy=policy, limits=limits, format=format, concurrency=concurrency,
                            progress=progress, on_done=on_done)  # fmt: skip
    if cat.kind == "multi_turn":
        return await run(data.tasks, data.servers)
    out: list[Trajectory] = []
    for start in range(0, len(data.tasks), CHUNK):
        chunk = data.tasks[start : start + CHUNK]
        out += await run(chunk, {t.id: data.servers[t.id] for t in chunk})
    return out


async def _run(
    cat: BfclCategory, tasks: list[Task], servers: dict[str, Any], *, policy: PolicyFactory, limits: Limits,
    format: str, concurrency: int, progress: bool, on_done: Callable[[Trajectory], None] | None,
) -> list[Trajectory]:  # fmt: skip
    config = EnvConfig(
        id=f"bfcl/{cat.name}", servers=[ServerConfig(name=n, spec=f"bfcl:{n}") for n in servers],
        tasks=TaskSource(source=f"bfcl:{cat.name}"), format=format, limits=limits,
    )  # fmt: skip
    env = ToolEnv(config, tasks, servers)
    episodes = [(i, t.id) for i, t in enumerate(tasks)]
    try:
        done = None if on_done is None else lambda _position, trajectory: on_done(trajectory)
        return await run_batch(env, policy, episodes=episodes, concurrency=concurrency, progress=progress,
                               on_done=done)  # fmt: skip
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
    """The policy on each category's entries (the first ``limit``). With ``out``, see the module's doc."""
    report = BfclReport(policy_name, [], {c.name: c.reason for c in categories if c.kind == "not_run"})
    pending = [c for c in categories if c.kind != "not_run"]  # popped as each category completes
    errors: list[str | None] = []
    held: ResultsOut | None = None
    data: CategoryData | None = None  # the category running, while it runs
    ended: list[Trajectory] = []  # its entries that ended, in the order they ended

    def done(trajectory: Trajectory) -> None:
        ended.append(trajectory)
        if held is not None:
            held.add(trajectory)

    try:
        if out is not None:
            held = ResultsOut(out)  # before any entry: a busy or unwritable out is refused here
            save_report(_partial(report, None, [], pending), out, plot=False)
        while pending:
            data, ended = load_category(pending[0], limit=limit), []
            if progress:
                print(f"{data.category.name}: {len(data.tasks)} entries", flush=True)
            if held is not None:
                held.start(data.category.name, multi_turn=data.category.kind == "multi_turn")
            trajectories = await run_category(data, policy, format=format, concurrency=concurrency,
                                              progress=progress, on_done=done)  # fmt: skip
            report.entries += verdicts(data, trajectories)
            errors += [t.error for t in trajectories]
            report.broken = infrastructure_failures(errors)
            data = None
            pending.pop(0)
            if held is not None:
                held.finish(trajectories)
                if pending:  # said after each category: a run killed outright (no Ctrl-C) still leaves it
                    save_report(_partial(report, None, [], pending), held.out, plot=False)
        if held is not None:
            save_report(report, held.out)
    except BaseException:  # Ctrl-C (a cancellation here), or a bug: what ended is kept, the report incomplete
        if held is not None and pending:
            order = {t.id: i for i, t in enumerate(data.tasks)} if data is not None else None
            ended = sorted(ended, key=lambda t: order[t.task_id]) if order is not None else []
            held.finish(ended)  # the running category's lines, in entry order
            partial = _partial(report, data, ended, pending)
            partial.broken = infrastructure_failures(errors + [t.error for t in ended])
            save_report(partial, held.out, plot=False)
        raise
    finally:
        if held is not None:
            held.release()
        await close_policy(policy)
    return report


def _partial(
    report: BfclReport, data: CategoryData | None, ended: list[Trajectory], pending: Sequence[BfclCategory]
) -> BfclReport:
    """The report so far, marked incomplete: the completed categories, the entries of the one running
    (``data``) that ended, and what was not run (its other entries, the categories after it)."""
    if data is None:
        return replace(report, incomplete=True, not_started=[c.name for c in pending])
    ran = {t.task_id for t in ended}
    left = [t.id for t in data.tasks if t.id not in ran]
    return replace(report, entries=report.entries + verdicts(data, ended), incomplete=True,
                   unfinished={data.category.name: left} if left else {},
                   not_started=[c.name for c in pending if c is not data.category])  # fmt: skip


async def score_path(path: Path, *, out: Path | None = None, progress: bool = True) -> BfclReport:
    """Score result files (BFCL's format) found at ``path``: each category present, all its entries. ``out``
    is locked while scored (a run writing there is refused), not cleared: ``path`` may lie in it."""
    held = LockedOut(out) if out is not None else None
    try:
        report = await _score_path(path, progress=progress)
        if out is not None:
            save_report(report, out)
        return report
    finally:
        if held is not None:
            held.release()


async def _score_path(path: Path, *, progress: bool) -> BfclReport:
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
    return report
