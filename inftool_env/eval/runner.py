"""``inftool eval ID --policy P``: run a policy on an env's tasks, summarise, write every trajectory.

Episodes that broke on infrastructure (an endpoint down, a server dead: ``Trajectory.error``) are
not the policy's score: the summary names how many and why (``broken``), and the command exits
non-zero with that line, the report written all the same.

``out`` is made and held before any episode (a path that cannot be written fails at once; a lock file
with this process's pid refuses a second eval into it), and each trajectory is appended to
``trajectories.jsonl`` the moment its episode ends: an interrupted run keeps what finished, with a
``summary.json`` of those episodes marked ``incomplete``. A finished run rewrites the file in episode order.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from inftool_env.env import ToolEnv, run_batch
from inftool_env.env.batch import PolicyFactory
from inftool_env.errors import InftoolError
from inftool_env.eval.bfcl_known import known_issue
from inftool_env.rewards import DEFAULT_BASIS, GATES, RELEVANCE
from inftool_env.rewards.multi_turn import is_replayable
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory

LOCK = ".eval.lock"  # in ``out`` while an eval writes there: the pid of its process


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
    # Why the episodes that did not break scored below 1: the first thing that failed, counted.
    unsolved: dict[str, int] = field(default_factory=dict)
    # BFCL entries run and not passed whose own data makes them unpassable (inftool_env/eval/bfcl_known.py).
    known_issues: dict[str, str] = field(default_factory=dict)
    planned: int | None = None  # episodes the run was to play
    incomplete: bool = False  # interrupted: ``episodes`` of ``planned`` finished


# Parts of an error's text that differ between episodes of one cause: durations, addresses.
_VARYING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|seconds?)\b|\b0x[0-9a-fA-F]+\b")


def infrastructure_failures(errors: Sequence[str | None]) -> str | None:
    """``N/M episodes broke on infrastructure: CAUSE`` (the commonest cause, one of its texts; how many
    others), or None. Texts that differ only in a duration or an address are one cause."""
    broken = [" ".join(e.split())[:300] for e in errors if e]
    if not broken:
        return None
    causes: dict[str, list[str]] = {}
    for text in broken:
        causes.setdefault(_VARYING.sub("#", text), []).append(text)
    texts = max(causes.values(), key=len)
    more = f" (and {len(causes) - 1} other cause{'s' * (len(causes) > 2)})" if len(causes) > 1 else ""
    return f"{len(broken)}/{len(errors)} episodes broke on infrastructure: {texts[0]}{more}"


def summarize(
    env_id: str,
    trajectories: list[Trajectory],
    *,
    tasks: Mapping[str, Task] | None = None,
    gates: Sequence[str] = GATES,
    basis: Sequence[str] = DEFAULT_BASIS,
) -> EvalSummary:
    """The run's numbers. ``tasks`` (by id), ``gates`` and ``basis`` (the env's reward's) let it say why
    episodes failed and which were BFCL entries no policy can pass."""
    tasks = tasks or {}
    rewards = [t.reward.reward if t.reward else 0.0 for t in trajectories]
    gate_failures: Counter[str] = Counter()
    for t in trajectories:
        if t.reward:
            gate_failures.update(g for g, ok in t.reward.gates.items() if not ok)
    failed = [(t, tasks.get(t.task_id)) for t, r in zip(trajectories, rewards, strict=True) if r != 1.0]
    unsolved = Counter(_why_unsolved(t, task, gates, basis) for t, task in failed if t.error is None)
    known = {t.task_id: why for t, task in failed if task is not None and (why := known_issue(task))}
    return EvalSummary(
        env_id=env_id,
        episodes=len(trajectories),
        success_rate=sum(r == 1.0 for r in rewards) / max(len(rewards), 1),
        mean_reward=sum(rewards) / max(len(rewards), 1),
        gate_failures=dict(gate_failures),
        truncations=dict(Counter(t.truncation_reason or "unknown" for t in trajectories if t.truncated)),
        errors=sum(t.error is not None for t in trajectories),
        broken=infrastructure_failures([t.error for t in trajectories]),
        unsolved=dict(unsolved),
        known_issues=known,
    )


def _why_unsolved(t: Trajectory, task: Task | None, gates: Sequence[str], basis: Sequence[str]) -> str:
    """The first thing that kept an episode below 1, read from its reward: a required gate, no call at
    all where one was due, nothing to score, else the first component of the basis below 1."""
    reward = t.reward
    if reward is None:
        return "not scored"
    failed_gate = next((g for g in gates if reward.gates.get(g) is False), None)
    if failed_gate is not None:
        return f"{failed_gate} gate"
    scored = {k: v for k in basis if (v := reward.components.get(k)) is not None}
    if not scored:
        return "nothing to score"
    if not any(c for turn in t.turns for c in turn.calls) and (task is None or task.category != "irrelevance"):
        return "no call made"
    return next((f"{k} below 1" for k, v in scored.items() if v < 1), "partial credit")


def task_warnings(env: ToolEnv, shown: int = 3) -> list[str]:
    """WARN lines for the env's tasks that cannot be passed as it scores them, said before a run (else they
    run silently at 0%): ground truth calling a tool the env does not offer the task (another env's task
    file), and tasks nothing in the reward's basis applies to (``rewards.correctness``: ``relevance`` for
    (ir)relevance tasks, ``ast`` for one-shot tasks with a ``bfcl`` reference, ``state`` and ``response``
    for other tasks with ground-truth calls on servers that can be replayed)."""
    offered = {name: {t.name for t in server.suite.tools} for name, server in env.servers.items()}
    absent: list[str] = []  # "task (tools)": ground truth calling tools the env does not have
    excluded: list[str] = []  # … tools the task's own excluded_tools withholds
    unscorable: dict[str, list[str]] = {}
    basis = getattr(env.reward_fn, "basis", None)  # a reward of the caller's own: its rules are not known here
    for task in env.tasks:
        names = [n for n in task.servers or offered if n in offered]
        served = set().union(*(offered[n] for n in names))
        called = {c.name for turn in task.ground_truth for c in turn}
        if lacking := sorted(called - served):
            absent.append(f"{task.id} ({', '.join(lacking)})")
        if withheld := sorted(called & served & set(task.excluded_tools)):
            excluded.append(f"{task.id} ({', '.join(withheld)})")
        if basis is not None and (why := _unscorable(task, {n: env.servers[n] for n in names}, basis)):
            unscorable.setdefault(why, []).append(task.id)
    schema = "; a call to one fails the schema gate" if "schema" in getattr(env.reward_fn, "gates", ()) else ""
    lines = []
    if absent:
        lines.append(f"WARN  {_whose(len(absent))} ground truth calls tools {env.config.id} does not have "
                     f"(another env's tasks?){schema}: {_few(absent, shown)}")  # fmt: skip
    if excluded:
        lines.append(f"WARN  {_whose(len(excluded))} ground truth calls tools their own "
                     f"excluded_tools lists{schema}: {_few(excluded, shown)}")  # fmt: skip
    for why, ids in unscorable.items():
        lines.append(f"WARN  {_many(len(ids), 'task')} can only score 0, whatever the policy: {why}: "
                     f"{_few(ids, shown)}")  # fmt: skip
    return lines


def _unscorable(task: Task, servers: Mapping[str, Any], basis: Sequence[str]) -> str | None:
    """Why no component of ``basis`` can be scored on ``task`` (``rewards.correctness``), or None."""
    applies = set()
    if task.category in RELEVANCE:
        applies.add("relevance")
    elif task.bfcl is not None and task.one_shot:
        applies |= {"ast", "calls"}
    replayed = any(task.ground_truth) and not task.one_shot and is_replayable(servers)
    if replayed:
        applies |= {"state", "response"}
    if applies & set(basis):
        return None
    if applies:
        return f"only {', '.join(sorted(applies))} could score them, which the reward's basis leaves out"
    if task.one_shot and task.ground_truth:
        return "one_shot without a bfcl reference (the AST check needs one; a one-shot episode is not replayed)"
    if not any(task.ground_truth):
        return "no ground-truth calls, and not an irrelevance or relevance task"
    return "their servers cannot be replayed (a live proxy), so state and response are never scored"


def _whose(count: int) -> str:
    return "1 task's" if count == 1 else f"{count} tasks'"


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _few(items: Sequence[str], shown: int) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


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
    earlier results (replaced), not another env's nor a live eval's (refused before any episode)."""
    if tasks is not None:
        env = ToolEnv(env.config, tasks, env.servers, user=env.user, reward_fn=env.reward_fn)
    episodes: list[tuple[int, str | None]]
    if n is None:
        episodes = [(seed + i, t.id) for i, t in enumerate(env.tasks)]
    else:
        episodes = [(seed + i, None) for i in range(n)]
    by_id = {t.id: t for t in env.tasks}
    gates = getattr(env.reward_fn, "gates", env.config.reward.gates)
    basis = getattr(env.reward_fn, "basis", env.config.reward.basis)

    def summary_of(trajectories: list[Trajectory], *, incomplete: bool = False) -> EvalSummary:
        summary = summarize(env.config.id, trajectories, tasks=by_id, gates=gates, basis=basis)
        summary.planned, summary.incomplete = len(episodes), incomplete
        return summary

    held = None if out is None else EvalOut(out, env.config.id, summary_of([], incomplete=True))
    try:
        trajectories = await run_batch(env, policy, episodes=episodes, concurrency=concurrency, progress=progress,
                                       on_done=None if held is None else held.add)  # fmt: skip
        summary = summary_of(trajectories)
        if held is not None:
            held.finish(trajectories, summary)
        return summary, trajectories
    except BaseException:  # Ctrl-C (a cancellation here), or a bug: what finished is kept, said incomplete
        if held is not None:
            held.finish(held.finished, summary_of(held.finished, incomplete=True), complete=False)
        raise
    finally:
        if held is not None:
            held.release()


