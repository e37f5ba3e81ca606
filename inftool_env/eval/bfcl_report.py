"""The BFCL evaluation report: each entry's verdict, per-category accuracy, BFCL's V4 aggregates, the
per-tool x category failure table (what targeted regeneration reads), and its table, JSON and plot."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inftool_env.eval.bfcl_data import CATEGORIES


@dataclass
class EntryVerdict:
    id: str
    category: str
    valid: bool
    error_type: str = ""
    errors: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # the expected tools (else the ones called)
    known_issue: str = ""  # the ground truth cannot pass BFCL's own checker, or there is none
    cut: bool = False  # a reply ran into the policy's token limit (max_tokens)
    # A reply wrote a call as text the format does not read (a fenced JSON call, leftover tags): BFCL sees
    # no call, so on irrelevance it passes as a decline. Counted so such passes are not taken for declines.
    call_as_text: bool = False


@dataclass
class BfclReport:
    policy: str
    entries: list[EntryVerdict]
    not_run: dict[str, str]
    missing: dict[str, int] = field(default_factory=dict)  # scored results: entries with no result line
    broken: str | None = None  # one line: how many episodes broke on infrastructure, and why
    # An interrupted run's report (Ctrl-C): ``entries`` are what finished, these were not run.
    incomplete: bool = False
    unfinished: dict[str, list[str]] = field(default_factory=dict)  # the category cut short: its entries not run
    not_started: list[str] = field(default_factory=list)  # categories not begun

    def accuracy(self) -> dict[str, dict[str, Any]]:
        by: dict[str, list[EntryVerdict]] = defaultdict(list)
        for e in self.entries:
            by[e.category].append(e)
        return {
            c: {"accuracy": sum(e.valid for e in es) / len(es), "correct": sum(e.valid for e in es), "total": len(es),
                "known_issues": sum(bool(e.known_issue) for e in es),
                "failed_cut": sum(e.cut and not e.valid for e in es),
                "call_as_text": sum(e.call_as_text for e in es)}
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
                "not_run": self.not_run, "missing": self.missing, "broken": self.broken,
                "incomplete": self.incomplete, "unfinished": self.unfinished, "not_started": self.not_started,
                "errors_by_tool": self.errors_by_tool(),
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


def save_report(report: BfclReport, out: Path, *, plot: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    (out / "summary.txt").write_text(format_report(report) + "\n")
    if plot:
        plot_report(report, out / "accuracy.png")


def not_run_text(unfinished: dict[str, list[str]], not_started: list[str]) -> str:
    """What an interrupted run did not run, e.g. "2 entries of irrelevance (irrelevance_1, irrelevance_2),
    all of multiple"."""
    parts = []
    for name, ids in unfinished.items():
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        parts.append(f"{len(ids)} entr{'y' if len(ids) == 1 else 'ies'} of {name} ({shown})")
    parts += [f"all of {name}" for name in not_started]
    return ", ".join(parts) or "nothing"


def interrupted_line(out: Path) -> str | None:
    """After Ctrl-C: how many entries the interrupted run kept, where, and what it did not run (read from
    the report it left, so the line says what is on disk)."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not report.get("incomplete"):
        return None
    left = not_run_text(report.get("unfinished") or {}, report.get("not_started") or [])
    finished = len(report.get("entries") or [])
    return (f"inftool: interrupted: {finished} entries finished, kept in {out / 'results'} "
            f"({out / 'report.json'} marked incomplete; not run: {left})")  # fmt: skip


# -- printing -----------------------------------------------------------------------------------------
def format_report(report: BfclReport) -> str:
    lines = [f"BFCL v4 — policy {report.policy}"]
    if report.incomplete:
        lines.append(f"INCOMPLETE (interrupted); not run: {not_run_text(report.unfinished, report.not_started)}")
    lines.append(f"{'category':<26}{'accuracy':>10}{'correct':>10}{'total':>8}")
    for name, s in report.accuracy().items():
        known = f"  ({s['known_issues']} known issue{'s' * (s['known_issues'] != 1)})" if s["known_issues"] else ""
        cut = f"  ({s['failed_cut']} failed with a reply cut at the token limit)" if s["failed_cut"] else ""
        n = s["call_as_text"]
        as_text = f"  ({n} with a call written as text, which makes no call)" if n else ""
        lines.append(f"{name:<26}{s['accuracy']:>10.1%}{s['correct']:>10}{s['total']:>8}{known}{cut}{as_text}")
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
