"""OpenRLHF (0.11.2) on inftool environments: GRPO on Ray + vLLM + DeepSpeed.

- ``agent_func.py``: the file for ``--train.agent_func_path`` (``AGENT_FILE``): one isolated episode per
  prompt, our gated reward, token-exact feedback in the model's chat template;
- ``export_dataset`` / ``inftool export-openrlhf``: the prompt dataset, each label carrying its task;
- ``launch_grpo.sh`` (``LAUNCH_SCRIPT``): the GRPO run, every hyperparameter stated.

Importing this package does not import OpenRLHF; only the agent file does.
"""

from inftool_env.train.openrlhf.dataset import (
    AGENT_FILE,
    LAUNCH_SCRIPT,
    EpisodeLabel,
    ExportSummary,
    add_commands,
    export_dataset,
)

__all__ = ["AGENT_FILE", "LAUNCH_SCRIPT", "EpisodeLabel", "ExportSummary", "add_commands", "export_dataset"]
