"""The built-in GRPO trainer: rollouts through our envs on the weights being trained, the gated
reward, group-normalised advantages, the clipped loss on the sampled tokens, one process.

Each step: sample ``tasks_per_step`` tasks, play ``group`` episodes of each (generation and env),
update (optimisation), log a metrics line with the wall time split between the three, save the
trainer state. Optionally first ``sft_warmup_steps`` supervised steps on verified oracle episodes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inftool_env.errors import InftoolError
from inftool_env.parsing.json_formats import CLOSE
from inftool_env.tasks import Task
from inftool_env.train.grpo import model as M
from inftool_env.train.grpo.chat import TorchChat
from inftool_env.train.grpo.config import GRPOConfig, TrainResult
from inftool_env.train.grpo.loss import Prepared, policy_loss, prepare
from inftool_env.train.grpo.rollout import (
    EnvPool,
    EnvSource,
    Group,
    env_name,
    gate_cut_replies,
    is_success,
    reward_of,
    rollout_groups,
    schedule,
)
from inftool_env.train.grpo.sft import (
    Example,
    call_form_nll,
    call_mass,
    call_openers,
    call_starts,
    decision_kl,
    oracle_examples,
    over_budget,
)
from inftool_env.train.grpo.state import (
    append_log,
    cut_log,
    load_state,
    pool_fingerprint,
    read_log,
    restore_rng,
    save_state,
    state_file,
)
from inftool_env.train.grpo.trunk import PairedLogits


def train_grpo(
    config: GRPOConfig,
    envs_and_tasks: Sequence[tuple[EnvSource, Sequence[Task]]],
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train; see the module doc. Call from synchronous code (``atrain_grpo`` inside an event loop)."""
    return asyncio.run(atrain_grpo(config, envs_and_tasks, out_dir, resume=resume, progress=progress))


