from __future__ import annotations

import gymnasium
import numpy as np

from inftool_env.env.gym import GymToolEnv


def oracle_call():
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "removeBook", "arguments": {"bookId": "boo_1"}}}],
    }


def test_sync_episode_with_unicode_and_render():
    env = GymToolEnv("inftool/Bookshelf-v0", render_mode="ansi")
    obs, info = env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(oracle_call())
    obs, reward, terminated, truncated, info = env.step("Erledigt — 完了 ✓")
    assert terminated and reward == 1.0 and info["trajectory"]["task_id"] == "bookshelf-remove"
    assert "[assistant] Erledigt — 完了 ✓" in env.render()
    env.close()
    env.close()


def make_env():
    return GymToolEnv("inftool/Bookshelf-v0")


def test_sync_vector_env():
    envs = gymnasium.vector.SyncVectorEnv([make_env, make_env])
    obs, info = envs.reset(seed=[1, 2])
    assert len(obs["messages"]) == 2 if isinstance(obs, dict) else len(obs) == 2
    actions = np.array(["hello", "hallo"], dtype=object)
    envs.step(actions)
    envs.close()


def test_async_vector_env_without_shared_memory():
    envs = gymnasium.vector.AsyncVectorEnv([make_env, make_env], shared_memory=False)
    try:
        envs.reset(seed=3)
        _, rewards, terminated, truncated, _ = envs.step(np.array(["hello", "hallo"], dtype=object))
        assert rewards.shape == (2,)
    finally:
        envs.close()


def test_gymnasium_make_takes_trainer_driven():
    from inftool_env.env.config import NO_DEADLINE_S

    env = gymnasium.make("inftool_env.envs:inftool/Bookshelf-v0", trainer_driven=True)
    try:
        assert env.unwrapped.core.config.limits.episode_timeout_s == NO_DEADLINE_S
    finally:
        env.close()


def test_gym_envs_over_workers_of_one_env_each_keep_their_connection():
    # Each GymToolEnv runs its own event loop; workers spawned from one env share its connections only on
    # the loop that opened them. Sharing across loops ran siblings over the first env's loop, and closing
    # that env ended their episodes with a server error.
    from inftool_env.registration import make

    base = make("inftool/Bookshelf-v0")
    first, second = GymToolEnv(env=base.spawn()), GymToolEnv(env=base.spawn())
    for env in (first, second):
        env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    first.step(oracle_call())
    first.close()
    second.step(oracle_call())
    _, reward, terminated, truncated, info = second.step("Done.")
    assert (reward, terminated, truncated) == (1.0, True, False), info
    second.close()
