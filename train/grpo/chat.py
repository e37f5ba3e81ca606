"""Rollout generation on the very module being trained: a ``LocalChat`` (so ``ChatPolicy`` keeps the
episode's token record) whose weights are the trainer's, with no copy to sync after an update.

Why not ``HFChat``/``generate()``: each row here is sampled with its own seeded generator, so a
sample depends on its own seed and prompt only, never on which requests happened to share its batch
(resume then replays the same rollouts), and sampling is plain temperature sampling with the raw
(temperature-1) logprob of each chosen token kept, as the loss needs. The longest prefix common to a
batch's prompts — the system prompt with the tools, a whole prompt for a group's first turn, all but
the last reply and tool result for its later turns — is evaluated once and its KV cache repeated for
every row: the largest saving on a CPU, where the tools make a prompt several times the reply. A
trainer's batch mixes tasks whose system prompts and tools differ, though: there the common prefix is
next to nothing, and one batch would prefill every row in full, padded to the longest prompt. So a
batch is split into clusters of rows that share a long prefix, each run as a batch of its own, where
a cost model says that is cheaper: the split saves prefill but adds a decode loop per cluster. A row's
sample does not depend on how it was clustered, as it does not on its batch.

Exploration (``explore=(T, k)``): the first token of every reply decides between a tool call and a
text answer. A small model is often so sure of that token that all of a group's samples agree, and
the group carries no signal. With ``explore`` set, that one token is drawn from the policy's top ``k``
tokens at temperature ``T``, and its record keeps the logprob of that draw (the behaviour policy),
not the raw one, so the loss's ratio pi/mu is the importance weight that corrects for it. Every
other token is drawn and recorded as usual. ``explore_after`` (e.g. ``"</tool_call>"``) explores the
token after each occurrence of that text too: the one that decides between another call and the end
of the reply, which is where a model that makes one call where several were asked goes wrong.
``explore_sides`` = (the tokens a call opens with, the tokens a call in any form starts with) balances a
reply's first token: a side is drawn at even odds, then the token from that side's top ``k`` at ``T``
(mu is half that draw's probability). A reply drawn on the answer side never draws a call's start after
either: each of its tokens comes from the policy renormalised over the rest, and its record keeps that
logprob (mu = pi / (1 - pi(call starts)) at each token). A first token alone does not decide: this model
often goes on from "To ..." to a call, in the tag or as JSON text. So a policy 95% sure of calling still
gives half a group's samples a reply that does not call, and every group tries both decisions: where one
is right, it has a signal.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from inftool_env.llm.local import Generated, LocalChat, abandoned

MIN_SHARED = 16  # a shorter common prefix is not worth a pass of its own
PREFIXES_KEPT = 8  # recent prompt prefixes whose KV cache is kept (~27 MB each for the embedded model at 1k tokens)
# A decode step's cost in prefill tokens: the price of splitting a batch, as every extra cluster runs a
# decode loop of its own (the rows' own work per step is the same either way). A step reads every weight
# once however few its rows, while prefill is compute-bound: on a 2-core CPU, with a model of the embedded
# model's size, a step at batch 1 took ~0.8 s and a prefill token ~19 ms: about 40 tokens, rounded up to
# lean to one batch where it is a close call (timings on a shared machine are noisy).
DECODE_STEP_COST = 48
# On a GPU a prefill token is nearly free and a step costs its kernel launches (an estimate, not
# measured): there a split pays only where prompts are thousands of tokens apart.
DECODE_STEP_COST_ACCELERATOR = 1024


def _shared_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _common_prefix(prompts: list[list[int]]) -> int:
    """The prompts' longest common prefix, leaving every row at least one token of its own."""
    own = min(len(p) for p in prompts) - 1
    return max(min([own, *(_shared_len(prompts[0], p) for p in prompts[1:])]), 0)


