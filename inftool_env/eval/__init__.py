"""Evaluation: a policy on an environment's tasks (BFCL categories join here with the rewards work)."""

from inftool_env.eval.runner import EvalSummary, evaluate, summarize

__all__ = ["EvalSummary", "evaluate", "summarize"]
