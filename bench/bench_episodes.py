"""Episode start-up and memory: reset time per env, bytes per idle open episode, and 1,000 concurrent
episodes in one process, each with its own state.

- reset: the median time of ``reset()`` (a task, a seed, the user's first message) plus the creation of
  the episode's fresh server state (``state()``), per env, against 10 ms. Time is this process's CPU
  time by default (``--wall`` judges wall time: on a shared machine it counts others' work too).
- memory (tracemalloc): K workers of one env each holding an idle episode just opened (after one
  before them made what is made once: connections, caches). Printed: the bytes per idle episode with
  its worker env, and the part that is its server state.
- concurrent: N episodes (default 1,000) opened at once on N workers of one env and played at once by
  the oracle; then each episode's final state is compared with the state its own calls make on a fresh
  state of its own seed and task (through the same compiled server, no env): a state shared or mixed
  up between episodes shows. Every reward must be 1.0. Peak traced memory and peak RSS are printed.
  Its calls get a 600 s ``call_timeout_s`` (``--call-timeout``; the env's and the servers') and its
  episodes six times that: on one event loop, a call of one of 1,000 episodes waits behind the others'
  work, and these limits are wall time (on this 2-core machine, shared, the defaults cut 5-15% of BFCL
  episodes short, by the servers' 30 s cut; none of them shared a state).

    python bench/bench_episodes.py [--resets 50] [--idle 100] [--concurrent 1000] [--wall]
        [--envs ID ...] [--concurrent-envs ID ... | all]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402

from inftool_env.env.core import ToolEnv  # noqa: E402
from inftool_env.policies.oracle import OraclePolicy  # noqa: E402
from inftool_env.registration import default_registry, make  # noqa: E402
from inftool_env.trajectory import Trajectory  # noqa: E402
from tests.conftest import peak_rss_mb  # noqa: E402

MAX_RESET_MS = 10.0
CONCURRENT_ENVS = ("inftool/Bookshelf-v0", "inftool/BfclGorillaFileSystem-v0")


def _plan(env: ToolEnv, n: int) -> list[tuple[int, str]]:
    """Distinct seeds, tasks in turn: neighbouring episodes differ in both."""
    return [(1000 + i, env.tasks[i % len(env.tasks)].id) for i in range(n)]


async def reset_times(env_id: str, n: int) -> tuple[float, float]:
    """Median (cpu, wall) milliseconds of reset + the episode's first server state."""
    env = make(env_id)
    try:
        await env.reset(seed=0)  # connects
        env.state()
        cpu, wall = [], []
        for seed, task_id in _plan(env, n):
            w, c = time.perf_counter(), time.process_time()
            await env.reset(seed=seed, options={"task_id": task_id})
            env.state()
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
    finally:
        await env.close()
    return 1e3 * statistics.median(cpu), 1e3 * statistics.median(wall)


async def idle_bytes(env_id: str, k: int) -> tuple[float, float]:
    """(bytes per idle open episode with its worker env, bytes of its server state)."""
    env = make(env_id)
    workers = [env.spawn() for _ in range(k + 1)]
    try:
        await workers[0].reset(seed=0)  # what is made once (connections, caches) is not an episode's
        workers[0].state()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for worker, (seed, task_id) in zip(workers[1:], _plan(env, k), strict=True):
            await worker.reset(seed=seed, options={"task_id": task_id})
        gc.collect()
        opened = tracemalloc.get_traced_memory()[0]
        for worker in workers[1:]:
            worker.state()  # the episode's server state, created as its first call would
        gc.collect()
        with_state = tracemalloc.get_traced_memory()[0]
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await env.close()
    return (with_state - before) / k, (with_state - opened) / k


async def _play(worker: ToolEnv, observation: dict[str, Any]) -> Trajectory:
    assert worker.task is not None  # noqa: S101 - reset set it
    policy = OraclePolicy(worker.task)
    while True:
        result = await worker.step(await policy.act(observation))
        observation = result.observation
        if result.terminated or result.truncated:
            trajectory: Trajectory = result.info["trajectory"]
            return trajectory


async def _expected_state(env: ToolEnv, trajectory: Trajectory) -> dict[str, Any]:
    """The episode's calls on fresh states of its own seed and task, through the same compiled servers."""
    task = next(t for t in env.tasks if t.id == trajectory.task_id)
    names = task.servers or list(env.servers)
    states = {n: env.servers[n].backend.new_state(seed=trajectory.seed, initial=task.initial_for(n)) for n in names}
    for turn in trajectory.turns:
        for call in turn.calls:
            assert call.server is not None  # noqa: S101 - the oracle calls offered tools
            await env.servers[call.server].call(call.name, call.arguments, states[call.server])
    return {n: env.servers[n].backend.snapshot(s) for n, s in states.items()}


