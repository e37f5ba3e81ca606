"""inftool-env: API specs compiled into real MCP servers and multi-turn tool-use environments."""

from inftool_env.compiler import compile_spec, load_suite
from inftool_env.errors import InftoolError, SpecError
from inftool_env.spec import ToolSpec, ToolSuite, load_spec

__version__ = "0.1.0"

__all__ = [
    "InftoolError",
    "SpecError",
    "ToolSpec",
    "ToolSuite",
    "__version__",
    "compile_spec",
    "load_spec",
    "load_suite",
]
