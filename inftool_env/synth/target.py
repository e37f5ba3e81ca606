"""Gap-targeted regeneration: where the next batch of tasks goes.

From an evaluation (an ``inftool eval`` out dir or its trajectories, an ``inftool eval bfcl``
report.json, an evolve round's report.json) or from training rollouts (per-task group success rates:
the paper's easy/hard split), each (tool, category) cell gets a failure rate. The batch is then split
three ways: ``irrelevance_share`` to irrelevance (so the policy keeps its restraint), ``keep_share``
spread evenly over every cell seen (nothing is forgotten), the rest in proportion to each cell's
failures. The hard tasks (success below one half) become parents of targeted variants. Only the
categories the run will make are planned: a report's others (BFCL's relevance, long_context, …) are
named in ``ignored``, not given tasks that synthesis would then drop.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from inftool_env.synth.categories import CATEGORIES, parse_categories
from inftool_env.synth.world import SynthError
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory

ANY_TOOL = "*"
NO_TOOL = "(no tool)"  # an evolve report's cell of tasks that call nothing (irrelevance)


class Cell(BaseModel):
    tool: str
    category: str
    count: int
    failure_rate: float = 0.0
    seen: int = 0


class TargetPlan(BaseModel):
    n: int
    keep_share: float
    irrelevance_share: float
    allocation: list[Cell] = Field(default_factory=list)
    hard_tasks: list[Task] = Field(default_factory=list)
    ignored: dict[str, str] = Field(default_factory=dict, description="a reported category -> why it gets no tasks")

    @property
    def cells(self) -> dict[tuple[str, str], int]:
        return {(c.tool, c.category): c.count for c in self.allocation if c.count}

    def describe(self) -> str:
        rows = sorted(self.allocation, key=lambda c: (-c.count, c.tool, c.category))
        width = max([len(c.tool) for c in rows] + [4])
        lines = [f"{'tool':<{width}}  {'category':<17}  {'fail':>5}  {'seen':>4}  {'next':>4}"]
        lines += [f"{c.tool:<{width}}  {c.category:<17}  {c.failure_rate:>5.0%}  {c.seen:>4}  {c.count:>4}"
                  for c in rows if c.count or c.seen]  # fmt: skip
        total = sum(c.count for c in rows)
        lines.append(
            f"{len(self.hard_tasks)} hard tasks to vary; keep {self.keep_share:.0%}, "
            f"irrelevance {self.irrelevance_share:.0%}, {total} tasks in all"
        )
        lines += [f"not targeted: {category} ({why})" for category, why in sorted(self.ignored.items())]
        return "\n".join(lines)


Report = str | Path | list[Trajectory] | dict[str, float]


def success_rates(report: Report) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """(per task id, per (tool, category) cell) success rates from any kind of report; a report of
    categories alone gives cells of any tool."""
    if isinstance(report, dict):
        return {str(k): float(v) for k, v in report.items()}, {}
    if isinstance(report, list):
        return _from_trajectories(report), {}
    path = Path(report)
    if path.is_dir():
        for name in ("trajectories.jsonl", "report.json"):
            if (path / name).is_file():
                return success_rates(path / name)
        raise SynthError(f"{path}: no trajectories.jsonl or report.json (an `inftool eval` out dir)")
    if not path.is_file():
        raise SynthError(f"no report at {path}")
    if path.suffix == ".jsonl":
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return _from_trajectories([Trajectory.model_validate_json(ln) for ln in lines]), {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "cells" in data:  # an evolve round's report: (tool, category) cells
        return {}, {(ANY_TOOL if c["tool"] == NO_TOOL else c["tool"], c["category"]): float(c["accuracy"])
                    for c in data["cells"]}  # fmt: skip
    if isinstance(data, dict) and "categories" in data and "entries" in data:  # BFCL's: categories only
        from inftool_env.eval.bfcl_data import CATEGORIES as BFCL

        by: dict[str, list[float]] = defaultdict(list)
        for name, row in data["categories"].items():
            if name in BFCL:
                by[BFCL[name].task_category].append(float(row["accuracy"]))
        return {}, {(ANY_TOOL, c): sum(v) / len(v) for c, v in by.items()}
    if isinstance(data, dict) and all(isinstance(v, int | float) for v in data.values()):
        return {str(k): float(v) for k, v in data.items()}, {}
    raise SynthError(f"{path}: expected trajectories, a BFCL or evolve report, or {{task_id: success rate}}")


def _from_trajectories(trajectories: list[Trajectory]) -> dict[str, float]:
    by: dict[str, list[float]] = defaultdict(list)
    for t in trajectories:
        by[t.task_id].append(1.0 if t.reward is not None and t.reward.reward == 1.0 else 0.0)
    return {k: sum(v) / len(v) for k, v in by.items()}


def cell_of(task: Task) -> tuple[str, str]:
    calls = [c.name for turn in task.ground_truth for c in turn]
    return (calls[0] if calls else ANY_TOOL), task.category


def plan_targets(
    report: Report,
    tasks: list[Task],
    *,
    n: int = 200,
    keep_share: float = 0.3,
    irrelevance_share: float = 0.15,
    seed: int = 0,
    categories: Sequence[str] | None = None,
) -> TargetPlan:
    """``categories``: those the run will make (default: every one synthesis has); the rest of the report
    is named in the plan's ``ignored``, and without irrelevance its share goes to the failures."""
    if not 0 <= keep_share <= 1 or not 0 <= irrelevance_share <= 1 or keep_share + irrelevance_share > 1:
        raise SynthError("keep_share and irrelevance_share must be within [0, 1] and sum to at most 1")
    made = set(CATEGORIES if categories is None else parse_categories(list(categories)))
    per_task, per_cell = success_rates(report)
    stats: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task in tasks:
        if task.id in per_task:
            stats[cell_of(task)].append(per_task[task.id])
    for cell, rate in per_cell.items():
        stats[cell].append(rate)
    ignored = {c: "not a category synthesis makes" if c not in CATEGORIES else "not among this run's categories"
               for _, c in stats if c not in made}  # fmt: skip
    stats = defaultdict(list, {cell: v for cell, v in stats.items() if cell[1] in made})
    if not stats:
        why = f" (only {', '.join(sorted(ignored))}, which are not made)" if ignored else ""
        raise SynthError(f"the report shares no task with the tasks given (nothing to target){why}")
    if "irrelevance" not in made:
        irrelevance_share = 0.0
    failure = {cell: 1 - sum(v) / len(v) for cell, v in stats.items()}
    counts: dict[tuple[str, str], float] = defaultdict(float)
    if irrelevance_share:
        counts[(ANY_TOOL, "irrelevance")] += irrelevance_share * n
    for cell in stats:
        counts[cell] += keep_share * n / len(stats)
    mass = sum(failure.values())
    rest = (1 - keep_share - irrelevance_share) * n
    for cell, rate in failure.items():
        counts[cell] += rest * (rate / mass if mass else 1 / len(failure))
    allocation = _round(counts, n)
    cells = [
        Cell(tool=t, category=c, count=allocation.get((t, c), 0), failure_rate=round(failure.get((t, c), 0.0), 4),
             seen=len(stats.get((t, c), [])))
        for t, c in sorted(set(allocation) | set(stats))
    ]  # fmt: skip
    hard = sorted((t for t in tasks if per_task.get(t.id, 1.0) < 0.5), key=lambda t: (per_task[t.id], t.id))
    return TargetPlan(n=n, keep_share=keep_share, irrelevance_share=irrelevance_share, allocation=cells,
                      hard_tasks=hard, ignored=ignored)  # fmt: skip


def _round(counts: dict[tuple[str, str], float], n: int) -> dict[tuple[str, str], int]:
    """Whole counts summing to ``n`` (largest remainders first)."""
    floors = {k: int(v) for k, v in counts.items()}
    left = n - sum(floors.values())
    for key in sorted(counts, key=lambda k: -(counts[k] - floors[k]))[: max(left, 0)]:
        floors[key] += 1
    return floors


def valid_category(name: str) -> bool:
    return name in CATEGORIES


def describe_cells(cells: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    return [{"tool": t, "category": c, "count": k} for (t, c), k in sorted(cells.items())]
