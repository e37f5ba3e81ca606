"""Gated rewards: format -> schema -> execution gates, then correctness.

A correctness component counts only if every required gate passed; every gate and component is
logged either way. Components, each in [0, 1] and present only where it applies:

- ``ast``: BFCL's AST verdict on the first assistant turn (single-turn BFCL entries);
- ``calls``: where ``ast`` applies, the share of its calls that match (``bfcl_ast.calls_matched``: 1 where
  ``ast`` passes, 2 of 3 asked calls made right 0.67). Not in the default basis: with a weight it turns
  a parallel answer that is not whole into partial credit, so a training group still has a signal;
- ``relevance``: no call where none is right (irrelevance), some call where one is (relevance);
  an undecodable answer is never right;
- ``state`` / ``response``: per user turn, the replayed state equals the ground truth's, and the
  ground truth's results appear among the model's (``multi_turn``); the fraction of turns passing.

The manifest's ``reward`` table picks the gates, the basis (which components count) and optional
partial-credit weights; without weights the reward is all-or-nothing over the basis (its minimum),
which for a BFCL entry is exactly BFCL's verdict (``correct``), but for one thing: a call written as text
(outside the format's call syntax) fails the format gate, where BFCL reads it as no call at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from inftool_env.parsing.base import call_in_text
from inftool_env.rewards.bfcl_ast import Verdict, calls_matched, check_ast, check_relevance
from inftool_env.rewards.multi_turn import TurnOutcome, check_multi_turn, turn_scores
from inftool_env.tasks import Task
from inftool_env.trajectory import RewardBreakdown, Trajectory

GATES = ("format", "schema", "execution")
COMPONENTS = ("ast", "calls", "relevance", "state", "response")
DEFAULT_BASIS = ("ast", "relevance", "state", "response")  # all-or-nothing over these is BFCL's verdict
RELEVANCE = ("irrelevance", "relevance")
# The call error kinds that fail each call gate (the format gate is failed by turns, not calls).
FAILED_BY: dict[str, tuple[str, ...]] = {
    "schema": ("unknown_tool", "schema"), "execution": ("execution", "timeout", "infrastructure"),
}  # fmt: skip


@dataclass(frozen=True)
class EpisodeOutcome:
    task: Task
    trajectory: Trajectory
    turns: list[TurnOutcome] | None  # the replay; None where nothing was replayed


class RewardFn(Protocol):
    def __call__(self, outcome: EpisodeOutcome) -> RewardBreakdown: ...


class GatedReward:
    """``gates`` must pass, in order; ``basis`` names the components that count; ``weights`` give
    partial credit (a weighted mean over the basis) instead of all-or-nothing."""

    def __init__(
        self,
        gates: Sequence[str] = GATES,
        basis: Sequence[str] = DEFAULT_BASIS,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        for kind, names, known in (("gates", gates, GATES), ("components", [*basis, *(weights or {})], COMPONENTS)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown reward {kind} {unknown}; known: {', '.join(known)}")
        self.gates, self.basis = tuple(gates), tuple(basis)
        self.weights: dict[str, float] = {str(k): float(v) for k, v in (weights or {}).items()}

    def __call__(self, outcome: EpisodeOutcome) -> RewardBreakdown:
        turns = outcome.trajectory.turns
        calls = [c for t in turns for c in t.calls]
        # A call written as text (a ```json fence, tags the parser could not read) makes no call, so relevance takes it
        # for a decline: a policy learnt to write its calls so on irrelevance tasks (README, Measured).
        as_text = [t.step for t in turns if t.parse_error is None and call_in_text(t.content)]
        gates = {
            "format": all(t.parse_error is None for t in turns) and bool(turns) and not as_text,
            "schema": not any(c.error_kind in FAILED_BY["schema"] for c in calls),
            "execution": not any(c.error_kind in FAILED_BY["execution"] for c in calls),
        }
        components, verdict = correctness(outcome)
        notes = [] if verdict is None or verdict.valid else [f"{verdict.error_type}: {'; '.join(verdict.errors)}"]
        if as_text:
            notes.append(f"format: turn {as_text[0]} writes a call as text, outside the call syntax; no call was made")
        if outcome.turns is None and outcome.task.ground_truth and not outcome.task.one_shot:
            notes.append("state and response unavailable: a server cannot be replayed (live proxy)")
        scored = {k: v for k in self.basis if (v := components.get(k)) is not None}
        passed = all(gates[g] for g in self.gates)
        reward = self._combine(scored) if passed and scored else 0.0
        if outcome.trajectory.truncated:
            notes.append(f"truncated: {outcome.trajectory.truncation_reason}")
        return RewardBreakdown(
            gates=gates, components=components, reward=reward, notes=notes,
            correct=None if verdict is None else verdict.valid,
            error_type=None if verdict is None or verdict.valid else verdict.error_type,
        )  # fmt: skip

    def _combine(self, scored: dict[str, float]) -> float:
        total = sum(self.weights.get(k, 0.0) for k in scored)
        if not self.weights or total <= 0:
            return min(scored.values())
        return sum(self.weights.get(k, 0.0) * v for k, v in scored.items()) / total


def correctness(outcome: EpisodeOutcome) -> tuple[dict[str, float | None], Verdict | None]:
    """Every component that applies to the task, and the verdict they come from."""
    task, components = outcome.task, dict.fromkeys(COMPONENTS)
    verdict = None
    if task.category in RELEVANCE:
        verdict = check_relevance(decoded_calls(task, outcome.trajectory), task.category)
        components["relevance"] = float(verdict.valid)
    elif task.bfcl is not None and task.one_shot:
        answer = decoded_calls(task, outcome.trajectory)
        ref = task.bfcl
        if answer is None:
            verdict = Verdict(False, "ast_decoder:decoder_failed", ["The answer could not be decoded."])
        else:
            verdict = check_ast(ref.docs, answer, ref.possible, ref.category, language=ref.language)
        components["ast"] = float(verdict.valid)
        components["calls"] = (
            1.0 if verdict.valid else 0.0 if answer is None
            else calls_matched(ref.docs, answer, ref.possible, language=ref.language)
        )  # fmt: skip
    if outcome.turns is not None:
        components["state"], components["response"] = turn_scores(outcome.turns)
        verdict = check_multi_turn(outcome.turns) if verdict is None else verdict
        if task.bfcl is not None and outcome.trajectory.truncated:  # BFCL fails a force-terminated entry
            reason = outcome.trajectory.truncation_reason
            verdict = Verdict(False, "multi_turn:force_terminated", [f"The episode was cut short ({reason})."])
    return components, verdict


def decoded_calls(task: Task, trajectory: Trajectory) -> list[dict[str, dict[str, object]]] | None:
    """Every call of the episode in BFCL's decoded form and names; None if a turn was undecodable."""
    if any(t.parse_error is not None for t in trajectory.turns):
        return None
    names = task.bfcl.tool_names if task.bfcl else {}
    return [{names.get(c.name, c.name): dict(c.arguments)} for t in trajectory.turns for c in t.calls]
