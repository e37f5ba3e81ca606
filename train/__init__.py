"""Trainer adapters and the closed loop (installed as ``inftool_env.train``).

``grpo/`` the built-in trainer, ``loop/`` the closed loop (``inftool evolve``), and one adapter per
trainer (``openrlhf/``, ``trl/``, ``verifiers/``, ``skyrl/``), all on the same env and the same gated
reward (see DESIGN.md); ``checks`` is what every adapter checks before any work.
"""
