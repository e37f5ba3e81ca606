"""What the loop measures and shows: an evaluation's cells (tool x category x error type), the
per-round metrics, the plot of reward and accuracy per round and category, and the closing
before/after table. The evaluation itself is ``inftool_env.eval.runner.evaluate``; this only reads
its trajectories."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inftool_env.synth.target import NO_TOOL
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory


def error_type(trajectory: Trajectory) -> str:
    """'' for a success; else the first gate that failed, the checker's error type, or the break."""
    reward = trajectory.reward
    if trajectory.error is not None or reward is None:
        return "broken"
    if reward.reward >= 1.0:
        return ""
    failed = [gate for gate, passed in reward.gates.items() if not passed]
    if failed:
        return f"gate:{failed[0]}"
    return reward.error_type or ("truncated" if trajectory.truncated else "wrong")


def task_tools(task: Task) -> list[str]:
    return sorted({c.name for turn in task.ground_truth for c in turn}) or [NO_TOOL]


def cell_report(trajectories: Iterable[Trajectory], tasks: dict[str, Task]) -> dict[str, Any]:
    """Per category (accuracy, mean reward), per tool x category, and the failures by error type."""
    by_cat: dict[str, list[float]] = defaultdict(list)
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in trajectories:
        task = tasks[t.task_id]
        reward = t.reward.reward if t.reward is not None else 0.0
        by_cat[task.category].append(reward)
        kind = error_type(t)
        for tool in task_tools(task):
            cells[(tool, task.category)].append(reward)
            if kind:
                errors[(tool, task.category, kind)] += 1
    return {
        "categories": {c: _stats(v) for c, v in sorted(by_cat.items())},
        "cells": [{"tool": k[0], "category": k[1], **_stats(v)} for k, v in sorted(cells.items())],
        "errors": [
            {"tool": k[0], "category": k[1], "error_type": k[2], "count": n}
            for k, n in sorted(errors.items(), key=lambda kv: -kv[1])
        ],  # fmt: skip
        "overall": _stats([r for v in by_cat.values() for r in v]),
    }


def _stats(rewards: list[float]) -> dict[str, Any]:
    n = len(rewards)
    return {"n": n, "accuracy": sum(r >= 1.0 for r in rewards) / n if n else 0.0,
            "reward": sum(rewards) / n if n else 0.0}  # fmt: skip


def train_summary(metrics_path: Path) -> dict[str, Any]:
    """A training run's reward per category (mean over its GRPO steps) and first/last step reward."""
    rows = [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()] if metrics_path.is_file() else []
    grpo = [r for r in rows if r.get("phase", "grpo") == "grpo"]
    by_cat: dict[str, list[float]] = defaultdict(list)
    for r in grpo:
        for cat, value in (r.get("reward_by_category") or {}).items():
            by_cat[cat].append(value)
    return {
        "steps": len(grpo),
        "reward_mean": sum(r["reward_mean"] for r in grpo) / len(grpo) if grpo else None,
        "reward_first": grpo[0]["reward_mean"] if grpo else None,
        "reward_last": grpo[-1]["reward_mean"] if grpo else None,
        "reward_by_category": {c: sum(v) / len(v) for c, v in sorted(by_cat.items())},
        "zero_signal_groups": sum(r.get("zero_signal_groups", 0) for r in grpo),
        "groups": sum(r.get("groups", 0) for r in grpo),
    }


# -- the closing table and the plot -------------------------------------------------------------------
def before_after(metrics: list[dict[str, Any]]) -> list[tuple[str, float | None, float | None]]:
    """(row, before, after) per held-out category and per BFCL category measured, first vs last eval."""
    evals = [m for m in metrics if m.get("kind") == "eval"]
    if not evals:
        return []
    first, last = evals[0], evals[-1]
    cats = sorted(set(first["categories"]) | set(last["categories"]))
    rows = [(c, _acc(first["categories"], c), _acc(last["categories"], c)) for c in cats]
    rows.append(("all held-out", first["overall"]["accuracy"], last["overall"]["accuracy"]))
    b0, b1 = first.get("bfcl") or {}, last.get("bfcl") or {}
    rows += [(f"BFCL {c}", b0.get(c), b1.get(c)) for c in sorted(set(b0) | set(b1))]
    return rows


def _acc(categories: dict[str, Any], name: str) -> float | None:
    return categories[name]["accuracy"] if name in categories else None


def format_table(rows: list[tuple[str, float | None, float | None]], *, title: str) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    width = max([len(r[0]) for r in rows] + [8])
    lines = [title, f"{'category':<{width}}  {'before':>8}  {'after':>8}  {'change':>8}"]
    for name, before, after in rows:
        change = "-" if before is None or after is None else f"{100 * (after - before):+.1f}"
        lines.append(f"{name:<{width}}  {pct(before):>8}  {pct(after):>8}  {change:>8}")
    return "\n".join(lines)


def format_times(seconds: dict[str, float], untimed: int = 0) -> str:
    """Where the run's time went: wall time per kind of stage (``heldout``, ``eval``, ``train``…, summed
    over rounds, in the order they first ran) and in all; an interrupted stage counts only the run that finished
    it, and ``untimed`` stages (a run folder older than this timing) are said, not counted."""
    kinds: dict[str, list[float]] = {}
    for name, spent in seconds.items():
        kinds.setdefault(name.rpartition("/")[2], []).append(spent)
    width = max([len(k) for k in kinds] + [5])
    note = f" ({untimed} finished before stages were timed, not counted)" if untimed else ""
    lines = [f"wall time of the finished stages: {_clock(sum(seconds.values()))}{note}",
             f"{'stage':<{width}}  {'time':>9}  {'runs':>4}"]  # fmt: skip
    lines += [f"{kind:<{width}}  {_clock(sum(spent)):>9}  {len(spent):>4}" for kind, spent in kinds.items()]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def plot_rounds(metrics: list[dict[str, Any]], path: Path) -> Path | None:
    """Held-out accuracy per category per evaluation (0 = before training), and training reward per
    category per round; BFCL accuracy too when measured. Needs matplotlib (skipped without)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    evals = [m for m in metrics if m.get("kind") == "eval"]
    trains = [m for m in metrics if m.get("kind") == "train"]
    panels = 3 if any(m.get("bfcl") for m in evals) else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    _lines(axes[0], [(m["round"], m["categories"]) for m in evals], "accuracy", "held-out accuracy (%)")
    axes[0].set_xlabel("round (0 = before training)")
    _lines(axes[1], [(m["round"], {c: {"reward": v} for c, v in m["reward_by_category"].items()}) for m in trains],
           "reward", "training reward (mean over steps)", scale=1.0)  # fmt: skip
    axes[1].set_xlabel("round")
    if panels == 3:
        bfcl = [(m["round"], {c: {"accuracy": v} for c, v in (m.get("bfcl") or {}).items()}) for m in evals]
        _lines(axes[2], bfcl, "accuracy", "BFCL accuracy (%) — measured only")
        axes[2].set_xlabel("round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _lines(ax: Any, points: list[tuple[int, dict[str, Any]]], key: str, title: str, scale: float = 100.0) -> None:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for x, cats in points:
        for c, v in cats.items():
            series[c].append((x, scale * v[key]))
    for c, xy in sorted(series.items()):
        ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", label=c)
    ax.set_title(title)
    ax.set_xticks(sorted({x for x, _ in points}))  # the rounds themselves (one round: not 0.96 ... 1.04)
    if series:
        ax.legend(fontsize=7)
