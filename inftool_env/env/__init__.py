"""The multi-turn environment: async core, Gymnasium adapter, worker pool and batch runner, configuration."""

from inftool_env.env.batch import play, run_batch, run_episode
from inftool_env.env.config import EnvConfig, Limits, ServerConfig, TaskSource
from inftool_env.env.core import StepResult, ToolEnv
from inftool_env.env.pool import WorkerPool

__all__ = [
    "EnvConfig", "Limits", "ServerConfig", "StepResult", "TaskSource", "ToolEnv", "WorkerPool",
    "play", "run_batch", "run_episode",
]  # fmt: skip
