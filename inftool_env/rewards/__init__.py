"""Gated rewards: format -> schema -> execution gates, then correctness.

A later component counts only if every earlier gate passed; every component is logged either way.
This is the environment's reward hook. Correctness here is state match against the ground truth
replayed on fresh state, and a provisional call match (each ground-truth call made, with those
argument values) so that a read-only task cannot be won by calling nothing. The BFCL-exact AST and
response checks are the rewards work still to come.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inftool_env.tasks import Task
from inftool_env.trajectory import RewardBreakdown, Trajectory

GATES = ("format", "schema", "execution")


@dataclass(frozen=True)
class EpisodeOutcome:
    task: Task
    trajectory: Trajectory
    final_state: dict[str, Any] | None  # per server, None where the transport cannot show it
    expected_state: dict[str, Any] | None  # the ground truth replayed on fresh state


class RewardFn(Protocol):
    def __call__(self, outcome: EpisodeOutcome) -> RewardBreakdown: ...


class GatedReward:
    """``gates``: the gates that must pass, in order (the manifest's ``reward.gates``)."""

    def __init__(self, gates: Sequence[str] = GATES) -> None:
        unknown = [g for g in gates if g not in GATES]
        if unknown:
            raise ValueError(f"unknown reward gates {unknown}; known: {', '.join(GATES)}")
        self.gates = tuple(gates)

    def __call__(self, outcome: EpisodeOutcome) -> RewardBreakdown:
        turns = outcome.trajectory.turns
        calls = [c for t in turns for c in t.calls]
        gates = {
            "format": all(t.parse_error is None for t in turns) and bool(turns),
            "schema": not any(c.error_kind in ("unknown_tool", "schema") for c in calls),
            "execution": not any(c.error_kind in ("execution", "timeout", "infrastructure") for c in calls),
        }
        components: dict[str, float | None] = {"state": None, "calls": None}
        notes = []
        truth = [c for turn in outcome.task.ground_truth for c in turn]
        if truth:
            components["calls"] = _calls_matched(truth, calls)
        if outcome.task.category == "irrelevance":  # no call is the right answer
            components["no_call"] = float(not calls)
        if outcome.expected_state is not None and outcome.final_state is not None:
            components["state"] = float(outcome.final_state == outcome.expected_state)
        elif outcome.task.ground_truth:
            notes.append("state match unavailable: server state is not visible over this transport")
        passed = all(gates[g] for g in self.gates)
        scored = [v for v in components.values() if v is not None]
        reward = min(scored) if passed and scored else 0.0
        if outcome.trajectory.truncated:
            notes.append(f"truncated: {outcome.trajectory.truncation_reason}")
        return RewardBreakdown(gates=gates, components=components, reward=reward, notes=notes)


def _calls_matched(truth: list[Any], made: list[Any]) -> float:
    """Fraction of ground-truth calls matched one-to-one by a successful call with the same name
    whose arguments include the ground truth's values."""
    pool = [c for c in made if not c.is_error]
    hits = 0
    for want in truth:
        for i, got in enumerate(pool):
            if got.name == want.name and all(got.arguments.get(k) == v for k, v in want.arguments.items()):
                hits += 1
                del pool[i]
                break
    return hits / len(truth)