class LockedOut:
    """An eval's ``out`` folder while a run writes there: made and locked at once (an unwritable path or
    another eval's lock is a one-line error before any episode); each line appended to the open file is
    flushed, so a run killed outright keeps it; ``release`` closes the file and lets the lock go."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._file: IO[str] | None = None
        out.mkdir(parents=True, exist_ok=True)  # an OSError naming the path: a one-line error, before any episode
        self._lock: Path | None = _lock(out)

    def _append(self, line: str) -> None:
        if self._file is not None:
            self._file.write(line)
            self._file.flush()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def release(self) -> None:
        self._close()
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None


def rewrite(path: Path, lines: Iterable[str], partial: Path) -> None:
    """``path`` written whole as ``partial`` first, then moved into place: no reader sees half of it."""
    with partial.open("w", encoding="utf-8") as f:
        f.writelines(lines)
    partial.replace(path)


class EvalOut(LockedOut):
    """An eval's ``out`` folder while it runs: trajectories appended as they end."""

    def __init__(self, out: Path, env_id: str, started: EvalSummary) -> None:
        super().__init__(out)
        self.finished: list[Trajectory] = []
        try:
            _check_out(out, env_id)
            self._file = (out / "trajectories.jsonl").open("w", encoding="utf-8")
            # Written now: an eval killed outright still leaves its env's id (and "incomplete") beside its lines.
            self._write_summary(started)
        except BaseException:
            self.release()
            raise

    def add(self, _position: int, trajectory: Trajectory) -> None:
        self.finished.append(trajectory)
        self._append(trajectory.model_dump_json() + "\n")

    def finish(self, trajectories: list[Trajectory], summary: EvalSummary, *, complete: bool = True) -> None:
        """The summary; a complete run's trajectories again, in episode order (appended as they ended)."""
        self._close()
        if complete:
            path = self.out / "trajectories.jsonl"
            rewrite(path, (t.model_dump_json() + "\n" for t in trajectories), path.with_name(path.name + ".part"))
        self._write_summary(summary)

    def _write_summary(self, summary: EvalSummary) -> None:
        (self.out / "summary.json").write_text(json.dumps(asdict(summary), indent=2))


