"""Rollouts: G isolated episodes of each task through our own env (``run_episode``), the policy a
``ChatPolicy`` on the module being trained, so each trajectory carries its token record.

Every sample gets its own env seed and sampling seed, derived from (run seed, step, pick, sample):
a step's rollouts depend on nothing else, so a resumed run replays them. All the step's episodes run
at once, so the model batches their turns (a group's first turn shares its prompt, see chat.py).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inftool_env.env.batch import play
from inftool_env.env.config import EnvConfig, trainer_driven
from inftool_env.env.core import ToolEnv, refuse_missing_servers
from inftool_env.env.pool import WorkerPool
from inftool_env.errors import InftoolError
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.policies.chat import ChatPolicy
from inftool_env.rewards import GatedReward, RewardFn
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory

EnvSource = str | EnvConfig | ToolEnv


@dataclass(frozen=True)
class Pick:
    """One task of the training pool: which source env (index) and the task."""

    source: int
    task: Task


@dataclass(frozen=True)
class Group:
    pick: Pick
    env_id: str
    samples: tuple[Trajectory, ...]

    @property
    def rewards(self) -> list[float]:
        return [reward_of(t) for t in self.samples]


def reward_of(trajectory: Trajectory) -> float:
    """The env's gated reward; an episode that broke before it was scored counts 0."""
    return trajectory.reward.reward if trajectory.reward is not None else 0.0


def is_success(trajectory: Trajectory) -> bool:
    return reward_of(trajectory) >= 1.0


def gate_cut_replies(groups: Sequence[Group]) -> None:
    """``cut_fails``: each scored sample's breakdown gains the gate ``finished`` (no reply was cut at the token
    limit), and a sample that fails it scores 0. The env cannot gate it: it learns of a cut after scoring."""
    for g in groups:
        for t in g.samples:
            if t.reward is None:
                continue
            update: dict[str, Any] = {"gates": {**t.reward.gates, "finished": not t.replies_cut}}
            if t.replies_cut:
                note = f"finished: {t.replies_cut} repl{'y' if t.replies_cut == 1 else 'ies'} cut at the token limit"
                update |= {"reward": 0.0, "notes": [*t.reward.notes, note]}
            t.reward = t.reward.model_copy(update=update)


class EnvPool:
    """The training envs: each source's own servers, user and reward, with the given tasks, and a
    pool of workers per source kept open for the whole run."""

    def __init__(
        self,
        envs_and_tasks: Sequence[tuple[EnvSource, Sequence[Task]]],
        *,
        max_turns: int | None = None,
        episode_timeout_s: float | None = None,
        partial_calls: bool = False,
    ) -> None:
        if not envs_and_tasks:
            raise InftoolError("no training envs given")
        self.envs: list[ToolEnv] = []
        self.picks: list[Pick] = []
        self.pools: list[WorkerPool] = []
        for index, (source, tasks) in enumerate(envs_and_tasks):
            if not tasks:
                raise InftoolError(f"training env #{index + 1} ({env_name(source)}) has no tasks")
            twice = [i for i, n in Counter(t.id for t in tasks).items() if n > 1]
            if twice:  # the env finds a task by its id: one of the two would never be trained
                raise InftoolError(
                    f"training env #{index + 1} ({env_name(source)}): task id {twice[0]!r} is given twice "
                    "(a task file repeats one of the env's own, or a target is listed twice)"
                )
            base = _build(source)
            refuse_bfcl(f"training env #{index + 1} ({env_name(source)})", base.config, tasks)
            refuse_missing_servers(f"training env #{index + 1} ({env_name(source)})", tasks, base.servers)
            config = trainer_driven(base.config, episode_timeout_s)  # no wall-clock cut unless asked
            if max_turns is not None:  # a CPU budget: an episode past it is truncated (and scored as it stands)
                config = config.model_copy(update={"limits": config.limits.model_copy(update={"max_turns": max_turns})})
            reward_fn = base.reward_fn
            if partial_calls:
                reward_fn = with_partial_calls(reward_fn, f"training env #{index + 1} ({env_name(source)})")
            self.envs.append(ToolEnv(config, list(tasks), base.servers, user=base.user, reward_fn=reward_fn))
            self.pools.append(WorkerPool(self.envs[-1]))
            self.picks += [Pick(index, t) for t in tasks]

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()
        for env in self.envs:
            await env.close()


