"""Backends execute tool calls behind a compiled server: simulated, Python, BFCL, proxy."""

from inftool_env.backends.base import Backend
from inftool_env.backends.stateful import StatefulBackend, StatefulState

__all__ = ["Backend", "StatefulBackend", "StatefulState"]
