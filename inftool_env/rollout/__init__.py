"""Rollouts at scale: ``rollout()`` locally on asyncio or on Ray actors, each trajectory streamed to JSONL.

Ray is optional (the ``ray`` extra); ``inftool_env.rollout.ray_workers`` imports it only when used.
"""

from inftool_env.rollout.local import rollout_local
from inftool_env.rollout.plan import WORKER_LOST, Episode, Finished, JsonlSink, RolloutSummary, Tally, plan_episodes
from inftool_env.rollout.run import rollout
from inftool_env.rollout.shared import SharedServersEnv, parse_server_urls

__all__ = [
    "WORKER_LOST",
    "Episode",
    "Finished",
    "JsonlSink",
    "RolloutSummary",
    "SharedServersEnv",
    "Tally",
    "parse_server_urls",
    "plan_episodes",
    "rollout",
    "rollout_local",
]
