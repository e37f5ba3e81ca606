"""Task synthesis from raw specs: every category, verified ground truth, gap-targeted regeneration."""

from inftool_env.synth.categories import CATEGORIES
from inftool_env.synth.run import SynthRun, synthesize, synthesize_async
from inftool_env.synth.target import TargetPlan, plan_targets
from inftool_env.synth.verify import verify_task
from inftool_env.synth.world import ManifestSource, SynthError, open_world

__all__ = [
    "CATEGORIES",
    "ManifestSource",
    "SynthError",
    "SynthRun",
    "TargetPlan",
    "open_world",
    "plan_targets",
    "synthesize",
    "synthesize_async",
    "verify_task",
]
