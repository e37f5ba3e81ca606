"""Rollout throughput: W local Ray workers against 1, and against this process on asyncio, in one run.

The policy is the oracle plus a stand-in for generation: each turn it burns ``--think-ms`` of CPU in its
own process (a local model holds a core while it decodes; ``--think sleep`` waits instead, as for a remote
endpoint, where asyncio alone already overlaps the waits). Episodes/s counts the run itself, after an
untimed warm-up batch; building the env and the Ray workers' start-up (processes, imports, env build) are
left out, the latter printed apart. Same episodes, same seeds, for every configuration.

    python bench/bench_rollout.py [--n 96] [--workers 2] [--think-ms 20] [--think burn|sleep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import anyio

from inftool_env.env import run_batch
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make
from inftool_env.rollout import plan_episodes
from inftool_env.rollout.plan import Finished

ENV = "inftool/Bookshelf-v0"


class ThinkingOracle:
    """The oracle, taking ``ms`` per turn: CPU burnt (``burn``) or time waited (``sleep``)."""

    def __init__(self, ms: float, mode: str) -> None:
        self.ms, self.mode = ms, mode

    def __call__(self, task: Any) -> Any:
        return _Thinking(OraclePolicy(task), self.ms / 1000, self.mode)


class _Thinking:
    def __init__(self, oracle: OraclePolicy, seconds: float, mode: str) -> None:
        self.oracle, self.seconds, self.mode = oracle, seconds, mode

    async def act(self, observation: dict[str, Any]) -> Any:
        if self.mode == "sleep":
            await asyncio.sleep(self.seconds)
        else:
            end = time.perf_counter() + self.seconds
            while time.perf_counter() < end:
                pass
        return await self.oracle.act(observation)


def check(finished: list[Finished], n: int) -> None:
    if sorted(f.index for f in finished) != list(range(n)) or any(f.trajectory.error for f in finished):
        raise SystemExit("a run lost or broke episodes: no benchmark")  # a wrong run measures nothing


def local_rate(policy: ThinkingOracle, n: int, concurrency: int) -> float:
    """What ``rollout_local`` runs (``run_batch``), timed without building the env, after a warm-up batch."""
    env = make(ENV)
    try:
        anyio.run(lambda: run_batch(env, policy, episodes=[(e.seed, None) for e in plan_episodes(concurrency)],
                                    concurrency=concurrency))  # fmt: skip
        finished: list[Finished] = []
        start = time.perf_counter()
        anyio.run(lambda: run_batch(env, policy, episodes=[(e.seed, None) for e in plan_episodes(n)],
                                    concurrency=concurrency,
                                    on_done=lambda i, t: finished.append(Finished(i, "local", t))))  # fmt: skip
        elapsed = time.perf_counter() - start
    finally:
        anyio.run(env.close)
    check(finished, n)
    return n / elapsed


def ray_rate(policy: ThinkingOracle, n: int, workers: int, concurrency: int) -> tuple[float, float]:
    """Episodes/s once the actors are up and have run a warm-up batch; and their start-up time."""
    from inftool_env.rollout.ray_workers import RayRollout

    start = time.perf_counter()
    pool = RayRollout(ENV, policy, workers=workers, concurrency=concurrency)
    started = time.perf_counter() - start
    finished: list[Finished] = []
    try:
        pool.run(plan_episodes(workers * concurrency), lambda f: None)
        start = time.perf_counter()
        pool.run(plan_episodes(n), finished.append)
        elapsed = time.perf_counter() - start
    finally:
        pool.close()
    check(finished, n)
    return n / elapsed, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="episodes per configuration")
    parser.add_argument("--workers", type=int, default=2, help="W, compared with 1")
    parser.add_argument("--concurrency", type=int, default=4, help="episodes at once (per Ray worker)")
    parser.add_argument("--think-ms", type=float, default=20.0, help="the policy's time per turn")
    parser.add_argument("--think", choices=("burn", "sleep"), default="burn")
    args = parser.parse_args()

    import ray

    policy = ThinkingOracle(args.think_ms, args.think)
    cpus = os.cpu_count() or 1
    print(f"{ENV}, oracle + {args.think_ms:g} ms {args.think} per turn, {args.n} episodes per configuration, "
          f"{cpus} CPUs, Ray cluster of {max(cpus, args.workers)} CPUs")  # fmt: skip
    local = local_rate(policy, args.n, args.concurrency * args.workers)
    ray.init(num_cpus=max(cpus, args.workers), include_dashboard=False, log_to_driver=False)
    try:
        one, one_start = ray_rate(policy, args.n, 1, args.concurrency)
        many, many_start = ray_rate(policy, args.n, args.workers, args.concurrency)
    finally:
        ray.shutdown()
    w = args.workers
    c = args.concurrency
    print(f"  local asyncio, {c * w} at once        {local:7.2f} episodes/s")
    print(f"  Ray, 1 worker, {c} at once          {one:7.2f} episodes/s  (start-up {one_start:.1f} s)")
    print(f"  Ray, {w} workers, {c} at once each   {many:7.2f} episodes/s  (start-up {many_start:.1f} s)")
    print(f"  ratio {w} workers / 1 worker: {many / one:.2f}x;  {w} workers / local asyncio: {many / local:.2f}x;  "
          f"1 worker / local asyncio: {one / local:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
