"""``inftool eval bfcl``: a policy through our envs on BFCL v4, scored with BFCL's semantics.

Every entry is an episode (single-turn entries one-shot on their own server, multi-turn ones on
the domain servers); its verdict is the reward's ``correct`` (gates aside, as BFCL has none). The
report has per-category accuracy, BFCL's aggregates, every entry's verdict and error type, and a
per-tool x category count of failures (what targeted regeneration reads). ``score_results``
scores results in BFCL's own file format instead, without running a policy.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inftool_env.env import ToolEnv, run_batch
from inftool_env.env.batch import PolicyFactory
from inftool_env.env.config import EnvConfig, Limits, ServerConfig, TaskSource
from inftool_env.errors import SpecError
from inftool_env.eval.bfcl_data import CATEGORIES, BfclCategory, CategoryData, load_category
from inftool_env.eval.bfcl_known import UNPASSABLE
from inftool_env.eval.bfcl_results import decode_step, decode_turns, encode, read_results, result_file
from inftool_env.policies import close_policy
from inftool_env.rewards.bfcl_ast import Verdict, check_ast, check_relevance
from inftool_env.rewards.multi_turn import check_multi_turn, replay_turns
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory

CHUNK = 64  # single-turn entries per env: each has its own server, connected per worker


@dataclass
class EntryVerdict:
    id: str
    category: str
    valid: bool
    error_type: str = ""
    errors: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # the expected tools (else the ones called)
    known_issue: str = ""  # the ground truth cannot pass BFCL's own checker, or there is none


@dataclass
class BfclReport:
    policy: str
    entries: list[EntryVerdict]
    not_run: dict[str, str]
    missing: dict[str, int] = field(default_factory=dict)  # scored results: entries with no result line

    def accuracy(self) -> dict[str, dict[str, Any]]:
        by: dict[str, list[EntryVerdict]] = defaultdict(list)
        for e in self.entries:
            by[e.category].append(e)
        return {
            c: {"accuracy": sum(e.valid for e in es) / len(es), "correct": sum(e.valid for e in es), "total": len(es),
                "known_issues": sum(bool(e.known_issue) for e in es)}
            for c, es in sorted(by.items(), key=lambda kv: list(CATEGORIES).index(kv[0]))
        }  # fmt: skip

    def aggregates(self) -> dict[str, float]:
        return bfcl_aggregates({c: (v["accuracy"], v["total"]) for c, v in self.accuracy().items()})

    def errors_by_tool(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for e in self.entries:
            if not e.valid:
                for tool in e.tools or ["(no call)"]:
                    table[tool][e.category] += 1
        return {t: dict(c) for t, c in sorted(table.items(), key=lambda kv: -sum(kv[1].values()))}

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "categories": self.accuracy(), "aggregates": self.aggregates(),
                "not_run": self.not_run, "missing": self.missing, "errors_by_tool": self.errors_by_tool(),
                "entries": [asdict(e) for e in self.entries]}  # fmt: skip


def bfcl_aggregates(scores: dict[str, tuple[float, int]]) -> dict[str, float]:
    """BFCL v4's summary scores; a category not evaluated counts as 0, as BFCL counts it."""

    def acc(c: str) -> float:
        return scores.get(c, (0.0, 0))[0]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    simple = mean([acc("simple_python"), acc("simple_java"), acc("simple_javascript")])
    non_live = mean([simple, acc("multiple"), acc("parallel"), acc("parallel_multiple")])
    live_cats = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]
    live_n = sum(scores.get(c, (0.0, 0))[1] for c in live_cats)
    live = sum(acc(c) * scores.get(c, (0.0, 0))[1] for c in live_cats) / live_n if live_n else 0.0
    irrelevance = mean([acc("irrelevance"), acc("live_irrelevance")])
    multi_turn = mean([acc(f"multi_turn_{k}") for k in ("base", "miss_func", "miss_param", "long_context")])
    web = mean([acc("web_search_base"), acc("web_search_no_snippet")])
    memory = mean([acc("memory_kv"), acc("memory_vector"), acc("memory_rec_sum")])
    agentic = mean([web, memory])
    overall = (10 * non_live + 10 * live + 10 * irrelevance + 30 * multi_turn + 40 * agentic) / 100
    return {"overall": overall, "non_live": non_live, "live": live, "irrelevance": irrelevance,
            "multi_turn": multi_turn, "agentic": agentic}  # fmt: skip


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
        called = [c.name for t in traj.turns for c in t.calls]
        out.append(_verdict(task, Verdict(valid, error_type, errors), called))
    return out


def _verdict(task: Task, verdict: Verdict, called: list[str]) -> EntryVerdict:
    ref = task.bfcl
    names = ref.tool_names if ref else {}
    expected = [names.get(c.name, c.name) for turn in task.ground_truth for c in turn]
    tools = sorted(set(expected or [names.get(n, n) for n in called]))
    known = UNPASSABLE.get(task.id, "")
    if not known and ref and ref.category == "live_relevance":
        known = "no ground truth: BFCL ships no answer for relevance entries"
    return EntryVerdict(task.id, ref.category if ref else task.category, verdict.valid, verdict.error_type or "",
                        list(verdict.errors), tools, known)  # fmt: skip


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
        outcomes = await replay_turns(data.servers, task, turns, seed=0)
        return _verdict(task, check_multi_turn(outcomes), called)
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
    try:
        for cat in categories:
            if cat.kind == "not_run":
                continue
            data = load_category(cat, limit=limit)
            if progress:
                print(f"{cat.name}: {len(data.tasks)} entries", flush=True)
            trajectories = await run_category(data, policy, format=format, concurrency=concurrency, progress=progress)
            report.entries += verdicts(data, trajectories)
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


def save_report(report: BfclReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    (out / "summary.txt").write_text(format_report(report) + "\n")
    plot_report(report, out / "accuracy.png")


# -- printing -----------------------------------------------------------------------------------------
def format_report(report: BfclReport) -> str:
    lines = [f"BFCL v4 — policy {report.policy}", f"{'category':<26}{'accuracy':>10}{'correct':>10}{'total':>8}"]
    for name, s in report.accuracy().items():
        known = f"  ({s['known_issues']} known issue{'s' * (s['known_issues'] != 1)})" if s["known_issues"] else ""
        lines.append(f"{name:<26}{s['accuracy']:>10.1%}{s['correct']:>10}{s['total']:>8}{known}")
    for name, reason in report.not_run.items():
        lines.append(f"{name:<26}{'not run':>10}  {reason}")
    for name, count in report.missing.items():
        lines.append(f"{name}: {count} entries had no result line and are not scored")
    agg = report.aggregates()
    lines.append("aggregates (BFCL v4; categories not evaluated count 0): " + ", ".join(
        f"{k} {v:.1%}" for k, v in agg.items()))  # fmt: skip
    return "\n".join(lines)


def plot_report(report: BfclReport, path: Path) -> Path | None:
    """A bar chart of per-category accuracy (needs matplotlib, the ``demo`` extra; skipped without)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    acc = report.accuracy()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(list(acc), [v["accuracy"] * 100 for v in acc.values()], color="#4c72b0")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"BFCL v4 by category — {report.policy}")
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
