"""What a rollout runs and what it leaves: the episodes planned, each one's record, the JSONL it streams to.

Every planned episode ends as exactly one record, written the moment it ends: a broken episode (the
env raised, a worker died) is a trajectory with its error, never a missing line.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from inftool_env.errors import InftoolError, os_reason
from inftool_env.trajectory import Trajectory

# truncation_reason of an episode lost with its worker (the Ray actor died while it ran)
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class Episode:
    """One planned episode: its place in the plan, its seed, and its task (None: drawn with the seed)."""

    index: int
    seed: int
    task_id: str | None = None


def plan_episodes(n: int, *, seed: int = 0, task_ids: list[str] | None = None) -> list[Episode]:
    """``n`` episodes with seeds ``seed``…``seed+n-1``; with ``task_ids``, each task in turn."""
    if n < 1:
        raise InftoolError(f"--n: expected at least 1 episode, not {n}")
    tasks: list[str | None] = list(task_ids) if task_ids else [None]
    return [Episode(i, seed + i, tasks[i % len(tasks)]) for i in range(n)]


@dataclass(frozen=True)
class Finished:
    """An episode's end as it comes back from a worker."""

    index: int
    worker: str
    trajectory: Trajectory
    episode_id: str | None = None  # the key the servers held this episode's state under

    def line(self) -> str:
        """The JSONL line: the trajectory's own fields, plus where it ran under ``rollout``."""
        record: dict[str, Any] = {"rollout": {"index": self.index, "worker": self.worker,
                                              "episode_id": self.episode_id}}  # fmt: skip
        record.update(self.trajectory.model_dump(mode="json"))
        # ASCII escapes: a lone surrogate in a model's text stays writable (as \udXXX) instead of failing.
        return json.dumps(record)


def broken(env_id: str, episode: Episode, reason: str, error: str) -> Trajectory:
    """The trajectory of an episode that could not run to its end (nothing of it came back)."""
    return Trajectory(env_id=env_id, task_id=episode.task_id or "?", seed=episode.seed, truncated=True,
                      truncation_reason=reason, error=error)  # fmt: skip


class JsonlSink:
    """Appends each record as it arrives, flushed, so the file is readable (and tail-able) mid-run.

    ``start=False`` only checks that ``path`` can be written, emptying nothing: an earlier run's file is
    replaced at ``start()``, once the run is sure to begin (a file this check created goes if it never does)."""

    def __init__(self, path: Path | None, *, start: bool = True) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._created = False  # by the check, and still empty
        if path is not None and not start:
            existed = path.exists()
            self._open("a").close()
            self._created = not existed
        elif path is not None:
            self._file = self._open("w")

    def _open(self, mode: str) -> IO[str]:
        assert self.path is not None  # noqa: S101 - callers check
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self.path.open(mode, encoding="utf-8")
        except OSError as exc:
            raise InftoolError(f"--out {self.path}: cannot write: {os_reason(exc)}") from None

    def start(self) -> None:
        """Empty the file (an earlier run's lines go) and write from here on."""
        if self.path is not None and self._file is None:
            self._file, self._created = self._open("w"), False

    def write(self, finished: Finished) -> None:
        if self._file is None:
            return
        try:
            line = finished.line()
        except (ValueError, TypeError) as exc:  # a trajectory JSON cannot hold: its line says so instead
            t, error = finished.trajectory, f"trajectory not writable as JSON: {exc}"
            stub = Trajectory(env_id=t.env_id, task_id=t.task_id, seed=t.seed, truncated=True,
                              truncation_reason=t.truncation_reason, error=error)  # fmt: skip
            line = Finished(finished.index, finished.worker, stub, finished.episode_id).line()
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._created and self.path is not None:  # never started: leave no empty file behind
            self.path.unlink(missing_ok=True)
            self._created = False


@dataclass(frozen=True)
class RolloutSummary:
    env_id: str
    where: str  # "local asyncio", "2 Ray workers", …
    episodes: int
    reward_mean: float
    success_rate: float
    errors: dict[str, int]  # by kind (the truncation reason of each broken episode)
    wall_s: float
    startup_s: float | None = None  # of wall_s: starting the Ray cluster and workers

    @property
    def broken(self) -> int:
        return sum(self.errors.values())

    def table(self, out: Path | None = None) -> str:
        rate = self.episodes / self.wall_s if self.wall_s > 0 else 0.0
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        wall = f"{self.wall_s:.1f} s" + (f" ({self.startup_s:.1f} s starting workers)" if self.startup_s else "")
        rows = [
            ("episodes", str(self.episodes)),
            ("reward mean", f"{self.reward_mean:.3f}"),
            ("success", f"{self.success_rate:.1%}"),
            ("errors", errors),
            ("wall time", wall),
            ("episodes/s", f"{rate:.2f}"),
        ]
        if out is not None:
            rows.append(("trajectories", str(out)))
        return "\n".join([f"{self.env_id} on {self.where}:", *(f"  {k:<14} {v}" for k, v in rows)])


class Tally:
    """The closing table's numbers, added up as episodes end (the trajectories themselves are not kept)."""

    def __init__(self) -> None:
        self.episodes, self.reward_sum, self.successes = 0, 0.0, 0
        self.errors: Counter[str] = Counter()

    def add(self, finished: Finished) -> None:
        trajectory = finished.trajectory
        reward = trajectory.reward.reward if trajectory.reward else 0.0
        self.episodes += 1
        self.reward_sum += reward
        self.successes += reward == 1.0
        if trajectory.error is not None:
            self.errors[trajectory.truncation_reason or "error"] += 1

    def summary(self, env_id: str, where: str, wall_s: float, startup_s: float | None = None) -> RolloutSummary:
        count = max(self.episodes, 1)
        return RolloutSummary(env_id=env_id, where=where, episodes=self.episodes, reward_mean=self.reward_sum / count,
                              success_rate=self.successes / count, errors=dict(self.errors), wall_s=wall_s,
                              startup_s=startup_s)  # fmt: skip