async def concurrent(env_id: str, n: int, call_timeout_s: float) -> dict[str, Any]:
    """Open ``n`` episodes at once, play them at once, check each state is its own."""
    limits = default_registry().resolve(env_id).config.limits
    wait = {"call_timeout_s": call_timeout_s, "episode_timeout_s": max(limits.episode_timeout_s, 6 * call_timeout_s)}
    env = make(env_id, limits=limits.model_copy(update=wait))
    for server in env.servers.values():  # the servers' own cut, too (ServerLimits, same clock)
        if hasattr(server, "limits"):  # servers before ServerLimits had no cut of their own
            server.limits = dataclasses.replace(server.limits, call_timeout_s=call_timeout_s)
    workers = [env.spawn() for _ in range(n)]
    plan = _plan(env, n)
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        opened = await asyncio.gather(
            *(w.reset(seed=s, options={"task_id": t}) for w, (s, t) in zip(workers, plan, strict=True))
        )
        open_s = time.perf_counter() - start
        trajectories = await asyncio.gather(*(_play(w, obs) for w, (obs, _) in zip(workers, opened, strict=True)))
        play_s = time.perf_counter() - start - open_s
        peak = tracemalloc.get_traced_memory()[1]
        states = [w.state() for w in workers]
        expected = [await _expected_state(env, t) for t in trajectories]
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await env.close()
    wrong_reward = [
        f"{t.task_id}: {t.truncation_reason or ''} {t.error or ''} {t.reward.model_dump() if t.reward else ''}"[:300]
        for t in trajectories
        if not (t.reward and t.reward.reward == 1.0)
    ]
    mixed = [i for i, (got, want) in enumerate(zip(states, expected, strict=True)) if got != want]
    distinct = len({json.dumps(s, sort_keys=True, default=str) for s in states})
    return {"open_s": open_s, "play_s": play_s, "steps": sum(len(t.turns) for t in trajectories), "peak": peak,
            "wrong_reward": wrong_reward, "mixed": mixed, "distinct": distinct}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resets", type=int, default=50)
    parser.add_argument("--idle", type=int, default=100, help="idle episodes opened for the memory figure")
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument(
        "--call-timeout", type=float, default=600.0,
        help="the concurrent run's call_timeout_s (episodes: 6x): wall clocks count the wait behind the others",
    )  # fmt: skip
    parser.add_argument("--wall", action="store_true", help="judge reset on wall time, not CPU time")
    parser.add_argument("--envs", nargs="*", help="env ids for reset and memory (default: every registered env)")
    parser.add_argument("--concurrent-envs", nargs="*", default=list(CONCURRENT_ENVS), help="ids, or 'all'")
    args = parser.parse_args()
    registered = default_registry().ids()
    env_ids = args.envs or registered
    concurrent_ids = registered if args.concurrent_envs == ["all"] else args.concurrent_envs
    failed = 0
    tracemalloc.start()

    judged = "wall" if args.wall else "cpu"
    print(f"reset + first server state, median of {args.resets} (judged on {judged} time, <= {MAX_RESET_MS:g} ms); "
          f"idle episodes: {args.idle} open at once")  # fmt: skip
    print(f"{'env':<28}{'reset cpu ms':>13}{'wall ms':>9}{'':>5}{'bytes/idle episode':>20}{'of it state':>13}")
    for env_id in env_ids:
        cpu_ms, wall_ms = anyio.run(reset_times, env_id, args.resets)
        per_episode, state_bytes = anyio.run(idle_bytes, env_id, args.idle)
        ok = (wall_ms if args.wall else cpu_ms) <= MAX_RESET_MS
        failed += not ok
        print(
            f"{env_id.removeprefix('inftool/'):<28}{cpu_ms:>13.2f}{wall_ms:>9.2f}{'PASS' if ok else 'FAIL':>5}"
            f"{per_episode:>20,.0f}{state_bytes:>13,.0f}"
        )
    print("bytes/idle episode: with its worker env (run_batch's unit); in-process workers share one connection.")

    for env_id in concurrent_ids:
        r = anyio.run(concurrent, env_id, args.concurrent, args.call_timeout)
        ok = not r["wrong_reward"] and not r["mixed"]
        failed += not ok
        rss_mb = peak_rss_mb()
        print(
            f"{env_id.removeprefix('inftool/')}: {args.concurrent} concurrent episodes opened in {r['open_s']:.1f} s, "
            f"{r['steps']} steps played in {r['play_s']:.1f} s; {r['distinct']} distinct final states, "
            f"{len(r['mixed'])} not their own, {len(r['wrong_reward'])} rewards below 1.0; "
            f"peak traced {r['peak'] / 2**20:,.0f} MiB, peak RSS {rss_mb:,.0f} MiB  {'PASS' if ok else 'FAIL'}"
        )
        for why in r["wrong_reward"][:3]:
            print(f"  reward below 1.0: {why}")
    print("all PASS" if not failed else f"{failed} FAIL")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
