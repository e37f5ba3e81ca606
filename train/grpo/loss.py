"""The GRPO objective on exactly the sampled tokens.

- Advantages are normalised within a group: (r - mean) / (std + eps), over the samples the env
  scored (one that broke on infrastructure is left out, not counted as a 0). A group whose samples all
  score the same has no signal: its advantages are all 0, it is counted (``zero_signal_groups``) and
  left out of the loss (no forward or backward spent on it).
- The loss is PPO's clipped surrogate. Its ratio's denominator mu is the rollout's logprob from the
  episode's token record: the raw (temperature-1) one, except for an explored token, and each token of
  a reply ``explore_balanced`` drew not to call, whose records keep the logprob of the draw that chose
  them (see chat.py). Two forms (``clip_to``):
  - "behaviour" (default): ratio = pi_now / mu, clipped. For an explored token that ratio is the
    importance weight, clipped with the rest: a token drawn more often than the policy would (its
    likeliest, flattened by the temperature; pi/mu > 1 + clip) gets no gradient when it wins, and
    a rarer one (pi/mu < 1 - clip) none when it loses. That leans the first token away from the
    policy's likeliest, for this model mostly a call: the measured runs kept irrelevance up with it
    and lost it without (README, Measured).
  - "proximal" (decoupled): ratio = pi_now / pi_prox, clipped, pi_prox being the policy at the
    step's first update (so the ratio is 1 there), and each token's surrogate weighed by
    w = pi_prox / mu truncated at ``is_cap`` and not differentiated. Every explored token gets
    its gradient whichever the sign of its advantage. Without exploration the two agree (w is 1
    up to float noise).
  Only the record's assistant tokens (mask 1) are scored; system, user, tool-result and template
  tokens are context only. With ``text_credit`` "first", a reply that makes no call is scored at its
  first token alone, the rest of it context too; with ``irrelevance_credit`` "first", so is every reply
  to an irrelevance task (``credited``).
- Token-level mean over the step (every sampled token weighs the same, whatever its episode's
  length), plus ``kl`` times the k3 estimate of KL to the frozen reference when ``kl > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inftool_env.train.grpo.rollout import Group, reward_of
from inftool_env.trajectory import Trajectory

SIGNAL_EPS = 1e-8
TRUNCATION_SLACK = 1e-3  # a weight counts as truncated past is_cap by more than float noise


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


def scored_advantages(group: Group) -> list[float]:
    """Advantages normalised over the samples the env scored; one that broke before it was scored (an
    infrastructure failure, not the policy's answer) gets 0 and moves neither the mean nor the spread."""
    scored = [i for i, t in enumerate(group.samples) if t.reward is not None]
    out = [0.0] * len(group.samples)
    if scored:
        for i, a in zip(scored, group_advantages([reward_of(group.samples[i]) for i in scored]), strict=True):
            out[i] = a
    return out


def rows_of(group: Group, advantages: list[float], *, text_credit: str = "all",
            irrelevance_credit: str = "all") -> list[Row]:  # fmt: skip
    """The group's trainable samples: those scored, with a token record and at least one sampled token.
    "first" scores a reply at its first token only: with ``text_credit``, a reply that makes no call
    (``credited``); with ``irrelevance_credit``, every reply to an irrelevance task, where the reward judges
    only whether it calls (a wrong call's words, credited against it, would teach against writing calls)."""
    task = group.pick.task if group.pick is not None else None
    judged_by_calling = irrelevance_credit == "first" and task is not None and task.category == "irrelevance"
    rows = []
    for trajectory, advantage in zip(group.samples, advantages, strict=True):
        ids, mask, lps = trajectory.token_ids, trajectory.assistant_mask, trajectory.logprobs
        if trajectory.reward is None or not ids or mask is None or lps is None:
            continue
        targets = [i for i, m in enumerate(mask) if m]
        if judged_by_calling:
            targets = [reply[0] for reply in _replies(targets)]
        elif text_credit == "first":
            targets = credited(trajectory, targets)
        if targets:
            rows.append(Row(list(ids), targets, [lps[i] for i in targets], advantage))
    return rows


def credited(trajectory: Trajectory, targets: list[int]) -> list[int]:
    """``targets`` with each reply that makes no call (no call parsed, none malformed) cut to its first
    token, the one that decided not to call: the gated reward judges such a reply by that alone, so the
    words after it would be credited for nothing they did. The record's replies are its runs of sampled
    positions, one per turn in order; where they do not line up with the turns, every position stays."""
    replies = _replies(targets)
    if len(replies) != len(trajectory.turns):
        return targets
    return [i for reply, turn in zip(replies, trajectory.turns, strict=True)
            for i in (reply if turn.calls or turn.parse_error is not None else reply[:1])]  # fmt: skip


def _replies(targets: list[int]) -> list[list[int]]:
    """The record's sampled positions split into replies: runs of consecutive positions."""
    runs: list[list[int]] = []
    for i in targets:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


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


def prepare(groups: list[Group], *, text_credit: str = "all", irrelevance_credit: str = "all") -> Prepared:
    batches, advantages, no_signal, untrainable = [], [], [], 0
    for group in groups:
        adv = scored_advantages(group)
        advantages.append(adv)
        rows = rows_of(group, adv, text_credit=text_credit, irrelevance_credit=irrelevance_credit)
        untrainable += len(group.samples) - len(rows)
        no_signal.append(all(a == 0.0 for a in adv))
        if rows and not no_signal[-1]:
            batches.append(rows)
    return Prepared(batches, advantages, no_signal, untrainable)


def policy_loss(
    new: list[Any],
    rows: list[Row],
    *,
    clip: float,
    kl: float,
    ref: list[Any] | None,
    normaliser: int,
    clip_to: str = "behaviour",
    prox: list[Any] | None = None,
    is_cap: float = 1.0,
) -> tuple[Any, dict[str, float]]:
    """The clipped surrogate (and KL) of one group, divided by ``normaliser`` (the step's token count)
    so that per-group backward passes add up to the step's token-level mean. ``clip_to``: see the
    module doc; with "proximal", ``prox`` holds the policy's logprobs at the step's first update (None
    at that update: ``new`` itself)."""
    import torch

    total = torch.zeros((), device=new[0].device)
    clipped = ratio_sum = kl_sum = weight_sum = truncated = 0.0
    for i, (logp, row) in enumerate(zip(new, rows, strict=True)):
        mu = torch.tensor(row.old, device=logp.device)
        if clip_to == "proximal":
            near = logp.detach() if prox is None else prox[i]
            weight = (near - mu).exp().clamp(max=is_cap)
            truncated += float((near - mu > math.log(is_cap) + TRUNCATION_SLACK).sum())
        else:
            near, weight = mu, torch.ones_like(mu)
        ratio = (logp - near).exp()
        surrogate = torch.minimum(ratio * row.advantage, ratio.clamp(1 - clip, 1 + clip) * row.advantage)
        total = total - (weight * surrogate).sum()
        clipped += float(((ratio - 1).abs() > clip).sum())
        ratio_sum += float(ratio.detach().sum())
        weight_sum += float(weight.sum())
        if ref is not None:
            log_ref = ref[i] - logp  # k3: exp(d) - d - 1 >= 0, unbiased for KL(policy || reference)
            k3 = log_ref.exp() - log_ref - 1
            total = total + kl * k3.sum()
            kl_sum += float(k3.detach().sum())
    stats = {"clipped": clipped, "ratio_sum": ratio_sum, "kl_sum": kl_sum, "weight_sum": weight_sum,
             "truncated": truncated}  # fmt: skip
    return total / normaliser, stats