async def atrain_grpo(
    config: GRPOConfig,
    envs_and_tasks: Sequence[tuple[EnvSource, Sequence[Task]]],
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    M.check_can_train(config)
    out = Path(out_dir)
    check_out(out, resume)
    # Everything that can be wrong with the tasks or the saved run is found before the model loads.
    pool = EnvPool(
        envs_and_tasks,
        max_turns=config.max_turns,
        episode_timeout_s=config.episode_timeout_s,
        partial_calls=config.partial_calls,
    )
    try:
        tasks_trained = pool_fingerprint([(env_name(source), tasks) for source, tasks in envs_and_tasks])
        saved = load_state(out, config, tasks_trained) if resume else None
        if progress:  # once the tasks are known to be trainable
            names = ", ".join(env.config.id for env in pool.envs)
            print(f"training {config.model} on {len(pool.picks)} tasks of {names}")
        if saved is not None and saved["step"] >= config.steps and saved["sft_done"] >= config.sft_warmup_steps:
            print(f"{out} is already at step {saved['step']} (--steps {config.steps}): nothing to train; "
                  "its checkpoint is written again")  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        run = _Run.start(config, out, saved, tasks_trained)
        await run.train(pool, progress)
    finally:
        await pool.close()
    model, tokenizer = run.model, run.tokenizer
    checkpoint = M.save_checkpoint(model, tokenizer, out / "checkpoint")
    if progress:
        print(run.table(checkpoint))
    return TrainResult(checkpoint, run.task_success(), run.metrics_path, run.step, out / "rollouts.jsonl")


def check_out(out: Path, resume: bool) -> None:
    """A run resumes only where one saved its state, and starts only where it deletes no one else's logs."""
    if resume and not out.is_dir():
        raise InftoolError(f"{out}: nothing to resume (no training run was started there); "
                           "run without --resume to start one")  # fmt: skip
    if not resume and state_file(out).exists():
        raise InftoolError(f"{out} already holds a training run; resume it (--resume) or pick another --out")
    for name, mark in (("metrics.jsonl", "phase"), ("rollouts.jsonl", "step")):
        if not resume and not _written_by_training(out / name, mark):
            raise InftoolError(f"{out / name} is not a training run's log (is {out} another command's output?); "
                               "pick another --out")  # fmt: skip


def _written_by_training(log: Path, mark: str) -> bool:
    """Whether a log a fresh run would replace is absent or a training run's (one stopped before its first save)."""
    if not log.is_file():
        return True
    with log.open(encoding="utf-8", errors="replace") as lines:
        first = lines.readline()
    try:
        record = json.loads(first) if first.strip() else {mark: None}
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and mark in record


class _Run:
    @classmethod
    def start(cls, config: GRPOConfig, out: Path, saved: dict[str, Any] | None, pool: dict[str, Any]) -> _Run:
        """Loads the model, makes it trainable, and restores a resumed run's weights, optimiser and RNG."""
        import torch

        torch.manual_seed(config.seed)  # LoRA's initial adapters
        device = M.pick_device(config.device)
        model, tokenizer, name = M.load_policy(config.model, device)
        model = M.make_trainable(model, train_layers=config.train_layers, lora=config.lora)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
        # The KL's reference is the starting weights, so it is taken before a resumed run loads its own.
        anchored = config.sft_keep_decision > 0 and (saved is None or saved["sft_done"] < config.sft_warmup_steps)
        ref = M.reference_of(model, config.lora) if config.kl > 0 or anchored else None
        if saved is not None:
            M.load_trainable_state(model, saved["trainable"])
            optimizer.load_state_dict(saved["optimizer"])
            restore_rng(saved)
        explore = (config.explore_temperature, config.explore_top_k) if config.explore_temperature else None
        sampler = M.rollout_model(model, config.rollout_dtype)  # the model itself, or a copy (rollout_dtype)
        chat = TorchChat(sampler, tokenizer, name=name, max_new_tokens=config.max_new_tokens,
                         max_batch=config.tasks_per_step * config.group, explore=explore,
                         explore_after=CLOSE if config.explore_after_call else None,
                         explore_sides=(call_openers(tokenizer), call_starts(tokenizer)) if config.explore_balanced
                         else None)  # fmt: skip
        return cls(config, out, model, tokenizer, optimizer, ref, chat, saved, pool)

    def __init__(self, config: GRPOConfig, out: Path, model: Any, tokenizer: Any, optimizer: Any, ref: Any,
                 chat: TorchChat, saved: dict[str, Any] | None, pool: dict[str, Any]) -> None:  # fmt: skip
        self.config, self.out, self.model, self.tokenizer, self.pool = config, out, model, tokenizer, pool
        self.optimizer, self.ref, self.chat = optimizer, ref, chat
        # The warm start's anchor: the reference's logits beside the policy's, shared layers run once.
        self.paired = PairedLogits(model, ref) if ref is not None else None
        self.metrics_path = out / "metrics.jsonl"
        self.rollouts_path = out / "rollouts.jsonl"
        self.step = saved["step"] if saved else 0
        self.sft_done = saved["sft_done"] if saved else 0
        self.success: dict[str, list[int]] = saved["success"] if saved else {}
        self.history: list[dict[str, Any]] = []
        self.openers: list[int] = []  # the tokens a call can open with (the warm start's call form)
        self.over_budget: dict[str, int] = {}  # task id -> its answer's tokens, past max_new_tokens: not sampled
        self.grpo_picks: list[int] = []  # the pool's indices GRPO samples (_fit_budget)
        if saved:  # the logs past the saved state belong to steps that will be redone
            cut_log(self.metrics_path, lambda r: _done_by(r, self.sft_done, self.step))
            cut_log(self.rollouts_path, lambda r: r["step"] < self.step)
            self.history = [r for r in read_log(self.metrics_path) if r.get("phase") == "grpo"]
        else:
            for path in (self.metrics_path, self.rollouts_path):
                path.unlink(missing_ok=True)

    async def train(self, pool: EnvPool, progress: bool) -> None:
        config = self.config
        total = config.sft_warmup_steps + config.steps
        bar = tqdm(total=total, initial=min(total, self.sft_done + self.step), desc="train", unit="step",
                   disable=not progress)  # fmt: skip
        try:
            examples: list[Example] | None = None
            if self.sft_done < config.sft_warmup_steps:
                examples = await oracle_examples(pool, self.chat, seed=config.seed, decides=config.sft_decides)
                if not examples:
                    raise InftoolError("sft warm start: the oracle verified none of the training tasks")
                self.openers = await asyncio.to_thread(call_openers, self.tokenizer)
                while self.sft_done < config.sft_warmup_steps:
                    record = await asyncio.to_thread(self._sft_step, examples)
                    append_log(self.metrics_path, [record])
                    self.sft_done += 1
                    self._save(force=self.sft_done == config.sft_warmup_steps)
                    bar.update(1)
                    bar.set_postfix(nll=f"{record['loss']:.3f}")
                if self.config.kl == 0:
                    # The reference held the warm start's decisions only: its memory back for rollouts.
                    self.ref = self.paired = None
            if self.step < config.steps:
                if examples is None:
                    examples = await oracle_examples(pool, self.chat, seed=config.seed, decides=config.sft_decides)
                self._fit_budget(pool, examples, progress)
            while self.step < config.steps:
                record = await self._grpo_step(pool, progress)
                self.history.append(record)
                append_log(self.metrics_path, [record])
                self.step += 1
                self._save(force=self.step == config.steps)
                bar.update(1)
                t = record["time_s"]
                bar.set_postfix(reward=f"{record['reward_mean']:.2f}", gen=f"{t['generation']:.0f}s",
                                env=f"{t['env']:.0f}s", opt=f"{t['optimisation']:.0f}s")  # fmt: skip
        finally:
            bar.close()

    def _fit_budget(self, pool: EnvPool, examples: list[Example], progress: bool) -> None:
        """GRPO samples every task but those whose verified answer needs more than ``max_new_tokens`` a
        turn (none of their samples could end, so their groups could only score alike): counted, shown."""
        budget = self.config.max_new_tokens
        self.over_budget = over_budget(examples, budget)
        self.grpo_picks = [i for i, pick in enumerate(pool.picks) if pick.task.id not in self.over_budget]
        if not self.grpo_picks:
            raise InftoolError(f"every training task's verified answer needs more than --max-new-tokens ({budget}) "
                               f"tokens a turn (the shortest {min(self.over_budget.values())}): raise it")  # fmt: skip
        if self.over_budget and progress:
            print(
                f"GRPO leaves out {len(self.over_budget)} of {len(pool.picks)} tasks: their verified answer needs "
                f"more than --max-new-tokens ({budget}) tokens a turn (up to {max(self.over_budget.values())})"
            )

    # -- one GRPO step --------------------------------------------------------------------------
    async def _grpo_step(self, pool: EnvPool, progress: bool) -> dict[str, Any]:
        config = self.config
        order = schedule(len(self.grpo_picks), config.tasks_per_step, self.step, config.seed)
        picks = [pool.picks[self.grpo_picks[i]] for i in order]
        started = time.perf_counter()
        self.chat.reset_meter()
        M.sync_rollout(self.chat.model, self.model)  # a rollout copy (rollout_dtype) takes the latest weights
        self.chat.forget_prefixes()  # the weights changed since they were computed
        groups = await rollout_groups(
            pool, self.chat, picks, group=config.group, step=self.step, seed=config.seed,
            temperature=config.temperature, max_new_tokens=config.max_new_tokens, progress=progress,
        )  # fmt: skip
        rollout_s = time.perf_counter() - started
        generation_s, generated = self.chat.seconds, self.chat.tokens
        _check_scored(self.step, groups)
        if config.cut_fails:
            gate_cut_replies(groups)
        await self.chat.settle()  # an episode cut by its deadline may have left a generation running
        prepared = prepare(groups, text_credit=config.text_credit, irrelevance_credit=config.irrelevance_credit)
        opt_started = time.perf_counter()
        update = await asyncio.to_thread(self._update, prepared)
        optimisation_s = time.perf_counter() - opt_started
        self._log_groups(groups, prepared)
        samples = [t for g in groups for t in g.samples]
        by_category: dict[str, list[float]] = defaultdict(list)
        gates: dict[str, list[bool]] = defaultdict(list)
        flat: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # category -> [groups without signal, groups]
        for g, no_signal in zip(groups, prepared.no_signal, strict=True):
            flat[g.pick.task.category][0] += no_signal
            flat[g.pick.task.category][1] += 1
            for t in g.samples:
                by_category[g.pick.task.category].append(reward_of(t))
                for gate, passed in (t.reward.gates if t.reward else {}).items():
                    gates[gate].append(passed)
        total_s = time.perf_counter() - started
        return {
            "step": self.step,
            "phase": "grpo",
            "reward_mean": _mean([reward_of(t) for t in samples]),
            "success_rate": _mean([float(is_success(t)) for t in samples]),
            "reward_by_category": {c: _mean(v) for c, v in sorted(by_category.items())},
            "gate_pass_rate": {k: _mean([float(x) for x in v]) for k, v in sorted(gates.items())},
            "groups": len(groups),
            "zero_signal_groups": prepared.zero_signal_groups,
            "zero_signal_by_category": {c: flat[c] for c in sorted(flat)},
            "untrainable_samples": prepared.untrainable_samples,
            "episode_errors": sum(t.error is not None for t in samples),
            "episodes_unscored": sum(t.reward is None for t in samples),
            "episode_timeouts": sum(t.truncation_reason == "episode_timeout" for t in samples),
            # A reply cut at max_new_tokens earns what it holds: an irrelevance task's text reply scores 1 however
            # it ends, so these two show a policy learning to ramble (README, Measured).
            "samples_cut": sum(t.replies_cut > 0 for t in samples),
            "samples_cut_rewarded": sum(t.replies_cut > 0 and reward_of(t) > 0 for t in samples),
            **update,
            "rollout_tokens": generated,
            "rollout_tokens_per_s": generated / generation_s if generation_s else 0.0,
            "time_s": {
                "generation": generation_s,
                "env": max(0.0, rollout_s - generation_s),
                "optimisation": optimisation_s,
                "total": total_s,
            },  # fmt: skip
        }

    def _update(self, prepared: Prepared) -> dict[str, Any]:
        """The step's optimiser updates (``config.updates``) on the groups with signal; each group's
        backward runs on its own, so memory holds one group's activations at a time."""
        import torch

        self._learning_rate(self.config.lr)
        rows = [r for batch in prepared.batches for r in batch]
        tokens = sum(len(r.targets) for r in rows)
        if not tokens:  # no group had signal: nothing to learn from this step
            return {"loss": None, "kl": None, "clip_fraction": None, "ratio_mean": None, "is_weight_mean": None,
                    "is_truncated": None, "tokens_trained": 0}  # fmt: skip
        # Dropout off (eval mode still keeps gradients): the ratio must be 1 where the weights are the
        # rollout's, not noise for the clip to bite on. (Qwen has none; GPT-2-style configs have 0.1.)
        self.model.eval()
        losses: list[float] = []
        stats: dict[str, float] = defaultdict(float)
        prox: list[list[Any]] = []  # each batch's logprobs at the first update: the proximal policy
        for update in range(self.config.updates):
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for b, batch in enumerate(prepared.batches):
                seqs, targets = [r.ids for r in batch], [r.targets for r in batch]
                new = M.sequence_logprobs(self.model, seqs, targets)
                if update == 0 and self.config.updates > 1 and self.config.clip_to == "proximal":
                    prox.append([x.detach() for x in new])
                ref = self._reference(seqs, targets) if self.config.kl > 0 else None
                loss, s = policy_loss(new, batch, clip=self.config.clip, kl=self.config.kl, ref=ref, normaliser=tokens,
                                      clip_to=self.config.clip_to, prox=prox[b] if prox and update else None,
                                      is_cap=self.config.is_cap)  # fmt: skip
                loss.backward()
                loss_sum += float(loss.detach())
                for k, v in s.items():
                    stats[k] += v
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                           self.config.max_grad_norm)  # fmt: skip
            self.optimizer.step()
            losses.append(loss_sum)
        seen = tokens * self.config.updates
        return {
            "loss": losses[0],  # before any update on these rollouts (the later ones are in loss_last)
            "loss_last": losses[-1],
            "kl": stats["kl_sum"] / seen if self.config.kl > 0 else None,
            "clip_fraction": stats["clipped"] / seen,
            "ratio_mean": stats["ratio_sum"] / seen,
            "is_weight_mean": stats["weight_sum"] / seen,
            "is_truncated": stats["truncated"] / seen,
            "tokens_trained": tokens,
        }

    def _reference(self, seqs: list[list[int]], targets: list[list[int]]) -> list[Any]:
        logits, chosen = self._reference_logits(seqs, targets)
        return list(M.chosen_logprobs(logits, chosen).split([len(t) for t in targets]))

    def _reference_logits(self, seqs: list[list[int]], targets: list[list[int]]) -> tuple[Any, Any]:
        """The frozen start's logits at the targets (see ``M.target_logits``), without gradients."""
        import torch

        with torch.no_grad():
            if self.ref is not None:
                return M.target_logits(self.ref, seqs, targets)
            with self.model.disable_adapter():  # LoRA: the base weights are the reference
                return M.target_logits(self.model, seqs, targets)

    def _log_groups(self, groups: list[Group], prepared: Prepared) -> None:
        records = []
        for g, adv in zip(groups, prepared.advantages, strict=True):
            wins = sum(is_success(t) for t in g.samples)
            tally = self.success.setdefault(g.pick.task.id, [0, 0])
            tally[0], tally[1] = tally[0] + wins, tally[1] + len(g.samples)
            records.append({
                "step": self.step, "env_id": g.env_id, "task_id": g.pick.task.id, "category": g.pick.task.category,
                "rewards": g.rewards, "advantages": adv, "success": wins / len(g.samples),
                "breakdowns": [t.reward.model_dump() if t.reward else None for t in g.samples],
                "errors": [t.error or t.tokens_unavailable for t in g.samples],
                "replies_cut": [t.replies_cut for t in g.samples],
            })  # fmt: skip
        append_log(self.rollouts_path, records)

    def _learning_rate(self, lr: float) -> None:
        """Set per phase, not once: the optimiser is shared, and a resumed state carries the rate it saved."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- supervised warm start ------------------------------------------------------------------
    def _sft_step(self, examples: list[Example]) -> dict[str, Any]:
        import torch

        started = time.perf_counter()
        n = self.config.sft_batch
        batch = [examples[(self.sft_done * n + i) % len(examples)] for i in range(n)]
        allowed = set(self.openers)
        forms = [[t for t in e.openers if e.ids[t] in allowed] for e in batch]  # measured; trained with call_form
        trained = self.config.sft_call_form
        tokens = sum(len(e.targets) + (len(f) if trained else 0) for e, f in zip(batch, forms, strict=True))
        openers = torch.tensor(self.openers, dtype=torch.long, device=next(self.model.parameters()).device)
        self.model.train()
        self._learning_rate(self.config.sft_lr or self.config.lr)
        self.optimizer.zero_grad(set_to_none=True)
        keep = self.config.sft_keep_decision
        decisions = sum(len(e.decisions) for e in batch)
        nll, form_nll, form_p, call_p, kept_kl = 0.0, 0.0, [], [], 0.0
        for e, form in zip(batch, forms, strict=True):
            targets = e.targets + form + e.decisions
            anchored = keep and e.decisions
            if anchored and self.paired is not None:
                logits, chosen, start = self.paired(e.ids, targets, e.decisions)
            else:
                logits, chosen = M.target_logits(self.model, [e.ids], [targets])
                start = self._reference_logits([e.ids], [e.decisions])[0] if anchored else None
            k, f = len(e.targets), len(e.targets) + len(form)
            token_nll = -M.chosen_logprobs(logits[:k], chosen[:k]).sum()
            opening = call_form_nll(logits[k:f], chosen[k:f], openers) if form else None
            loss = (token_nll + (opening.sum() if opening is not None and trained else 0.0)) / tokens
            if anchored:
                drift = decision_kl(logits[f:], start, openers).sum()
                loss = loss + keep * drift / decisions
                kept_kl += float(drift.detach()) / decisions
            loss.backward()
            nll += float(token_nll.detach()) / tokens
            if opening is not None:
                form_nll += float(opening.detach().sum()) / tokens
                form_p += (-opening.detach()).exp().tolist()
            call_p += call_mass(logits[f:].detach(), openers).tolist()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                       self.config.max_grad_norm)  # fmt: skip
        self.optimizer.step()
        record = {"sft_step": self.sft_done, "phase": "sft", "loss": nll, "tokens_trained": tokens,
                  "examples": len(examples), "time_s": {"optimisation": time.perf_counter() - started}}  # fmt: skip
        if call_p:  # how likely a call is where the loss leaves the choice out (before this step's update)
            record["decision_call_p"] = sum(call_p) / len(call_p)
        if keep and call_p:  # none when every decision in the batch is trained (sft_decides)
            record["decision_kl"] = kept_kl
            record["reference_shared_layers"] = self.paired.bottom if self.paired and self.paired.shared else 0
        if form_p:  # the call form's loss (trained or not), and the template's tag's share among the openers
            record.update(call_form_loss=form_nll, call_form_p=sum(form_p) / len(form_p))
        return record

    # -- bookkeeping ----------------------------------------------------------------------------
    def _save(self, *, force: bool) -> None:
        done = self.sft_done + self.step
        if not force and done % self.config.save_every:
            return
        save_state(self.out, {
            "step": self.step, "sft_done": self.sft_done, "config": self.config.model_dump(),
            "trainable": M.trainable_state(self.model), "optimizer": self.optimizer.state_dict(),
            "success": self.success, "pool": self.pool,
        })  # fmt: skip

    def task_success(self) -> dict[str, float]:
        return {task: wins / n for task, (wins, n) in sorted(self.success.items()) if n}

    def table(self, checkpoint: Path) -> str:
        rows = [("steps", f"{self.step} GRPO" + (f" + {self.sft_done} SFT" if self.sft_done else ""))]
        if self.history:
            first, last = self.history[0], self.history[-1]
            rows.append(("reward mean", f"{first['reward_mean']:.3f} (first step) -> {last['reward_mean']:.3f} (last)"))
            rows.append(("success rate", f"{first['success_rate']:.3f} -> {last['success_rate']:.3f}"))
            zero = sum(r["zero_signal_groups"] for r in self.history)
            groups = sum(r["groups"] for r in self.history)
            rows.append(("zero-signal groups", f"{zero} / {groups} (skipped in the loss)"))
            flat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for r in self.history:
                for c, (n, of) in r.get("zero_signal_by_category", {}).items():
                    flat[c][0], flat[c][1] = flat[c][0] + n, flat[c][1] + of
            if flat:
                rows.append(("  by category", ", ".join(f"{c} {n}/{of}" for c, (n, of) in sorted(flat.items()))))
            split = {k: sum(r["time_s"][k] for r in self.history) for k in ("generation", "env", "optimisation")}
            whole = sum(split.values()) or 1.0
            rows.append(("time split", ", ".join(f"{k} {v:.0f}s ({100 * v / whole:.0f}%)" for k, v in split.items())))
            errors, unscored = (sum(r.get(k, 0) for r in self.history) for k in ("episode_errors", "episodes_unscored"))
            if errors:
                rows.append(("episode errors", f"{errors} ({unscored} broke before scoring: not in the advantages)"))
            gen_tokens = sum(r["rollout_tokens"] for r in self.history)
            rows.append(("rollout tokens/s", f"{gen_tokens / split['generation']:.1f}" if split["generation"] else "-"))
        if self.over_budget:
            rows.append(("left out of GRPO", f"{len(self.over_budget)} tasks whose answer needs more than "
                         f"max_new_tokens ({self.config.max_new_tokens}) tokens a turn"))  # fmt: skip
        rows += [("metrics", str(self.metrics_path)), ("checkpoint", f"{checkpoint}  (hf:{checkpoint})")]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _check_scored(step: int, groups: list[Group]) -> None:
    """A step none of whose episodes was scored has nothing to learn from, and the next would fare
    alike: stop (the last saved state resumes) rather than train on nothing to the end."""
    samples = [t for g in groups for t in g.samples]
    if samples and all(t.reward is None for t in samples):
        first = next((t.error for t in samples if t.error), "no reason given")
        raise InftoolError(f"GRPO step {step}: all {len(samples)} episodes broke before they were scored "
                           f"(first: {first}); fix that and continue with --resume")  # fmt: skip


def _done_by(record: dict[str, Any], sft_done: int, step: int) -> bool:
    if record.get("phase") == "sft":
        return bool(record["sft_step"] < sft_done)
    return bool(record["step"] < step)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