def _clusters(prompts: list[list[int]], split_cost: float) -> list[list[int]]:
    """The rows (indices, in row order within each) to run as separate batches: one cluster unless a
    split costs less, modelled as prefill tokens (the shared prefix once, each row's rest padded to its
    cluster's widest) plus ``split_cost`` per cluster (its decode loop). Sorted by prompt, rows sharing
    a prefix lie next to each other and a run's common prefix is the least of its neighbours', so the
    cheapest cut of the sorted rows into runs is found exactly (n^2/2 runs, for n up to ``max_batch``)."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    ps = [prompts[i] for i in order]
    neighbours = [_shared_len(a, b) for a, b in zip(ps, ps[1:], strict=False)]

    def cost(i: int, j: int) -> float:  # rows order[i:j] as one batch
        shared = max(min([*neighbours[i : j - 1], min(len(p) for p in ps[i:j]) - 1]), 0)
        shared = shared if shared >= MIN_SHARED else 0
        return shared + (j - i) * (max(len(p) for p in ps[i:j]) - shared) + split_cost

    n = len(ps)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # i = 0 first: ties keep fewer clusters
            if best[i] + cost(i, j) < best[j]:
                best[j], cut[j] = best[i] + cost(i, j), i
    runs, j = [], n
    while j:
        runs.append(sorted(order[cut[j] : j]))
        j = cut[j]
    return runs[::-1]


class TorchChat(LocalChat):
    seeds_per_request = True
    retire_finished = True  # a row leaves its batch when its reply ends (False: bench/bench_retire_rows.py's baseline)

    def __init__(self, model: Any, tokenizer: Any, *, name: str, max_new_tokens: int, max_batch: int = 16,
                 explore: tuple[float, int] | None = None, explore_after: str | None = None,
                 explore_sides: tuple[list[int], list[int]] | None = None) -> None:  # fmt: skip
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.max_new_tokens, self.max_batch = max_new_tokens, max_batch
        self.explore = explore  # (temperature, top k) of a reply's first token; see the module doc
        self.explore_after = explore_after if explore is not None else None  # also explore the token after this text
        self._pieces: dict[int, str] = {}  # token id -> its text, to spot explore_after as tokens arrive
        self.device = next(model.parameters()).device
        # With explore_sides: vocabulary masks of the call openers and of every call's start; see the module doc.
        self._openers: Any = None
        self._starts: Any = None
        if explore is not None and explore_sides is not None:
            masks = torch.zeros(2, len(tokenizer), dtype=torch.bool, device=self.device)
            for mask, ids in zip(masks, explore_sides, strict=True):
                mask[ids] = True
            self._openers, self._starts = masks
        # A decode step's cost in prefill tokens, for splitting a batch (math.inf: never split).
        self.decode_step_cost: float = DECODE_STEP_COST if self.device.type == "cpu" else DECODE_STEP_COST_ACCELERATOR
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else tokenizer.eos_token_id)
        self._meter_lock = threading.Lock()
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()  # prompt prefix -> its KV cache (batch 1)
        self.reset_meter()
        self._setup_batching()

    def reset_meter(self) -> None:
        """Zero the generation counters (seconds spent generating, tokens generated, batches)."""
        self.seconds, self.tokens, self.batches = 0.0, 0, 0

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[Generated]:
        return self._generate_rows(prompts, [seed] * len(prompts), temperature, max_new)

    def _generate_rows(
        self, prompts: list[list[int]], seeds: list[int | None], temperature: float, max_new: int
    ) -> list[Generated]:
        torch = self._torch
        started = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self._sample(prompts, seeds, temperature, max_new)
        finally:
            self.model.train(was_training)
        with self._meter_lock:
            self.seconds += time.perf_counter() - started
            self.tokens += sum(len(ids) for ids, _ in out)
            self.batches += 1
        return out

    def _sample(
        self, prompts: list[list[int]], seeds: list[int | None], temperature: float, max_new: int
    ) -> list[Generated]:
        clusters = _clusters(prompts, self.decode_step_cost * max_new)
        if len(clusters) == 1:
            return self._sample_batch(prompts, seeds, temperature, max_new)
        out: list[Generated] = [([], []) for _ in prompts]
        for rows in clusters:
            if abandoned():  # the rows not yet run stay empty: no one waits for them
                break
            done = self._sample_batch([prompts[i] for i in rows], [seeds[i] for i in rows], temperature, max_new)
            for i, generated in zip(rows, done, strict=True):
                out[i] = generated
        return out

    def _sample_batch(
        self, prompts: list[list[int]], seeds: list[int | None], temperature: float, max_new: int
    ) -> list[Generated]:
        """One batch: the prompts' common prefix (when long enough) once, then every row's own rest."""
        torch = self._torch
        rows_n = len(prompts)
        shared = _common_prefix(prompts)
        cache = None
        if shared >= MIN_SHARED:  # run once (or found cached), its KV repeated for every row
            cache = self._prefix_cache(prompts[0][:shared])
            cache.reorder_cache(torch.zeros(rows_n, dtype=torch.long, device=self.device))
        else:
            shared = 0
        # Each row's own part, left-padded after the shared part (padding in the middle is masked out).
        rest = [p[shared:] for p in prompts]
        width = max(len(r) for r in rest)
        ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rest], device=self.device)
        own = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rest], device=self.device)
        mask = torch.cat([torch.ones(rows_n, shared, dtype=own.dtype, device=self.device), own], dim=-1)
        positions = shared + (own.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1)  # fmt: skip
        cache, logits, last = out.past_key_values, out.logits[:, -1], positions[:, -1]
        gens = [self._generator(seed) for seed in seeds]
        stops = self.stop_ids()
        rows: list[list[int]] = [[] for _ in prompts]
        lps: list[list[float]] = [[] for _ in prompts]
        alive = [True] * len(prompts)
        explore_next = [self.explore is not None] * rows_n  # a reply's first token, or one after explore_after
        answering = [False] * rows_n  # drawn on the answer side (explore_sides): no call's start is drawn
        tails = [""] * rows_n  # each row's last characters, too few to hold explore_after whole
        running = list(range(rows_n))  # the rows still in the batch, by position
        for drawn in range(1, max_new + 1):
            raw = logits.float().log_softmax(-1)
            chosen = []
            for at, i in enumerate(running):
                if not alive[i]:  # kept in the batch (retire_finished off)
                    chosen.append(self.pad_id)
                    continue
                if explore_next[i] and self.explore is not None:
                    token, lp, answering[i] = self._explore(raw[at], *self.explore, gens[i], first=not rows[i])
                elif answering[i]:
                    token, lp = self._answer(raw[at], temperature, gens[i], rows[i], seeds[i])
                else:
                    token = self._choose(raw[at], temperature, gens[i], rows[i], seeds[i])
                    lp = float(raw[at, token])
                chosen.append(token)
                rows[i].append(token)
                lps[i].append(lp)
                alive[i] = token not in stops
                explore_next[i], tails[i] = self._after(tails[i], token)
            if drawn == max_new or not any(alive) or abandoned():  # no pass for a token never drawn
                break
            if self.retire_finished and not all(alive[i] for i in running):
                # A finished row leaves the batch: on a CPU each pass costs about the same per row, so a batch
                # waiting on its longest reply would spend most of its passes on rows already done.
                keep = [at for at, i in enumerate(running) if alive[i]]
                index = torch.tensor(keep, device=self.device)
                cache.reorder_cache(index)
                mask, last = mask[index], last[index]
                running, chosen = [running[at] for at in keep], [chosen[at] for at in keep]
            step = torch.tensor(chosen, device=self.device).unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(step)], dim=-1)
            last = last + 1
            out = self.model(input_ids=step, attention_mask=mask, position_ids=last.unsqueeze(-1),
                             past_key_values=cache, use_cache=True)  # fmt: skip
            cache, logits = out.past_key_values, out.logits[:, -1]
        return list(zip(rows, lps, strict=True))

    def forget_prefixes(self) -> None:
        """Drop the cached prefixes: their keys and values are stale once the weights change."""
        self._prefixes.clear()

    def _prefix_cache(self, prefix: list[int]) -> Any:
        """The KV cache of ``prefix`` at batch 1: the longest cached prefix of it, extended by the rest.
        Episodes reach their later turns one by one (each after its own tool calls), so their batches
        are small; this keeps the shared system prompt, tools and first turn from being evaluated again."""
        torch = self._torch
        best = max((k for k in self._prefixes if len(k) <= len(prefix) and list(k) == prefix[: len(k)]),
                   key=len, default=())  # fmt: skip
        cache = copy.deepcopy(self._prefixes[best]) if best else None
        if len(best) < len(prefix):
            ids = torch.tensor([prefix[len(best) :]], device=self.device)
            positions = torch.arange(len(best), len(prefix), device=self.device).unsqueeze(0)
            out = self.model(input_ids=ids, position_ids=positions, past_key_values=cache, use_cache=True,
                             logits_to_keep=1)  # fmt: skip
            cache = out.past_key_values
            self._prefixes[tuple(prefix)] = copy.deepcopy(cache)
            while len(self._prefixes) > PREFIXES_KEPT:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(tuple(prefix) if len(best) < len(prefix) else best)
        return cache

    def _generator(self, seed: int | None) -> Any:
        gen = self._torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed) % (2**63))
        return gen

    def _after(self, tail: str, token: int) -> tuple[bool, str]:
        """Whether ``token`` completes an ``explore_after`` (so the next token is explored), and the
        new tail. A tag may span tokens, and a token may hold its end and more (``>\n``)."""
        after = self.explore_after
        if not after:
            return False, ""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.tokenizer.decode([token])
        text = tail + piece
        return after in text, text[-(len(after) - 1) :] if len(after) > 1 else ""

    def _explore(
        self, raw_logprobs: Any, temperature: float, k: int, generator: Any, *, first: bool
    ) -> tuple[int, float, bool]:
        """An explored token drawn from the top k at ``temperature`` (a reply's ``first``, of one side drawn
        at even odds, where the sides are set), its logprob under that draw (what the loss's ratio divides
        by), and whether it was drawn on the answer side."""
        side_lp, answering = 0.0, False
        if first and self._openers is not None:
            answering = bool(self._torch.rand(1, generator=generator, device=raw_logprobs.device) < 0.5)
            n = min(self._openers.numel(), raw_logprobs.numel())  # the tokenizer's ids (a padded vocabulary: unused)
            side = ~self._starts[:n] if answering else self._openers[:n]
            k = min(k, int(side.sum()))
            raw_logprobs = raw_logprobs[:n].masked_fill(~side, float("-inf"))
            side_lp = math.log(0.5)
        top = raw_logprobs.topk(min(k, raw_logprobs.numel()))
        behaviour = (top.values / temperature).log_softmax(-1)
        at = self._draw(behaviour.exp(), generator)
        return int(top.indices[at]), side_lp + float(behaviour[at]), answering

    def _answer(
        self, raw_logprobs: Any, temperature: float, generator: Any, so_far: list[int], seed: int | None
    ) -> tuple[int, float]:
        """A token of a reply drawn on the answer side: the policy over every token but a call's start, and
        its logprob under that renormalised policy (the draw's own, as the loss divides by)."""
        n = min(self._starts.numel(), raw_logprobs.numel())
        allowed = raw_logprobs[:n].masked_fill(self._starts[:n], float("-inf"))
        allowed = allowed - allowed.logsumexp(-1)
        token = self._choose(allowed, temperature, generator, so_far, seed)
        return token, float(allowed[token])

    def _choose(
        self, raw_logprobs: Any, temperature: float, generator: Any, so_far: list[int], seed: int | None
    ) -> int:
        """The next token of one row: greedy at temperature 0, else plain temperature sampling
        (no top-k/top-p, so a sampled token's logprob is the policy's own)."""
        if temperature <= 0:
            return int(raw_logprobs.argmax())
        return self._draw((raw_logprobs / temperature).softmax(-1), generator)

    def _draw(self, probs: Any, generator: Any) -> int:
        """An index drawn from ``probs`` by inverse CDF with one uniform: torch.multinomial over a 150k
        vocabulary costs ~20 ms."""
        cdf = probs.cumsum(-1)
        u = self._torch.rand(1, generator=generator, device=cdf.device) * cdf[-1]
        return int(self._torch.searchsorted(cdf, u).clamp(max=cdf.numel() - 1))