def with_partial_calls(reward_fn: RewardFn, where: str) -> GatedReward:
    """The env's gated reward with a one-shot answer scored by its share of matching calls (the ``calls``
    component, weight 1, ``ast``'s 0) in place of BFCL's all-or-nothing verdict; other tasks as before."""
    if not isinstance(reward_fn, GatedReward):
        raise InftoolError(f"{where}: partial_calls weighs the gated reward's `calls` component, and this env "
                           f"scores with a reward of its own ({type(reward_fn).__name__})")  # fmt: skip
    basis = reward_fn.basis if "calls" in reward_fn.basis else (*reward_fn.basis, "calls")
    return GatedReward(reward_fn.gates, basis, {**reward_fn.weights, "ast": 0.0, "calls": 1.0})


def env_name(source: EnvSource) -> str:
    return source if isinstance(source, str) else source.id if isinstance(source, EnvConfig) else source.config.id


def _build(source: EnvSource) -> ToolEnv:
    if isinstance(source, ToolEnv):
        return source
    if isinstance(source, EnvConfig):
        from inftool_env.env.build import build_env

        return build_env(source, Path.cwd())
    from inftool_env.registration import make

    env: ToolEnv = make(source)
    return env


def schedule(n_tasks: int, per_step: int, step: int, seed: int) -> list[int]:
    """The pool indices trained at ``step``: consecutive slices of per-epoch shuffles (each task once
    per epoch), a pure function of its arguments."""
    picks: list[int] = []
    position = step * per_step
    while len(picks) < per_step:
        epoch, at = divmod(position, n_tasks)
        order = random.Random(f"{seed}:{epoch}").sample(range(n_tasks), n_tasks)
        take = min(per_step - len(picks), n_tasks - at)
        picks += order[at : at + take]
        position += take
    return picks


def sample_seeds(seed: int, step: int, pick: int, sample: int) -> tuple[int, int]:
    """(env seed, sampling seed) of one sample. The sampling seed leaves room for 1024 turns (the
    policy adds the turn number)."""
    rng = random.Random(f"{seed}:{step}:{pick}:{sample}")
    return rng.randrange(2**31 - 1), rng.randrange(2**40) * 1024


async def rollout_groups(
    pool: EnvPool,
    chat: Any,
    picks: list[Pick],
    *,
    group: int,
    step: int,
    seed: int,
    temperature: float,
    max_new_tokens: int,
    progress: bool = False,
) -> list[Group]:
    """``group`` episodes of each pick, all concurrently; a broken episode is data (its error on the
    trajectory), never a crash."""

    async def one(index: int, pick: Pick, sample: int) -> Trajectory:
        env_seed, policy_seed = sample_seeds(seed, step, index, sample)
        env = pool.envs[pick.source]
        tools = "native" if env.config.format == "openai" else "prompt"
        policy = ChatPolicy(chat, tools=tools, temperature=temperature, seed=policy_seed, max_tokens=max_new_tokens)
        try:
            return await play(pool.pools[pick.source], lambda task: policy, seed=env_seed, task_id=pick.task.id)
        finally:
            bar.update(1)
            bar.set_postfix(tokens=getattr(chat, "tokens", 0))

    runs = [one(i, p, s) for i, p in enumerate(picks) for s in range(group)]
    bar = tqdm(total=len(runs), desc=f"step {step} rollouts", unit="ep", leave=False, disable=not progress)
    try:
        done = await asyncio.gather(*runs)
    finally:
        bar.close()
    return [
        Group(p, pool.envs[p.source].config.id, tuple(done[i * group : (i + 1) * group])) for i, p in enumerate(picks)
    ]
