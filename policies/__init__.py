"""Assistant policies (installed as ``inftool_env.policies``), named on the command line by one string.

Available now: ``oracle`` (plays each task's ground truth). The model-backed policies — an
OpenAI-compatible endpoint, HF transformers, vLLM, GGUF — land with the policies work and will be
named the same way (``openai:URL#MODEL``, ``hf:PATH``, ``vllm:PATH``, ``gguf:PATH``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.tasks import Task

PLANNED = ("openai:", "hf:", "vllm:", "gguf:")


def resolve_policy(spec: str) -> Callable[[Task], Any]:
    """A policy string -> a factory making one policy per episode (given the episode's task)."""
    if spec == "oracle":
        from inftool_env.policies.oracle import OraclePolicy

        return OraclePolicy
    if spec.startswith(PLANNED):
        raise PolicyError(f"policy {spec!r}: model-backed policies are not available yet; available: oracle")
    raise PolicyError(f"unknown policy {spec!r}; available: oracle")
