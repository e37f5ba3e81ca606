"""Oracle steps per second for every registered env, and an env step's overhead over its MCP calls.

Two targets, each measured in this one run (medians of interleaved rounds):
- steps/s: the oracle's episodes through the env in-process (``run_batch``: workers, connections, user
  turns and rewards included), against 500 steps/s;
- overhead: (env time - MCP time) / MCP time, where MCP time is the same episodes' tool calls made
  straight over one in-process MCP client (fresh episodes, same seeds), against 2x: what the env adds
  on top of its calls (parsing, bookkeeping, observations, the user's turns, the reward). The oracle's
  answers are right: each is scored from its own results, as any episode that makes the ground truth's
  calls is (multi_turn.results_by_turn). A wrong answer's reward replays the calls on fresh state
  besides: bench_bfcl_checker.py measures that replay.
The "direct" column is the same calls on the backend alone (no MCP, no env), for reference.

Time is this process's CPU time by default: on a shared machine wall time also counts everybody
else's work (on an idle one the two agree: the loop is one thread). ``--wall`` judges wall time.

    python bench/bench_env.py [--episodes 40] [--rounds 3] [--wall] [--envs inftool/Bookshelf-v0 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

import anyio

from inftool_env.env import run_batch
from inftool_env.env.core import ToolEnv
from inftool_env.eval.bfcl_known import SCHEMA_VIOLATIONS
from inftool_env.mcp import open_client
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import default_registry, make
from inftool_env.trajectory import Trajectory

MIN_STEPS_PER_S = 500.0
MAX_OVERHEAD = 2.0
WARM_SEED = 10_000  # warm-up episodes' seeds start here, clear of the timed ones'


class Clock:
    """Wall and CPU seconds of the blocks it times."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


async def env_run(env_id: str, episodes: int, concurrency: int) -> tuple[Clock, int, list[Trajectory]]:
    """The time of ``episodes`` oracle episodes through a warm env (one batch of every task run before, as
    a trainer's env is after its first batch), their steps, their trajectories."""
    env = make(env_id)
    clock = Clock()
    try:
        warm = [(WARM_SEED + i, t.id) for i, t in enumerate(env.tasks)]
        await run_batch(env, OraclePolicy, episodes=warm, concurrency=concurrency)
        plan = [(i, env.tasks[i % len(env.tasks)].id) for i in range(episodes)]
        with clock.timing():
            trajectories = await run_batch(env, OraclePolicy, episodes=plan, concurrency=concurrency)
    finally:
        await env.close()
    return clock, sum(len(t.turns) for t in trajectories), trajectories


def _below_one(trajectories: list[Trajectory]) -> list[str]:
    """Episodes the oracle did not get 1.0 on: its env is then marked wrong, whatever its speed (BFCL's
    own ground truth breaking BFCL's tool docs excepted: no oracle can pass those)."""
    return sorted({t.task_id for t in trajectories
                   if not (t.reward and t.reward.reward == 1.0) and t.task_id not in SCHEMA_VIOLATIONS})  # fmt: skip


def _calls(env: ToolEnv, trajectories: list[Trajectory]) -> list[tuple[Trajectory, Any, list[Any]]]:
    tasks = {t.id: t for t in env.tasks}
    return [(t, tasks[t.task_id], [c for turn in t.turns for c in turn.calls]) for t in trajectories]


async def mcp_run(env_id: str, trajectories: list[Trajectory]) -> Clock:
    """The same tool calls over in-process MCP clients (one per server, warmed by a first pass of the same
    calls), each episode on its own fresh state."""
    env = make(env_id)
    plan = _calls(env, trajectories)
    clock = Clock()
    async with contextlib.AsyncExitStack() as stack:
        clients = {n: await stack.enter_async_context(open_client(s)) for n, s in env.servers.items()}
        for timed in (False, True):
            with clock.timing() if timed else contextlib.nullcontext():
                for n, (traj, task, calls) in enumerate(plan):
                    key = f"bench-{timed}-{n}"
                    # The warm pass runs on other seeds, as the env's warm batch does: both timed runs then
                    # build each episode's world once (a backend keeps recent seeds' worlds).
                    seed = traj.seed if timed else WARM_SEED + traj.seed
                    episode = {
                        name: c.for_episode(key, seed=seed, initial_state=task.initial_for(name))
                        for name, c in clients.items()
                    }
                    for call in calls:
                        await episode[call.server].call(call.name, call.arguments)
                    for name in {call.server for call in calls if call.server}:
                        env.servers[name].end_episode(key)
    await env.close()
    return clock


