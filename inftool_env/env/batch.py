"""Run many episodes of a policy concurrently (asyncio, bounded), each isolated.

Workers are envs spawned from one env: they share its compiled servers (each episode still has its
own server state) and differ in everything else. One episode's failure is recorded on its
trajectory and never cancels its siblings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tqdm import tqdm

from inftool_env.env.core import ToolEnv
from inftool_env.tasks import Task
from inftool_env.trajectory import Trajectory


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
        try:
            action = await policy.act(obs)
        except Exception as exc:  # the policy broke: data, not a crash
            broken = env.trajectory
            assert broken is not None  # noqa: S101 - reset sets it
            broken.error = f"policy: {type(exc).__name__}: {exc}"
            broken.truncated, broken.truncation_reason = True, "policy_error"
            return broken
        result = await env.step(action)
        obs = result.observation
        if result.terminated or result.truncated:
            finished: Trajectory = result.info["trajectory"]
            tokens = getattr(policy, "tokens", None)
            if tokens is not None:
                tokens.fill(finished)
            return finished


async def run_batch(
    env: ToolEnv,
    policy_factory: PolicyFactory,
    *,
    episodes: Sequence[tuple[int, str | None]],
    concurrency: int = 32,
    progress: bool = False,
) -> list[Trajectory]:
    """``episodes`` are (seed, task_id or None) pairs; results come back in the same order."""
    workers: asyncio.Queue[ToolEnv] = asyncio.Queue()
    spawned = [env.spawn() for _ in range(min(concurrency, len(episodes)))]
    for worker in spawned:
        workers.put_nowait(worker)
    bar = tqdm(total=len(episodes), desc="episodes", unit="ep", disable=not progress)

    async def one(seed: int, task_id: str | None) -> Trajectory:
        worker = await workers.get()
        try:
            return await run_episode(worker, policy_factory, seed=seed, task_id=task_id)
        except Exception as exc:
            return Trajectory(env_id=env.config.id, task_id=task_id or "?", seed=seed, truncated=True,
                              truncation_reason="error", error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        finally:
            workers.put_nowait(worker)
            bar.update(1)

    try:
        return list(await asyncio.gather(*(one(s, t) for s, t in episodes)))
    finally:
        bar.close()
        for worker in spawned:
            await worker.close()