def _lock(out: Path) -> Path:
    """``out/.eval.lock`` made with this process's pid (and, on Linux, its start time); one naming a live
    process refuses the eval, one naming a dead one (an eval killed outright) or a pid since reused by
    another process (its start time differs) is taken over."""
    lock = out / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder_in(lock)
            if holder is not None and _alive(*holder):
                raise InftoolError(f"{out} is being written by another inftool eval (pid {holder[0]}); pick "
                                   f"another --out, or wait for it to end") from None  # fmt: skip
            lock.unlink(missing_ok=True)  # stale
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {_started(os.getpid()) or ''}".rstrip() + "\n")
        return lock
    raise InftoolError(f"{out}: cannot take {LOCK}: another eval keeps making it")


def _holder_in(lock: Path) -> tuple[int, str | None] | None:
    """The lock's pid and the start time it recorded (None: not recorded, as by another system)."""
    try:
        pid, *started = lock.read_text().split()
        return int(pid), started[0] if started else None
    except (OSError, ValueError):
        return None


def _started(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/PID/stat``'s 22nd field); None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # after the command's name, which may hold spaces


def _alive(pid: int, started: str | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    now = _started(pid)
    return started is None or now is None or now == started  # a pid reused since: not the holder


def _check_out(out: Path, env_id: str) -> None:
    try:
        held = json.loads((out / "summary.json").read_text()).get("env_id")
    except (OSError, ValueError, AttributeError):  # none, or not an eval's: nothing of another env to lose
        return
    if held is not None and held != env_id:
        raise InftoolError(f"{out} holds another env's results ({held}); pick another --out")


def format_summary(summary: EvalSummary) -> str:
    planned = f" of {summary.planned} (interrupted)" if summary.incomplete else ""
    lines = [
        f"{summary.env_id}: {summary.episodes} episodes{planned}",
        f"  success rate   {summary.success_rate:.1%}",
        f"  mean reward    {summary.mean_reward:.3f}",
        f"  gate failures  {_counts(summary.gate_failures)}",
        f"  not solved     {_counts(summary.unsolved, by_count=True)}",
        f"  truncated      {_counts(summary.truncations)}",
        f"  broken         {summary.errors}",
    ]
    if summary.known_issues:
        ids = sorted(summary.known_issues)
        lines.append(f"  known issues   {_few(ids, 5)}: BFCL's own data makes {'it' if len(ids) == 1 else 'them'} "
                     "unpassable (inftool_env/eval/bfcl_known.py)")  # fmt: skip
    return "\n".join(lines)


def _counts(counts: dict[str, Any], *, by_count: bool = False) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]) if by_count else kv[0])
    return ", ".join(f"{k}: {v}" for k, v in items) or "none"
