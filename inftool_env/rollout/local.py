"""Rollouts in this process on asyncio: episodes on a ``WorkerPool``, each trajectory handed on as it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inftool_env.env.batch import play
from inftool_env.env.pool import WorkerPool
from inftool_env.rollout.plan import Episode, Finished
from inftool_env.rollout.shared import with_servers

logger = logging.getLogger(__name__)


async def rollout_local(
    env_id: str,
    policy: str | Callable[..., Any],
    episodes: Sequence[Episode],
    *,
    on_finished: Callable[[Finished], None],
    concurrency: int = 8,
    server_urls: Mapping[str, str] | None = None,
    started: Callable[[], None] | None = None,
) -> None:
    """Run ``episodes`` of ``policy`` (a policy string, as ``inftool eval`` takes, or a factory) on a
    fresh ``env_id``, ``concurrency`` at once; each ending episode goes to ``on_finished`` at once, with
    the id its servers kept its state under (as on Ray). ``started`` is called once the env and the
    policy are built, before the first episode."""
    from inftool_env.policies import close_policy, resolve_policy
    from inftool_env.registration import make

    env: Any = None
    factory: Any = None if isinstance(policy, str) else policy  # a factory given is closed here too
    try:
        env = with_servers(make(env_id), server_urls or {})
        if factory is None:
            factory = resolve_policy(str(policy), env_format=env.config.format)
        if started is not None:
            started()
        pool = WorkerPool(env, size=max(1, min(concurrency, len(episodes))))

        async def run(episode: Episode) -> None:
            keys: list[str | None] = []  # read from the worker before its episode ends
            trajectory = await play(pool, factory, seed=episode.seed, task_id=episode.task_id,
                                    on_end=lambda worker: keys.append(worker.episode_id))  # fmt: skip
            try:
                on_finished(Finished(episode.index, "local", trajectory, keys[0] if keys else None))
            except Exception:  # a consumer's failure (a full disk) must not take the other episodes with it
                logger.exception("%s: handing on episode %d failed", env_id, episode.index)

        try:
            await asyncio.gather(*(run(e) for e in episodes))
        finally:
            await pool.close()  # never raises
    finally:
        if env is not None:
            await env.close()
        if factory is not None:
            await close_policy(factory)
