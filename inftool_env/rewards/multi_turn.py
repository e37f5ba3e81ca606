"""Multi-turn correctness the way BFCL judges it, executed on our compiled MCP servers.

The model's calls (grouped by user turn, then by assistant step) and the ground truth's are each
replayed on fresh state — one new backend instance per server, never a shared or cached one —
through the servers' own call path (argument validation, backend, result shaping). After every
user turn whose ground truth makes calls:

- state: every server's public state equals the ground truth's;
- response: the ground truth's results of that turn are an unordered sub-multiset of all the
  model's results so far, and the model made at least one call that turn.

Replaying rather than trusting the live episode is what BFCL's checker does too; it also makes
the check transport-independent (an episode run over stdio or HTTP is replayed in-process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inftool_env.mcp.server import CompiledServer
from inftool_env.rewards.bfcl_ast import OK, Verdict
from inftool_env.tasks import Task, ToolCall
from inftool_env.trajectory import Trajectory

Steps = list[list[ToolCall]]  # one user turn: the calls of each assistant step


@dataclass(frozen=True)
class TurnOutcome:
    steps: Steps
    results: list[str]
    truth_calls: int
    truth_results: list[str]
    state: dict[str, Any]
    truth_state: dict[str, Any]

    @property
    def responded(self) -> bool:
        """BFCL's "empty turn" test: no step, or a single step with no call."""
        return not (not self.steps or (len(self.steps) == 1 and not self.steps[0]))

    @property
    def state_ok(self) -> bool:
        return all(self.state.get(name) == expected for name, expected in self.truth_state.items())

    def missing(self, results_so_far: Sequence[str]) -> list[str]:
        pool = list(results_so_far)
        missing = []
        for item in self.truth_results:
            if item in pool:
                pool.remove(item)
            else:
                missing.append(item)
        return missing


def is_replayable(servers: Mapping[str, CompiledServer]) -> bool:
    """A backend that forwards to a live system (proxy) must not be called again by a checker."""
    return all(getattr(s.backend, "replayable", True) for s in servers.values())


def steps_by_turn(trajectory: Trajectory) -> list[Steps]:
    """The trajectory's calls per user turn: an assistant reply without calls ends a turn."""
    turns: list[Steps] = [[]]
    for record in trajectory.turns:
        if record.calls:
            turns[-1].append([ToolCall(name=c.name, arguments=c.arguments) for c in record.calls])
        elif record.parse_error is None:
            turns.append([])
    return turns


async def replay_turns(
    servers: Mapping[str, CompiledServer], task: Task, model: Sequence[Steps], *, seed: int
) -> list[TurnOutcome]:
    """Both sides on fresh state with the episode's seed and the task's initial state."""
    names = task.servers or list(servers)
    owner = {tool.name: n for n in names for tool in servers[n].suite.tools}
    model_states = _fresh(servers, names, task, seed)
    truth_states = _fresh(servers, names, task, seed)
    outcomes = []
    for k in range(max(len(task.turns), len(task.ground_truth))):
        steps = list(model[k]) if k < len(model) else []
        truth = task.ground_truth[k] if k < len(task.ground_truth) else []
        results = [await _run(servers, owner, model_states, call) for step in steps for call in step]
        truth_results = [await _run(servers, owner, truth_states, call) for call in truth]
        # Only turns whose ground truth calls something are checked: the others skip the snapshots.
        state, truth_state = (_snapshot(servers, model_states), _snapshot(servers, truth_states)) if truth else ({}, {})
        outcomes.append(TurnOutcome(steps, results, len(truth), truth_results, state, truth_state))
    return outcomes


def check_multi_turn(outcomes: Sequence[TurnOutcome]) -> Verdict:
    """BFCL's verdict: the first failing turn decides, in BFCL's order of checks."""
    so_far: list[str] = []
    for k, turn in enumerate(outcomes):
        so_far.extend(turn.results)
        if not turn.truth_calls:
            continue
        if not turn.responded:
            return Verdict(False, "multi_turn:empty_turn_model_response", [f"Turn {k}: no call."])
        if not turn.state_ok:
            differ = sorted(n for n, s in turn.truth_state.items() if turn.state.get(n) != s)
            return Verdict(False, "multi_turn:instance_state_mismatch", [f"Turn {k}: state of {differ} differs."])
        missing = turn.missing(so_far)
        if missing:
            return Verdict(False, "multi_turn:execution_response_mismatch", [f"Turn {k}: missing results {missing}."])
    return OK


def turn_scores(outcomes: Sequence[TurnOutcome]) -> tuple[float | None, float | None]:
    """(state, response) as the fraction of checked turns that pass; None when no turn is checked."""
    checked = [k for k, t in enumerate(outcomes) if t.truth_calls]
    if not checked:
        return None, None
    so_far: list[str] = []
    response_ok = 0
    for k, turn in enumerate(outcomes):
        so_far.extend(turn.results)
        if k in checked and turn.responded and not turn.missing(so_far):
            response_ok += 1
    state_ok = sum(outcomes[k].state_ok for k in checked)
    return state_ok / len(checked), response_ok / len(checked)


def _fresh(servers: Mapping[str, CompiledServer], names: list[str], task: Task, seed: int) -> dict[str, Any]:
    return {n: servers[n].backend.new_state(seed=seed, initial=task.initial_for(n)) for n in names}


def _snapshot(servers: Mapping[str, CompiledServer], states: dict[str, Any]) -> dict[str, Any]:
    return {n: servers[n].backend.snapshot(state) for n, state in states.items()}


async def _run(
    servers: Mapping[str, CompiledServer], owner: dict[str, str], states: dict[str, Any], call: ToolCall
) -> str:
    server = owner.get(call.name)
    if server is None:
        return f"Unknown tool {call.name!r}."
    result = await servers[server].call(call.name, call.arguments, states[server])
    return "\n".join(getattr(block, "text", "") for block in result.content)
