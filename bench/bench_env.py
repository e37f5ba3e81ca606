"""Env steps per second with the oracle policy, and the env's overhead per step, measured in one run.

The baseline is the same episodes' tool calls made directly on the backend (no MCP, no env): the
ratio says what the environment layer costs per step. Medians of interleaved rounds.

    python bench/bench_env.py [--episodes 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

from inftool_env.env import run_batch
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make

ENVS = ("inftool/Bookshelf-v0", "inftool/BfclGorillaFileSystem-v0")


async def env_rate(env_id: str, episodes: int, concurrency: int) -> tuple[float, int, list]:
    env = make(env_id)
    try:
        plan = [(i, env.tasks[i % len(env.tasks)].id) for i in range(episodes)]
        start = time.perf_counter()
        trajectories = await run_batch(env, OraclePolicy, episodes=plan, concurrency=concurrency)
        elapsed = time.perf_counter() - start
    finally:
        await env.close()
    steps = sum(len(t.turns) for t in trajectories)
    assert all(t.reward and t.reward.reward == 1.0 for t in trajectories)  # noqa: S101 - a wrong run is no benchmark
    return steps / elapsed, steps, trajectories


async def direct_rate(env_id: str, trajectories: list) -> float:
    """The same tool calls, straight on the backend: the work the env wraps."""
    env = make(env_id)
    tools = {t.name: (name, t) for name, s in env.servers.items() for t in s.suite.tools}
    tasks = {t.id: t for t in env.tasks}
    start = time.perf_counter()
    steps = 0
    for traj in trajectories:
        task = tasks[traj.task_id]
        states = {n: s.backend.new_state(seed=traj.seed, initial=task.initial_state.get(n) or None)
                  for n, s in env.servers.items() if not task.servers or n in task.servers}  # fmt: skip
        for turn in traj.turns:
            steps += 1
            for call in turn.calls:
                server, tool = tools[call.name]
                try:
                    await env.servers[server].backend.call(tool, call.arguments, states[server])
                except Exception:  # noqa: S112 - tool errors are part of the work
                    continue
    await env.close()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"{'env':<36}{'steps':>7}{'env steps/s':>13}{'direct steps/s':>16}{'env overhead':>14}{'us/step':>9}")
    for env_id in ENVS:
        env_rates, direct_rates, steps = [], [], 0
        for _ in range(args.rounds):
            rate, steps, trajectories = anyio.run(env_rate, env_id, args.episodes, args.concurrency)
            env_rates.append(rate)
            direct_rates.append(anyio.run(direct_rate, env_id, trajectories))
        e, d = statistics.median(env_rates), statistics.median(direct_rates)
        print(f"{env_id:<36}{steps:>7}{e:>13,.0f}{d:>16,.0f}{d / e:>13.1f}x{1e6 / e:>9,.0f}")


if __name__ == "__main__":
    main()
