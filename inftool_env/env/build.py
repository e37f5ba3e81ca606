"""EnvConfig -> ToolEnv: compile the servers, load the tasks."""

from __future__ import annotations

from pathlib import Path

from inftool_env.compiler import compile_spec
from inftool_env.env.config import EnvConfig, ServerConfig
from inftool_env.env.core import ToolEnv
from inftool_env.task_sources import load_task_source


def resolve_spec(server: ServerConfig, base_dir: Path) -> str:
    """Manifest-relative spec paths become absolute; ``bfcl:``/``python:``/URLs pass through."""
    if ":" in server.spec.split("/")[0] or server.spec.startswith(("http://", "https://")):
        return server.spec
    return str((base_dir / server.spec).resolve())


def build_env(config: EnvConfig, base_dir: Path) -> ToolEnv:
    servers = {s.name: resolve_spec(s, base_dir) for s in config.servers}
    # Relative spec paths are made absolute so stdio subprocesses find them from any directory.
    config = config.model_copy(
        update={"servers": [s.model_copy(update={"spec": servers[s.name]}) for s in config.servers]}
    )
    compiled = {s.name: compile_spec(servers[s.name], backend=s.backend) for s in config.servers}
    return ToolEnv(config, load_task_source(config.tasks, base_dir, config), compiled)
