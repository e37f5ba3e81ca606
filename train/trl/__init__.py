"""TRL (``GRPOTrainer``) over our environments: ``environment_factory``, ``build_dataset`` and ``gated_reward``.

Installed as ``inftool_env.train.trl``; imports are absolute, so ``import trl`` always means TRL itself.

    from trl import GRPOConfig, GRPOTrainer
    from inftool_env.train.trl import build_dataset, environment_factory, gated_reward

    env_id = "inftool/Bookshelf-v0"
    GRPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", args=GRPOConfig(...), train_dataset=build_dataset(env_id),
                environment_factory=environment_factory(env_id), reward_funcs=gated_reward).train()
"""

from inftool_env.train.trl.dataset import build_dataset
from inftool_env.train.trl.env import USER_TOOL, InftoolTrlEnv, TrlEnvFactory, environment_factory, gated_reward

__all__ = ["USER_TOOL", "InftoolTrlEnv", "TrlEnvFactory", "build_dataset", "environment_factory", "gated_reward"]
