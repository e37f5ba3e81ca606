"""The multi-turn environment: async core, Gymnasium adapter, batch runner, configuration."""

from inftool_env.env.batch import run_batch, run_episode
from inftool_env.env.config import EnvConfig, Limits, ServerConfig, TaskSource
from inftool_env.env.core import StepResult, ToolEnv

__all__ = ["EnvConfig", "Limits", "ServerConfig", "StepResult", "TaskSource", "ToolEnv", "run_batch", "run_episode"]
