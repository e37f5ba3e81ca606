"""Trainer adapters and the closed loop (installed as ``inftool_env.train``).

Empty until the training work lands: OpenRLHF's agent function, verifiers, TRL and the built-in
small GRPO go here, all on the same env and the same gated reward (see DESIGN.md).
"""
