"""Every registered environment passes Gymnasium's checker and a scripted oracle episode."""

from __future__ import annotations

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from inftool_env.env.batch import run_episode
from inftool_env.env.gym import GymToolEnv
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import default_registry, make
from tests.conftest import shared_corpus_or_skip

IDS = default_registry().ids()


def make_or_skip(env_id: str):
    with shared_corpus_or_skip(env_id):
        return make(env_id)


def test_the_shipped_registry():
    assert {"inftool/Bookshelf-v0", "inftool/GoogleCalendar-v0", "inftool/YelpFusion-v0"} <= set(IDS)
    assert "inftool/OnePasswordConnect-v0" in IDS
    assert sum(i.startswith("inftool/Bfcl") for i in IDS) == 8


@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id):
    env = GymToolEnv(env=make_or_skip(env_id))
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.anyio
async def test_oracle_reaches_the_ground_truth(env_id):
    env = make_or_skip(env_id)
    try:
        # Every hand-checked task; the first three of each BFCL domain (all 200 run in test_bfcl_envs).
        for task in env.tasks[:3] if env_id.startswith("inftool/Bfcl") else env.tasks:
            trajectory = await run_episode(env, OraclePolicy, seed=0, task_id=task.id)
            assert trajectory.terminated and not trajectory.truncated, trajectory.truncation_reason
            assert trajectory.reward.reward == 1.0, (task.id, trajectory.reward)
    finally:
        await env.close()


def test_gymnasium_make_through_the_module_prefix():
    env = gymnasium.make("inftool_env.envs:inftool/Bookshelf-v0", disable_env_checker=True)
    try:
        obs, info = env.reset(seed=0)
        assert info["env_id"] == "inftool/Bookshelf-v0" and obs["messages"][-1]["role"] == "user"
    finally:
        env.close()
