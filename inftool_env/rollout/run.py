"""``rollout()``: N episodes of a policy on an env, locally on asyncio or on Ray workers, streamed to JSONL."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from tqdm import tqdm

from inftool_env.rollout.plan import Finished, JsonlSink, RolloutSummary, Tally, plan_episodes


def rollout(
    env_id: str,
    policy: str | Callable[..., Any],
    *,
    n: int,
    workers: int | None = None,
    ray_address: str | None = None,
    out: Path | None = None,
    concurrency: int = 8,
    seed: int = 0,
    server_urls: Mapping[str, str] | None = None,
    worker_cpus: float = 1.0,
    progress: bool = False,
) -> RolloutSummary:
    """Without ``workers`` and ``ray_address``: this process, ``concurrency`` episodes at once. With
    either: Ray actors (a local cluster started here, or the one at ``ray_address``), ``concurrency``
    episodes at once on each. ``policy``: a policy string, as ``inftool eval --policy`` takes, or a factory."""
    from inftool_env.policies import check_policy, resolve_policy
    from inftool_env.registration import default_registry
    from inftool_env.rollout.shared import check_server_names

    # Every mistake is refused before --out is touched (it may hold an earlier run) or a worker starts:
    # an unknown env, a --server it lacks, a policy string (on Ray, checked here and built by each worker).
    config = default_registry().resolve(env_id).config
    check_server_names(config.id, [s.name for s in config.servers], server_urls or {})
    episodes = plan_episodes(n, seed=seed)
    local = workers is None and ray_address is None
    if isinstance(policy, str):
        check_policy(policy, env_format=config.format)
    sink = JsonlSink(out, start=False)  # checked writable; emptied only once the episodes are to run
    if isinstance(policy, str) and local:
        try:  # built before the file is emptied: a model that cannot load is refused like a typo
            policy = resolve_policy(policy, env_format=config.format)
        except BaseException:
            sink.close()
            raise
    tally = Tally()
    bar = tqdm(total=n, desc="episodes", unit="ep", disable=not progress)

    def on_finished(finished: Finished) -> None:
        sink.write(finished)
        tally.add(finished)
        bar.update(1)

    start = time.perf_counter()
    startup: list[float] = []  # set once the Ray workers are up

    def workers_up(seconds: float) -> None:
        sink.start()
        startup.append(seconds)

    try:
        if local:
            from inftool_env.rollout.local import rollout_local

            anyio.run(lambda: rollout_local(env_id, policy, episodes, on_finished=on_finished,
                                            concurrency=concurrency, server_urls=server_urls,
                                            started=sink.start))  # fmt: skip
            where = f"local asyncio ({concurrency} at once)"
        else:
            where = _on_ray(env_id, policy, episodes, on_finished, workers=workers, address=ray_address,
                            concurrency=concurrency, server_urls=server_urls, worker_cpus=worker_cpus,
                            started=lambda: workers_up(time.perf_counter() - start))  # fmt: skip
    finally:
        bar.close()
        sink.close()
    return tally.summary(env_id, where, time.perf_counter() - start, startup[0] if startup else None)


def _on_ray(env_id: str, policy: Any, episodes: Any, on_finished: Any, *, workers: int | None, address: str | None,
            concurrency: int, server_urls: Mapping[str, str] | None, worker_cpus: float,
            started: Callable[[], None]) -> str:  # fmt: skip
    from inftool_env.rollout.ray_workers import RayRollout, require_ray

    ray = require_ray()
    owned = not ray.is_initialized()
    if owned and address:
        ray.init(address=address)
    elif owned:  # a local cluster just for this run, big enough for every worker
        ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil((workers or 1) * worker_cpus)), include_dashboard=False)
    try:
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // worker_cpus))
        pool = RayRollout(env_id, policy, workers=count, concurrency=concurrency, server_urls=server_urls,
                          worker_cpus=worker_cpus)  # fmt: skip
        started()
        try:
            pool.run(episodes, on_finished)
        finally:
            pool.close()
    finally:
        if owned:
            ray.shutdown()
    return f"{count} Ray worker{'s' if count != 1 else ''} ({concurrency} at once each)"
