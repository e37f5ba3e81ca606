"""Rollouts in this process on asyncio: ``run_batch`` with each trajectory handed on as it ends."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inftool_env.env.batch import run_batch
from inftool_env.rollout.plan import Episode, Finished
from inftool_env.rollout.shared import with_servers


async def rollout_local(
    env_id: str,
    policy: str | Callable[..., Any],
    episodes: Sequence[Episode],
    *,
    on_finished: Callable[[Finished], None],
    concurrency: int = 8,
    server_urls: Mapping[str, str] | None = None,
) -> None:
    """Run ``episodes`` of ``policy`` (a policy string, as ``inftool eval`` takes, or a factory) on a
    fresh ``env_id``; each ending episode goes to ``on_finished`` at once."""
    from inftool_env.policies import close_policy, resolve_policy
    from inftool_env.registration import make

    factory = resolve_policy(policy) if isinstance(policy, str) else policy
    env = with_servers(make(env_id), server_urls or {})

    def done(position: int, trajectory: Any) -> None:
        episode = episodes[position]
        on_finished(Finished(episode.index, "local", trajectory, None))

    try:
        await run_batch(env, factory, episodes=[(e.seed, e.task_id) for e in episodes], concurrency=concurrency,
                        on_done=done)  # fmt: skip
    finally:
        await env.close()
        await close_policy(factory)
