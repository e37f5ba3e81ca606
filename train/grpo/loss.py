"""The GRPO objective on exactly the sampled tokens.

- Advantages are normalised within a group: (r - mean) / (std + eps). A group whose samples all
  score the same has no signal: its advantages are all 0, it is counted (``zero_signal_groups``) and
  left out of the loss (no forward or backward spent on it).
- The loss is PPO's clipped surrogate, ratio = exp(logp_now - logp_rollout), the rollout logprobs
  taken from the episode's token record (raw, temperature 1; for an explored first token, the
  logprob of the draw that chose it, so the ratio is pi/mu, the importance weight: see chat.py).
  Only the record's assistant tokens (mask 1) are scored; system, user, tool-result and template
  tokens are context only.
- Token-level mean over the step (every sampled token weighs the same, whatever its episode's
  length), plus ``kl`` times the k3 estimate of KL to the frozen reference when ``kl > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inftool_env.train.grpo.rollout import Group, reward_of

SIGNAL_EPS = 1e-8


@dataclass(frozen=True)
class Row:
    """One sample as the loss sees it: its token record, the positions it sampled, their rollout
    logprobs, and its advantage."""

    ids: list[int]
    targets: list[int]
    old: list[float]
    advantage: float


def group_advantages(rewards: list[float], eps: float = 1e-6) -> list[float]:
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    if std < SIGNAL_EPS:
        return [0.0] * len(rewards)
    return [(r - mean) / (std + eps) for r in rewards]


def rows_of(group: Group, advantages: list[float]) -> list[Row]:
    """The group's trainable samples: those with a token record and at least one sampled token."""
    rows = []
    for trajectory, advantage in zip(group.samples, advantages, strict=True):
        ids, mask, lps = trajectory.token_ids, trajectory.assistant_mask, trajectory.logprobs
        if not ids or mask is None or lps is None:
            continue
        targets = [i for i, m in enumerate(mask) if m]
        if targets:
            rows.append(Row(list(ids), targets, [lps[i] for i in targets], advantage))
    return rows


@dataclass(frozen=True)
class Prepared:
    """A step's rollouts ready for the update: the groups with signal, as rows, and the counts."""

    batches: list[list[Row]]
    advantages: list[list[float]]  # per group, every sample (zero for groups without signal)
    no_signal: list[bool]  # per group: its samples all scored the same
    untrainable_samples: int  # no token record (broken episode, or a template the record cannot keep)

    @property
    def zero_signal_groups(self) -> int:
        return sum(self.no_signal)


def prepare(groups: list[Group]) -> Prepared:
    batches, advantages, no_signal, untrainable = [], [], [], 0
    for group in groups:
        adv = group_advantages([reward_of(t) for t in group.samples])
        advantages.append(adv)
        rows = rows_of(group, adv)
        untrainable += len(group.samples) - len(rows)
        no_signal.append(all(a == 0.0 for a in adv))
        if rows and not no_signal[-1]:
            batches.append(rows)
    return Prepared(batches, advantages, no_signal, untrainable)


def policy_loss(
    new: list[Any], rows: list[Row], *, clip: float, kl: float, ref: list[Any] | None, normaliser: int
) -> tuple[Any, dict[str, float]]:
    """The clipped surrogate (and KL) of one group, divided by ``normaliser`` (the step's token count)
    so that per-group backward passes add up to the step's token-level mean."""
    import torch

    total = torch.zeros((), device=new[0].device)
    clipped = ratio_sum = kl_sum = 0.0
    for i, (logp, row) in enumerate(zip(new, rows, strict=True)):
        old = torch.tensor(row.old, device=logp.device)
        ratio = (logp - old).exp()
        surrogate = torch.minimum(ratio * row.advantage, ratio.clamp(1 - clip, 1 + clip) * row.advantage)
        total = total - surrogate.sum()
        clipped += float(((ratio - 1).abs() > clip).sum())
        ratio_sum += float(ratio.detach().sum())
        if ref is not None:
            log_ref = ref[i] - logp  # k3: exp(d) - d - 1 >= 0, unbiased for KL(policy || reference)
            k3 = log_ref.exp() - log_ref - 1
            total = total + kl * k3.sum()
            kl_sum += float(k3.detach().sum())
    stats = {"clipped": clipped, "ratio_sum": ratio_sum, "kl_sum": kl_sum}
    return total / normaliser, stats
