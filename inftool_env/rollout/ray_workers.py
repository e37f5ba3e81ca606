"""Rollouts on Ray: W actors, each with its own env and servers, fed episodes through ``ray.wait``.

Each actor (``RolloutWorker``) is an async actor: it builds the env in its own process (``make``, as
everywhere) or reaches shared servers by URL, and runs up to ``concurrency`` episodes at once on its
event loop with ``run_episode``. The driver keeps that many method calls in flight per actor and hands
each finished episode on as ``ray.wait`` returns it — Ray does the scheduling, placement and transport.

Nothing is lost: an episode whose actor died comes back as a trajectory truncated ``worker_lost`` with
the error (never retried: it may have had effects). Ray restarts a died actor once; it gets episodes again
when it answers, one gone for good gets none, and if no actor is left the rest are recorded as lost too.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from inftool_env.env.batch import play
from inftool_env.env.pool import WorkerPool
from inftool_env.errors import InftoolError
from inftool_env.rollout.plan import WORKER_LOST, Episode, Finished, broken
from inftool_env.rollout.shared import with_servers

# Set in each actor's process to its rank, so a policy can tell which worker it runs on (e.g. a device).
WORKER_ENV_VAR = "INFTOOL_ROLLOUT_WORKER"
PING_TIMEOUT_S = 120.0  # how long a died actor may take to come back when nothing else is running


def require_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise InftoolError("--workers/--ray need Ray, an optional extra: pip install 'inftool-env[ray]'") from None
    return ray


class RolloutWorker:
    """The body of one Ray actor. ``policy`` is a policy string (resolved here, so each actor has its own
    model client) or a picklable policy factory."""

    def __init__(
        self, env_id: str, policy: str | Callable[..., Any], rank: int, server_urls: Mapping[str, str]
    ) -> None:
        os.environ[WORKER_ENV_VAR] = str(rank)
        from inftool_env.policies import resolve_policy
        from inftool_env.registration import make

        self.name = f"ray-{rank}"
        self.env = with_servers(make(env_id), server_urls)
        self.policy = resolve_policy(policy) if isinstance(policy, str) else policy
        self.pool = WorkerPool(self.env)  # one worker per episode in flight, grown up to the actor's concurrency

    async def ready(self) -> str:
        return self.name

    async def run(self, episode: Episode) -> Finished:
        keys: list[str | None] = []  # the key the servers held the episode's state under, read before it ends
        trajectory = await play(self.pool, self.policy, seed=episode.seed, task_id=episode.task_id,
                                on_end=lambda worker: keys.append(worker.episode_id))  # fmt: skip
        return Finished(episode.index, self.name, trajectory, keys[0])

    async def close(self) -> None:
        from inftool_env.policies import close_policy

        await self.pool.close()
        await self.env.close()
        await close_policy(self.policy)


class RayRollout:
    """``workers`` RolloutWorker actors on the Ray cluster this process is connected to."""

    def __init__(
        self,
        env_id: str,
        policy: str | Callable[..., Any],
        *,
        workers: int,
        concurrency: int = 8,
        server_urls: Mapping[str, str] | None = None,
        worker_cpus: float = 1.0,
        start_timeout_s: float = 300.0,
    ) -> None:
        if workers < 1 or concurrency < 1:
            raise InftoolError(f"expected at least 1 worker and 1 episode per worker, not {workers} and {concurrency}")
        self.ray = ray = require_ray()
        self.env_id, self.concurrency = env_id, concurrency
        actor = ray.remote(RolloutWorker).options(
            num_cpus=worker_cpus, max_concurrency=concurrency, max_restarts=1, max_task_retries=0
        )
        self.actors = [actor.remote(env_id, policy, rank, dict(server_urls or {})) for rank in range(workers)]
        try:
            ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            cpus = ray.cluster_resources().get("CPU", 0)
            self.close(graceful=False)
            raise InftoolError(
                f"{workers} Ray workers of {worker_cpus:g} CPU each did not start within {start_timeout_s:g} s "
                f"(the cluster has {cpus:g} CPUs)"
            ) from None
        except ray.exceptions.RayActorError as exc:
            self.close(graceful=False)
            raise InftoolError(f"a Ray rollout worker could not start: {_cause(exc)}") from None

    def run(self, episodes: Sequence[Episode], on_finished: Callable[[Finished], None]) -> None:
        """Every episode ends in exactly one ``on_finished`` call, in the order they end."""
        ray = self.ray
        waiting = deque(episodes)
        live = set(range(len(self.actors)))
        load = dict.fromkeys(live, 0)
        in_flight: dict[Any, tuple[Episode, int]] = {}
        pings: dict[Any, int] = {}  # an actor whose call failed, asked whether it is back (Ray restarts it once)

        def feed(rank: int) -> None:
            while waiting and load[rank] < self.concurrency:
                episode = waiting.popleft()
                in_flight[self.actors[rank].run.remote(episode)] = (episode, rank)
                load[rank] += 1

        for rank in sorted(live):
            feed(rank)
        while in_flight or (pings and waiting):
            # Pings alone are waited on for a bounded time: an actor that never comes back is dead.
            ready, _ = ray.wait([*in_flight, *pings], num_returns=1, timeout=None if in_flight else PING_TIMEOUT_S)
            if not ready:
                pings.clear()
            elif ready[0] in pings:
                rank = pings.pop(ready[0])
                try:
                    ray.get(ready[0])
                except ray.exceptions.RayError:
                    continue  # gone for good
                live.add(rank)
                feed(rank)
            else:
                episode, rank = in_flight.pop(ready[0])
                load[rank] -= 1
                finished, died = self._collect(ready[0], episode, rank)
                if died and rank in live:  # fed again only once it answers (Ray retries the ping while it restarts)
                    live.discard(rank)
                    pings[self.actors[rank].ready.options(max_task_retries=-1).remote()] = rank
                on_finished(finished)
                if rank in live:
                    feed(rank)
            if not live and not pings:
                while waiting:
                    episode = waiting.popleft()
                    orphan = broken(self.env_id, episode, WORKER_LOST, "no Ray rollout worker left alive")
                    on_finished(Finished(episode.index, "none", orphan))

    def _collect(self, ref: Any, episode: Episode, rank: int) -> tuple[Finished, bool]:
        """The episode's end, and whether its actor died under it."""
        ray = self.ray
        try:
            finished: Finished = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            lost = broken(self.env_id, episode, WORKER_LOST, f"Ray worker ray-{rank} died: {_cause(exc)}")
            return Finished(episode.index, f"ray-{rank}", lost), True
        except ray.exceptions.RayError as exc:  # the call itself failed (run() catches the env's errors)
            failed = broken(self.env_id, episode, "error", f"{type(exc).__name__}: {_cause(exc)}")
            return Finished(episode.index, f"ray-{rank}", failed), False
        return finished, False

    def close(self, *, graceful: bool = True) -> None:
        """Close every live actor's envs (their subprocesses end with them), then end the actors."""
        ray = self.ray
        closing = [a.close.remote() for a in self.actors] if graceful else []
        for ref in closing:
            try:
                ray.get(ref, timeout=60)
            except ray.exceptions.RayError:  # dead already, or stuck: killed below either way
                continue
        for actor in self.actors:
            ray.kill(actor)


def _cause(exc: BaseException) -> str:
    """The last line of a Ray error (its message ends with the root cause)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
