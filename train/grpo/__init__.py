"""The built-in GRPO trainer (torch, transformers; peft for LoRA): rollouts through our envs, the
gated reward, the loss on exactly the sampled tokens. See trainer.py."""

from inftool_env.train.grpo.config import GRPOConfig, TrainResult
from inftool_env.train.grpo.trainer import atrain_grpo, train_grpo

__all__ = ["GRPOConfig", "TrainResult", "atrain_grpo", "train_grpo"]
