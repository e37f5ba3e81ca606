"""The policy's and the frozen reference's logits over one sequence, their common layers run once.

With the top K layers training and no LoRA (the default), the policy and its reference (the starting
weights: the warm start's decision anchor) share the embeddings and every layer below the top K, weights
and all, so both would run them over the same tokens to the same hidden states: five sixths of the
embedded model's layers, twice per warm-start example. ``PairedLogits`` runs them once, then the policy's
top layers (with gradients) and the reference's (without).

It calls the decoder's layers itself (the Llama/Qwen layout), so its first use checks it against two
whole forwards; where they differ (another architecture, another transformers) the run goes on with
whole forwards, saying so once.
"""

from __future__ import annotations

import logging
from typing import Any

from inftool_env.train.grpo import model as M

logger = logging.getLogger(__name__)
AGREE_ATOL = 1e-3  # fp32 logits of one model, by two orders of the same sums: ~1e-5 apart


def frozen_bottom(model: Any) -> int:
    """How many of the decoder's first layers train nothing, its embeddings frozen too (0 otherwise)."""
    decoder = model.get_decoder()
    if any(p.requires_grad for p in decoder.embed_tokens.parameters()):
        return 0
    count = 0
    for layer in decoder.layers:
        if any(p.requires_grad for p in layer.parameters()):
            break
        count += 1
    return count


class PairedLogits:
    """``(logits, chosen, reference logits)`` for one sequence: the policy's at ``targets`` as
    ``M.target_logits`` gives them (differentiable), the reference's at ``ref_targets`` (no gradients).
    ``shared``: the layers run once for both (None until the first call has checked it)."""

    def __init__(self, model: Any, ref: Any) -> None:
        self.model, self.ref = model, ref
        self.bottom = frozen_bottom(model)
        self.shared: bool | None = None if self.bottom else False

    def __call__(self, seq: list[int], targets: list[int], ref_targets: list[int]) -> tuple[Any, Any, Any]:
        if self.shared is None:
            self.shared = self._agrees(seq, targets, ref_targets)
        if self.shared:
            return self.together(seq, targets, ref_targets)
        return self.apart(seq, targets, ref_targets)

    def apart(self, seq: list[int], targets: list[int], ref_targets: list[int]) -> tuple[Any, Any, Any]:
        import torch

        logits, chosen = M.target_logits(self.model, [seq], [targets])
        with torch.no_grad():
            start = M.target_logits(self.ref, [seq], [ref_targets])[0]
        return logits, chosen, start

    def together(self, seq: list[int], targets: list[int], ref_targets: list[int]) -> tuple[Any, Any, Any]:
        import torch
        from transformers.masking_utils import create_causal_mask

        decoder = self.model.get_decoder()
        device = next(self.model.parameters()).device
        ids = torch.tensor([seq], device=device)
        positions = torch.arange(len(seq), device=device).unsqueeze(0)
        with torch.no_grad():  # frozen in both: no activations kept for backward
            hidden = decoder.embed_tokens(ids)
            mask = create_causal_mask(config=decoder.config, inputs_embeds=hidden, attention_mask=None,
                                      past_key_values=None, position_ids=positions)  # fmt: skip
            rope = decoder.rotary_emb(hidden, positions)
            for layer in decoder.layers[: self.bottom]:
                hidden = layer(hidden, attention_mask=mask, position_embeddings=rope, position_ids=positions)

        def top(model: Any, at: list[int]) -> Any:
            tail = model.get_decoder()
            states = hidden
            for layer in tail.layers[self.bottom :]:
                states = layer(states, attention_mask=mask, position_embeddings=rope, position_ids=positions)
            # Token t is predicted by the state at t - 1 (as in M.target_logits).
            where = torch.tensor([t - 1 for t in at], device=device)
            return model.get_output_embeddings()(tail.norm(states)[0].index_select(0, where)).float()

        logits = top(self.model, targets)
        with torch.no_grad():
            start = top(self.ref, ref_targets)
        return logits, torch.tensor([seq[t] for t in targets], device=device), start

    def _agrees(self, seq: list[int], targets: list[int], ref_targets: list[int]) -> bool:
        import torch

        with torch.no_grad():
            expected = self.apart(seq, targets, ref_targets)
            try:
                got = self.together(seq, targets, ref_targets)
            except Exception as exc:  # noqa: BLE001 - any layout it cannot drive: whole forwards instead
                logger.warning("the reference's shared layers cannot be run apart (%s); whole forwards instead",
                               f"{type(exc).__name__}: {exc}")  # fmt: skip
                return False
        agree = all(torch.allclose(a, b, atol=AGREE_ATOL, rtol=0) if a.is_floating_point() else torch.equal(a, b)
                    for a, b in zip(expected, got, strict=True))  # fmt: skip
        if not agree:
            logger.warning("the reference's shared layers run apart disagree with whole forwards; whole forwards "
                           "instead")  # fmt: skip
        return agree
