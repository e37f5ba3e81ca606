"""``vf-eval inftool_verifiers``: verifiers imports a taskset id as a top-level module, so this name
re-exports the adapter (``inftool_env.train.verifiers.taskset``) under one."""

from inftool_env.train.verifiers.taskset import InftoolEnv, InftoolTaskset

__all__ = ["InftoolEnv", "InftoolTaskset"]
