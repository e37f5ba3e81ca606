"""EnvConfig -> ToolEnv: compile the servers, load the tasks."""

from __future__ import annotations

import os
import re
from pathlib import Path

from inftool_env.compiler import compile_spec
from inftool_env.env.config import EnvConfig, ServerConfig
from inftool_env.env.core import ToolEnv
from inftool_env.errors import RegistrationError
from inftool_env.task_sources import load_task_source

_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")  # ${NAME} or ${NAME:-default}, as in a shell


def resolve_spec(server: ServerConfig, base_dir: Path) -> str:
    """Manifest-relative spec paths become absolute; ``bfcl:``/``python:``/URLs pass through. A path may
    name an environment variable, ``${NAME}`` or ``${NAME:-default}`` (a corpus kept elsewhere)."""
    spec = _expand(server)
    if ":" in spec.split("/")[0] or spec.startswith(("http://", "https://")):
        return spec
    return str((base_dir / spec).resolve())


def _expand(server: ServerConfig) -> str:
    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name) or default
        if found is None:
            raise RegistrationError(f"server {server.name!r}: its spec {server.spec!r} names ${{{name}}}, which is "
                                    f"not set (set it, or give a default: ${{{name}:-PATH}})")  # fmt: skip
        return found

    return _VARIABLE.sub(value, server.spec)


def build_env(config: EnvConfig, base_dir: Path) -> ToolEnv:
    try:
        servers = {s.name: resolve_spec(s, base_dir) for s in config.servers}
    except RegistrationError as exc:
        raise RegistrationError(f"{config.id}: {exc}") from None
    # Relative spec paths are made absolute so stdio subprocesses find them from any directory.
    config = config.model_copy(
        update={"servers": [s.model_copy(update={"spec": servers[s.name]}) for s in config.servers]}
    )
    compiled = {s.name: compile_spec(servers[s.name], backend=s.backend) for s in config.servers}
    return ToolEnv(config, load_task_source(config.tasks, base_dir, config), compiled)
