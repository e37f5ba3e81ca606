"""``inftool eval ID --policy P``: run a policy on an env's tasks, summarise, write every trajectory.

Episodes that broke on infrastructure (an endpoint down, a server dead: ``Trajectory.error``) are
not the policy's score: the summary names how many and why (``broken``), and the command exits
non-zero with that line, the report written all the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inftool_env.env import ToolEnv, run_batch
from inftool_env.env.batch import PolicyFactory
from inftool_env.errors import InftoolError
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory


@dataclass
class EvalSummary:
    env_id: str
    episodes: int
    success_rate: float
    mean_reward: float
    gate_failures: dict[str, int] = field(default_factory=dict)
    truncations: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    broken: str | None = None  # one line: how many episodes broke on infrastructure, and why


def infrastructure_failures(errors: Sequence[str | None]) -> str | None:
    """``N/M episodes broke on infrastructure: CAUSE`` (the commonest cause; how many others), or None."""
    broken = [e for e in errors if e]
    if not broken:
        return None
    causes = Counter(" ".join(e.split())[:300] for e in broken)
    top, _ = causes.most_common(1)[0]
    more = f" (and {len(causes) - 1} other cause{'s' * (len(causes) > 2)})" if len(causes) > 1 else ""
    return f"{len(broken)}/{len(errors)} episodes broke on infrastructure: {top}{more}"


def summarize(env_id: str, trajectories: list[Trajectory]) -> EvalSummary:
    rewards = [t.reward.reward if t.reward else 0.0 for t in trajectories]
    gates: Counter[str] = Counter()
    for t in trajectories:
        if t.reward:
            gates.update(g for g, ok in t.reward.gates.items() if not ok)
    return EvalSummary(
        env_id=env_id,
        episodes=len(trajectories),
        success_rate=sum(r == 1.0 for r in rewards) / max(len(rewards), 1),
        mean_reward=sum(rewards) / max(len(rewards), 1),
        gate_failures=dict(gates),
        truncations=dict(Counter(t.truncation_reason or "unknown" for t in trajectories if t.truncated)),
        errors=sum(t.error is not None for t in trajectories),
        broken=infrastructure_failures([t.error for t in trajectories]),
    )


async def evaluate(
    env: ToolEnv,
    policy: PolicyFactory,
    *,
    tasks: list[Task] | None = None,
    n: int | None = None,
    seed: int = 0,
    concurrency: int = 8,
    out: Path | None = None,
    progress: bool = True,
) -> tuple[EvalSummary, list[Trajectory]]:
    """Each task once (``n`` None), or ``n`` episodes with seeded task sampling. ``out`` may hold this env's
    earlier results (replaced), not another env's (refused before any episode)."""
    if out is not None:
        _check_out(out, env.config.id)
    if tasks is not None:
        env = ToolEnv(env.config, tasks, env.servers, user=env.user, reward_fn=env.reward_fn)
    episodes: list[tuple[int, str | None]]
    if n is None:
        episodes = [(seed + i, t.id) for i, t in enumerate(env.tasks)]
    else:
        episodes = [(seed + i, None) for i in range(n)]
    trajectories = await run_batch(env, policy, episodes=episodes, concurrency=concurrency, progress=progress)
    summary = summarize(env.config.id, trajectories)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "trajectories.jsonl").open("w", encoding="utf-8") as f:
            for t in trajectories:
                f.write(t.model_dump_json() + "\n")
        (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary, trajectories


def _check_out(out: Path, env_id: str) -> None:
    try:
        held = json.loads((out / "summary.json").read_text()).get("env_id")
    except (OSError, ValueError, AttributeError):  # none, or not an eval's: nothing of another env to lose
        return
    if held is not None and held != env_id:
        raise InftoolError(f"{out} holds another env's results ({held}); pick another --out")


def format_summary(summary: EvalSummary) -> str:
    lines = [
        f"{summary.env_id}: {summary.episodes} episodes",
        f"  success rate   {summary.success_rate:.1%}",
        f"  mean reward    {summary.mean_reward:.3f}",
        f"  gate failures  {_counts(summary.gate_failures)}",
        f"  truncated      {_counts(summary.truncations)}",
        f"  broken         {summary.errors}",
    ]
    return "\n".join(lines)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
