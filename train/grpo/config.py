"""What a GRPO run is asked to do (pydantic: it crosses the CLI and is saved with the trainer state)
and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GRPOConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(default="embedded", description="'embedded', or an HF directory / checkpoint (hf:PATH too)")
    steps: int = Field(default=20, ge=0, description="GRPO steps (each: rollouts, then one update)")
    tasks_per_step: int = Field(default=4, ge=1)
    group: int = Field(default=4, ge=2, description="samples per task; advantages are normalised within it")
    lr: float = Field(default=1e-5, gt=0)
    clip: float = Field(default=0.2, gt=0, description="PPO ratio clip (1 - clip, 1 + clip)")
    kl: float = Field(default=0.0, ge=0, description="KL penalty to the frozen start; 0 (default) runs without")
    temperature: float = Field(default=1.0, ge=0)
    max_new_tokens: int = Field(default=128, ge=1, description="per assistant turn")
    max_turns: int | None = Field(default=None, ge=1, description="assistant turns per episode; None: the env's own")
    episode_timeout_s: float | None = Field(
        default=None, gt=0, description="an episode's wall-clock limit; None: none. The env's own (600 s, for hung "
        "endpoints) cut a step's batched episodes mid-reply on a slow or shared CPU, scored as they stood",
    )  # fmt: skip
    train_layers: int | None = Field(default=4, ge=1, description="top N decoder layers trainable; None: all")
    lora: int | None = Field(default=None, ge=1, description="LoRA rank (adapters merged into checkpoints)")
    updates: int = Field(default=1, ge=1, description="optimiser steps on each step's rollouts (clipping bites from 2)")
    max_grad_norm: float = Field(default=1.0, gt=0)
    sft_warmup_steps: int = Field(default=0, ge=0, description="supervised steps on verified oracle episodes first")
    sft_batch: int = Field(default=4, ge=1, description="episodes per supervised step")
    sft_decides: Literal["never", "pairs", "always"] = Field(
        default="never", description="where the warm start trains a reply's first token (call or not): never "
        "(it teaches how to call, GRPO whether), only on near-miss/twin pairs, or always")  # fmt: skip
    sft_call_form: bool = Field(
        default=False, description="where the warm start leaves a call reply's first token out: train how the "
        "call opens (the template's tag, not a code fence), renormalised over the tokens a call can open with "
        "(measured: it still raised how often the model calls)")  # fmt: skip
    explore_temperature: float | None = Field(
        default=None, gt=0, description="draw each reply's first token (call or answer) from the top "
        "explore_top_k at this temperature, the loss importance-weighted for it; None: plain sampling")  # fmt: skip
    explore_top_k: int = Field(default=8, ge=2, description="tokens a reply's explored first token is drawn from")
    explore_after_call: bool = Field(
        default=False, description="with explore_temperature: explore the token after each closed tool call "
        "too (another call, or the end of the reply)")  # fmt: skip
    clip_to: Literal["behaviour", "proximal"] = Field(
        default="behaviour", description="the clipped ratio: pi/mu (behaviour), or pi over the step's first "
        "policy with pi/mu as a truncated weight (proximal); they differ on explored tokens only")  # fmt: skip
    is_cap: float = Field(default=1.0, gt=0, description="with clip_to proximal: truncation of the weight pi/mu")
    save_every: int = Field(default=1, ge=1, description="steps between trainer-state saves (resume points)")
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"

    @model_validator(mode="after")
    def _explore_after_call_explores(self) -> GRPOConfig:
        if self.explore_after_call and self.explore_temperature is None:
            raise ValueError("explore_after_call explores at explore_temperature: set it too (--explore-first T)")
        if self.temperature == 0 and self.explore_temperature is None and self.steps:
            raise ValueError("temperature 0 samples every group's replies alike, so no group carries a signal: "
                             "set it above 0, or explore the first token (--explore-first T)")  # fmt: skip
        return self


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path  # an HF directory with the tokenizer: `hf:PATH` loads it
    task_success: dict[str, float]  # task id -> share of its training rollouts that scored 1.0
    metrics_path: Path  # one JSON line per step
    steps: int  # GRPO steps done in all (resumed ones included)
    rollouts_path: Path  # one JSON line per group: rewards, advantages, each sample's reward breakdown
