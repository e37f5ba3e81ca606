"""The closed loop (``inftool evolve``) and the GGUF export of trained checkpoints. See evolve.py."""

from inftool_env.train.loop.evolve import Evolve, EvolveConfig, evolve
from inftool_env.train.loop.export import ExportResult, export_gguf, hf_to_gguf

__all__ = ["Evolve", "EvolveConfig", "ExportResult", "evolve", "export_gguf", "hf_to_gguf"]
