"""Importing this module registers every inftool environment with Gymnasium.

gymnasium.make("inftool_env.envs:inftool/BfclMathAPI-v0")   # imports this module, then makes
import inftool_env.envs; gymnasium.make("inftool/BfclMathAPI-v0")
"""

from __future__ import annotations

import gymnasium

from inftool_env.registration import Registry, default_registry

ENTRY_POINT = "inftool_env.env.gym:GymToolEnv"


def register_gymnasium(registry: Registry | None = None) -> list[str]:
    """Register (once) each id of ``registry`` with Gymnasium; returns the ids."""
    ids = (registry or default_registry()).ids()
    for env_id in ids:
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"env_id": env_id})
    return ids


register_gymnasium()
