"""Run many episodes of a policy concurrently (asyncio, bounded), each isolated.

Workers are envs spawned from one env: they share its compiled servers (each episode still has its
own server state) and differ in everything else. One episode's failure is recorded on its
trajectory and never cancels its siblings; every requested episode comes back, in order, and
closing the workers never raises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tqdm import tqdm

from inftool_env.env.core import ToolEnv
from inftool_env.env.pool import WorkerPool
from inftool_env.errors import PolicyError, RolloutError
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory, failure

logger = logging.getLogger(__name__)


class Policy(Protocol):
    """One assistant turn per observation. A policy that keeps the episode's token record exposes it
    as ``tokens`` (``EpisodeTokens``); it is copied onto the trajectory when the episode ends."""

    async def act(self, observation: dict[str, Any]) -> Any: ...


PolicyFactory = Callable[[Task], Policy]


async def run_episode(
    env: ToolEnv, policy_factory: PolicyFactory, *, seed: int, task_id: str | None = None
) -> Trajectory:
    obs, info = await env.reset(seed=seed, options={"task_id": task_id} if task_id else None)
    task = env.task
    assert task is not None  # noqa: S101 - reset sets it
    policy = policy_factory(task)
    while True:
        # The episode's deadline bounds the policy too: a silent endpoint must not hold the batch.
        deadline = asyncio.timeout(max(env.time_left() or 0.0, 0.001))
        try:
            async with deadline:
                action = await policy.act(obs)
        except Exception as exc:  # the policy broke: data, not a crash
            if isinstance(exc, TimeoutError) and deadline.expired():
                return (await env.truncate("episode_timeout")).info["trajectory"]
            return _broken(env, failure(exc, PolicyError), "policy_error")
        try:
            result = await env.step(action)
        except Exception as exc:  # step returns for any action; this is a bug, kept with its trajectory
            logger.warning("%s: step raised", env.config.id, exc_info=True)
            return _broken(env, failure(exc, RolloutError), "error")
        obs = result.observation
        if result.terminated or result.truncated:
            finished: Trajectory = result.info["trajectory"]
            tokens = getattr(policy, "tokens", None)
            if tokens is not None:
                tokens.fill(finished)
            samples = getattr(policy, "samples", None) or []  # a chat policy's completions
            finished.replies_cut = sum(getattr(s, "finish_reason", None) == "length" for s in samples)
            return finished


def _broken(env: ToolEnv, error: str, reason: str) -> Trajectory:
    trajectory = env.trajectory
    assert trajectory is not None  # noqa: S101 - reset sets it
    trajectory.error = trajectory.error or error
    if not (trajectory.terminated or trajectory.truncated):
        trajectory.truncated, trajectory.truncation_reason = True, reason
    return trajectory


async def play(
    pool: WorkerPool,
    policy_factory: PolicyFactory,
    *,
    seed: int,
    task_id: str | None = None,
    on_end: Callable[[ToolEnv], None] | None = None,
) -> Trajectory:
    """One episode on a worker the pool lends. An env that broke (a reset failed: a server that cannot
    start) gives a truncated trajectory carrying the error, so the other episodes go on. ``on_end`` sees
    the worker before its episode ends (the Ray actor reads the episode's key there)."""
    async with pool.borrow() as worker:
        try:
            return await run_episode(worker, policy_factory, seed=seed, task_id=task_id)
        except Exception as exc:
            return Trajectory(env_id=pool.env.config.id, task_id=task_id or "?", seed=seed, truncated=True,
                              truncation_reason="error", error=failure(exc, RolloutError))  # fmt: skip
        finally:
            if on_end is not None:
                on_end(worker)


async def run_batch(
    env: ToolEnv,
    policy_factory: PolicyFactory,
    *,
    episodes: Sequence[tuple[int, str | None]],
    concurrency: int = 32,
    progress: bool = False,
    on_done: Callable[[int, Trajectory], None] | None = None,
) -> list[Trajectory]:
    """``episodes`` are (seed, task_id or None) pairs; results come back in the same order, and each is
    handed to ``on_done(position, trajectory)`` the moment it ends (``inftool rollout`` streams them)."""
    pool = WorkerPool(env, size=max(1, min(concurrency, len(episodes))))
    bar = tqdm(total=len(episodes), desc="episodes", unit="ep", disable=not progress)

    async def done(i: int, seed: int, task_id: str | None) -> Trajectory:
        trajectory = await play(pool, policy_factory, seed=seed, task_id=task_id)
        bar.update(1)
        if on_done is not None:
            try:
                on_done(i, trajectory)
            except Exception:  # a consumer's failure (a full disk) must not take the batch's results with it
                logger.exception("%s: on_done failed for episode %d (still returned)", env.config.id, i)
        return trajectory

    try:
        return list(await asyncio.gather(*(done(i, s, t) for i, (s, t) in enumerate(episodes))))
    finally:
        bar.close()
        await pool.close()  # never raises; were it to, the trajectories still go back
