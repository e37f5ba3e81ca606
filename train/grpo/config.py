"""What a GRPO run is asked to do (pydantic: it crosses the CLI and is saved with the trainer state)
and what it hands back."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# `inftool train`'s flags where they are not the field's name dashed (None: no flag). Messages name both,
# since the same config is filled from flags (train) and from JSON field names (evolve's --grpo).
FLAGS = {"model": "--policy", "episode_timeout_s": "--episode-timeout", "explore_temperature": "--explore-first T",
         "max_grad_norm": None, "sft_batch": None, "save_every": None}  # fmt: skip
FLAG_SPELLINGS = {"policy": "model", "episode_timeout": "episode_timeout_s", "explore_first": "explore_temperature"}


def flag_of(field: str) -> str | None:
    """``inftool train``'s flag for a setting, if it has one."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def named(field: str) -> str:
    """A setting as both spellings know it: ``explore_temperature (--explore-first T)``."""
    flag = flag_of(field)
    return f"{field} ({flag})" if flag else field


class GRPOConfig(BaseModel):
    # strict: JSON's `true` is not a step count nor "yes" a switch; ints still fill float fields
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

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
    sft_lr: float | None = Field(
        default=None, gt=0, description="the warm start's learning rate; None: lr. It sets GRPO's rate apart "
        "(measured: GRPO at 5e-5 after a warm start at 1e-5 degraded BFCL)")  # fmt: skip
    sft_decides: Literal["never", "pairs", "always"] = Field(
        default="never", description="where the warm start trains a reply's first token (call or not): never "
        "(it teaches how to call, GRPO whether), only on near-miss/twin pairs, or always")  # fmt: skip
    sft_call_form: bool = Field(
        default=False, description="where the warm start leaves a call reply's first token out: train how the "
        "call opens (the template's tag, not a code fence), renormalised over the tokens a call can open with "
        "(measured: it still raised how often the model calls)")  # fmt: skip
    sft_keep_decision: float = Field(
        default=0.0, ge=0, description="weight of KL(start || policy) between calling and not at each reply's "
        "first token the warm start's loss leaves out: holds the starting model's decision while the rest of "
        "the reply is learnt; 0 (default): off")  # fmt: skip
    explore_temperature: float | None = Field(
        default=None, gt=0, description="draw each reply's first token (call or answer) from the top "
        "explore_top_k at this temperature, the loss importance-weighted for it; None: plain sampling")  # fmt: skip
    explore_top_k: int = Field(default=8, ge=2, description="tokens a reply's explored first token is drawn from")
    explore_after_call: bool = Field(
        default=False, description="with explore_temperature: explore the token after each closed tool call "
        "too (another call, or the end of the reply)")  # fmt: skip
    explore_balanced: bool = Field(
        default=False, description="with explore_temperature: draw a reply's first token's side, a call opener "
        "or not, at even odds, then the token from that side's top explore_top_k; a reply drawn not to call "
        "draws no call's start (tag, fence, JSON) later either, so a group tries both decisions; pair it with "
        "clip_to proximal (behaviour's clip withholds a likely side's wins)")  # fmt: skip
    clip_to: Literal["behaviour", "proximal"] = Field(
        default="behaviour", description="the clipped ratio: pi/mu (behaviour), or pi over the step's first "
        "policy with pi/mu as a truncated weight (proximal); they differ on explored tokens only")  # fmt: skip
    is_cap: float = Field(default=1.0, gt=0, description="with clip_to proximal: truncation of the weight pi/mu")
    partial_calls: bool = Field(
        default=False, description="reward a one-shot task's answer by the share of its calls that match (the "
        "gated reward's `calls` component: 2 of 3 asked calls right 0.67) in place of all or nothing, so a "
        "parallel group where no sample makes every call still has a signal; BFCL's verdict is unchanged")  # fmt: skip
    cut_fails: bool = Field(
        default=False, description="a sample with a reply cut at max_new_tokens scores 0 (the gate `finished`): "
        "an irrelevance task's text reply otherwise earns its reward however it ends, and runs at lr 5e-5 learnt "
        "to ramble. Measured: it took irrelevance's whole signal too (a long answer asked for is cut)")  # fmt: skip
    text_credit: Literal["all", "first"] = Field(
        default="all", description="the tokens of a reply that makes no call that carry its advantage: all, or "
        "its first only (the one that decides whether to call). The gated reward judges such a reply by its not "
        "calling, never by its words, so crediting them teaches whatever was sampled; keep 'all' where a user "
        "simulator reads them (an LLM user). Measured at lr 5e-5: the model stopped calling; at 1e-5: no collapse, "
        "and irrelevance did not move")  # fmt: skip
    irrelevance_credit: Literal["all", "first"] = Field(
        default="all", description="the tokens of a reply to an irrelevance task that carry its advantage: all, or "
        "its first only. The reward judges there only whether a reply calls, so a wrong call's words credited "
        "against it teach against writing calls anywhere. Measured at lr 5e-5 with text_credit 'first': the "
        "model stopped calling")  # fmt: skip
    rollout_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32", description="the weights rollouts sample from: the trained float32 ones, or a "
        "bfloat16 copy brought up to date at each step (half the bytes a decode step reads); its rounding makes "
        "mu differ from pi a little, so pair it with clip_to proximal, whose weight pi/mu takes it in")  # fmt: skip
    save_every: int = Field(default=1, ge=1, description="steps between trainer-state saves (resume points)")
    seed: int = Field(default=0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        """An unknown name with its likely meaning (train's flag spellings included), not just "extra"."""
        for name in data if isinstance(data, dict) else ():
            if name not in cls.model_fields:
                raise ValueError(f"unknown setting {name!r}{_did_you_mean(str(name), list(cls.model_fields))}")
        return data

    @field_validator("train_layers", mode="before")
    @classmethod
    def _all_layers(cls, value: Any) -> Any:
        return None if value == "all" else value  # the flag's spelling of None

    @field_validator("clip")
    @classmethod
    def _clip_bites(cls, value: float) -> float:
        if value >= 1:
            raise ValueError(f"{value:g} clips the ratio to ({1 - value:g}, {1 + value:g}), and a ratio is never "
                             "below 0, so its lower bound never bites: pick one below 1 (default 0.2)")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _every_setting_acts(self) -> GRPOConfig:
        """A setting that changes nothing is refused: it would be saved with the run, and a resume without it
        refused as other settings."""
        for field, needs in self._inert():
            default = type(self).model_fields[field].default
            if getattr(self, field) != default:
                leave = f"{field} off" if default is False else f"{field} at {default!r}"
                raise ValueError(f"{named(field)} has no effect without {needs}: set it too, or leave {leave}")
        if self.sft_call_form and self.sft_decides == "always":
            raise ValueError(f"{named('sft_call_form')} trains a call's first token where the warm start leaves it "
                             f"out, and {named('sft_decides')} 'always' leaves none out: drop one")  # fmt: skip
        if self.temperature == 0 and self.explore_temperature is None and self.steps:
            raise ValueError("temperature 0 samples every group's replies alike, so no group carries a signal: "
                             f"set it above 0, or explore the first token: {named('explore_temperature')}")  # fmt: skip
        return self

    def _inert(self) -> list[tuple[str, str]]:
        """(setting, what it needs) for each setting that changes nothing as the others stand."""
        exploring, warm = self.explore_temperature is not None, self.sft_warmup_steps > 0
        return [(field, needs) for field, acts, needs in (
            ("explore_after_call", exploring, named("explore_temperature")),
            ("explore_balanced", exploring, named("explore_temperature")),
            ("explore_top_k", exploring, named("explore_temperature")),
            ("is_cap", self.clip_to == "proximal", "clip_to 'proximal' (--clip-to proximal)"),
            ("sft_batch", warm, named("sft_warmup_steps")),
            ("sft_lr", warm, named("sft_warmup_steps")),
            ("sft_decides", warm, named("sft_warmup_steps")),
            ("sft_call_form", warm, named("sft_warmup_steps")),
            ("sft_keep_decision", warm, named("sft_warmup_steps")),
        ) if not acts]  # fmt: skip

    def effective(self) -> dict[str, Any]:
        """The settings as they act, a setting that changes nothing counted as its default: what a resume
        compares (a run saved with one, before such settings were refused, resumes without it)."""
        values = {field: getattr(self, field) for field in type(self).model_fields}
        for field, _ in self._inert():
            values[field] = type(self).model_fields[field].default
        return values


def _did_you_mean(name: str, fields: list[str]) -> str:
    spelt = name.lstrip("-").replace("-", "_")
    guess = FLAG_SPELLINGS.get(spelt) or (spelt if spelt in fields else None)
    close = [guess] if guess else difflib.get_close_matches(spelt, fields, n=1, cutoff=0.6)
    return f"; did you mean {named(close[0])}?" if close else f"; the settings: {', '.join(fields)}"


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path  # an HF directory with the tokenizer: `hf:PATH` loads it
    task_success: dict[str, float]  # task id -> share of its training rollouts that scored 1.0
    metrics_path: Path  # one JSON line per step
    steps: int  # GRPO steps done in all (resumed ones included)
    rollouts_path: Path  # one JSON line per group: rewards, advantages, each sample's reward breakdown