async def direct_run(env_id: str, trajectories: list[Trajectory]) -> Clock:
    """The same tool calls straight on the backends: the work the env and MCP wrap."""
    env = make(env_id)
    plan = _calls(env, trajectories)
    tools = {t.name: t for s in env.servers.values() for t in s.suite.tools}
    backends = {n: s.backend for n, s in env.servers.items()}
    clock = Clock()
    with clock.timing():
        for traj, task, calls in plan:
            states = {n: b.new_state(seed=traj.seed, initial=task.initial_for(n)) for n, b in backends.items()}
            for call in calls:
                try:
                    await backends[call.server].call(tools[call.name], dict(call.arguments), states[call.server])
                except Exception:  # noqa: S112 - tool errors are part of the work
                    continue
    await env.close()
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--wall", action="store_true", help="judge wall time, not this process's CPU time")
    parser.add_argument("--envs", nargs="*", help="env ids (default: every registered env)")
    args = parser.parse_args()
    env_ids = args.envs or default_registry().ids()
    judged = "wall" if args.wall else "cpu"
    print(f"targets: >= {MIN_STEPS_PER_S:.0f} oracle steps/s; step overhead <= {MAX_OVERHEAD:.0f}x its MCP calls "
          f"(judged on {judged} time)")  # fmt: skip
    print(
        f"{'env':<28}{'steps':>6}{'steps/s':>9}{'':>5}{'wall/s':>8}{'us/step':>9}{'MCP us':>8}{'direct us':>10}"
        f"{'overhead':>10}{'':>5}"
    )
    failed = 0
    for env_id in env_ids:
        env_t: list[Clock] = []
        mcp_t: list[Clock] = []
        direct_t: list[Clock] = []
        steps, wrong = 0, set()
        for _ in range(args.rounds):
            clock, steps, trajectories = anyio.run(env_run, env_id, args.episodes, args.concurrency)
            wrong.update(_below_one(trajectories))
            env_t.append(clock)
            mcp_t.append(anyio.run(mcp_run, env_id, trajectories))
            direct_t.append(anyio.run(direct_run, env_id, trajectories))

        def median(clocks: list[Clock], kind: str = judged) -> float:
            return statistics.median(getattr(c, kind) for c in clocks)

        e, m, d = median(env_t), median(mcp_t), median(direct_t)
        rate, overhead = steps / e, (e - m) / m
        rate_ok, overhead_ok = rate >= MIN_STEPS_PER_S, overhead <= MAX_OVERHEAD
        failed += (not rate_ok) + (not overhead_ok)
        print(
            f"{env_id.removeprefix('inftool/'):<28}{steps:>6}{rate:>9,.0f}{'PASS' if rate_ok else 'FAIL':>5}"
            f"{steps / median(env_t, 'wall'):>8,.0f}{1e6 * e / steps:>9,.0f}{1e6 * m / steps:>8,.0f}"
            f"{1e6 * d / steps:>10,.0f}{overhead:>9.1f}x{'PASS' if overhead_ok else 'FAIL':>5}"
        )
        if wrong:
            failed += 1
            print(f"  FAIL: the oracle scored below 1.0 on {sorted(wrong)[:5]} (a wrong run: its speed is no measure)")
    print(f"steps/s, us/step, MCP us, direct us: {judged} time; wall/s: steps per wall second. MCP and direct: the")
    print("step's calls alone, per env step.")
    print("all PASS" if not failed else f"{failed} FAIL")


if __name__ == "__main__":
    main()
