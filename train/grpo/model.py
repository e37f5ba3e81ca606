"""The policy being trained: loading, which weights train (top layers or LoRA), log-probabilities of
exactly the sampled tokens, and checkpoints that ``hf:PATH`` loads.

Cost model (../shared/BASELINES.md, this CPU): forward+backward 47 tok/s with every layer trainable,
77 with the top 4; the LM head over 151,936 tokens is a large share of each position. So by default
only the top layers train (the frozen ones keep no activations for backward), a group's shared prompt
is run once and its KV cache repeated for every sample, and the head is applied only at the positions
that predict a sampled token.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inftool_env.errors import InftoolError
from inftool_env.llm import MODEL_KINDS
from inftool_env.train.grpo.config import named

if TYPE_CHECKING:
    from inftool_env.train.grpo.config import GRPOConfig

TRAINABLE = "'embedded', 'hf:PATH' or an HF model directory"
# The model strings' schemes (inftool_env.llm) that name no HF weights to train: all but hf:.
OTHER_MODEL_KINDS = frozenset(kind.partition(":")[0] for kind in MODEL_KINDS) - {"hf"}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def resolve_model_dir(model: str) -> Path:
    """``embedded`` (the embedded model's exported HF directory), ``hf:PATH`` or PATH: an HF directory."""
    check_trainable(model)
    from inftool_env.llm.embedded import hf_model_path

    return hf_model_path(model.removeprefix("hf:"))[0]


def check_can_train(config: GRPOConfig) -> None:
    """What would otherwise fail only once training starts (in a loop, after its first stages), checked
    now, loading no weights: the libraries, the device, LoRA's peft, the model and its layer count."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise InftoolError(f"training needs torch and transformers, the `train` extra (pip install "
                           f"'inftool-env[train]'): {exc}") from None  # fmt: skip
    if config.lora is not None:
        _peft()
    pick_device(config.device)
    check_trainable(config.model)
    from transformers import AutoConfig, AutoTokenizer

    where = resolve_model_dir(config.model)
    layers = getattr(AutoConfig.from_pretrained(where), "num_hidden_layers", None)
    if layers is not None:
        _check_layers(config.train_layers, layers)
    if config.explore_after_call:
        from inftool_env.parsing.json_formats import CLOSE

        if CLOSE not in (AutoTokenizer.from_pretrained(where).chat_template or ""):
            raise InftoolError(f"explore_after_call looks for {CLOSE} after each call, and {where.name}'s chat "
                               "template never writes one (it needs Qwen/Hermes-style calls)")  # fmt: skip


def _check_layers(train_layers: int | None, layers: int) -> None:
    if train_layers is not None and not 1 <= train_layers <= layers:
        raise InftoolError(f"{named('train_layers')} must be between 1 and {layers} (the model's layers), "
                           f"or all, not {train_layers}")  # fmt: skip


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise InftoolError("lora needs peft: pip install peft==0.21.2 (the `train` extra)") from None
    return peft


def check_trainable(model: str) -> None:
    """Refuse a model string training cannot load, loading and exporting nothing (a loop checks before it starts)."""
    scheme, sep, rest = model.partition(":")
    if sep and scheme in OTHER_MODEL_KINDS:  # a policy string for generation, not weights to train
        where = rest.split("?")[0]
        alike = "'embedded'" if where == "embedded" else f"'hf:{where}'" if scheme == "vllm" else None
        hint = f"; for this model: {alike}" if alike else ""
        raise InftoolError(f"policy {model!r}: training loads weights with transformers and takes {TRAINABLE}{hint}")
    name = model.removeprefix("hf:")
    if name == "embedded":
        return
    path = Path(name)
    if path.suffix == ".gguf":
        raise InftoolError(f"policy {model!r}: training needs an HF directory, not a GGUF file (use 'embedded')")
    if not (path / "config.json").is_file():
        raise InftoolError(
            f"policy {model!r}: {path} is not an HF model directory (no config.json); training takes {TRAINABLE}"
        )


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InftoolError("device 'cuda' was asked for but torch sees no CUDA device")
    return device


def load_policy(model: str, device: str) -> tuple[Any, Any, str]:
    """(model in fp32 on ``device``, tokenizer, name). fp32 on GPU too: a 0.5B model fits, and the
    rollout logprobs and the trained ones then come from the same arithmetic."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = resolve_model_dir(model)
    tokenizer = AutoTokenizer.from_pretrained(where)
    loaded: Any = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32)
    loaded = loaded.to(device)
    # Sampling is ours (chat.py); the checkpoint's generation config must not add top-k/top-p later.
    return loaded, tokenizer, where.name


def make_trainable(model: Any, *, train_layers: int | None, lora: int | None) -> Any:
    """Freeze what does not train. ``train_layers=K``: the top K decoder layers (and the final norm);
    None: every weight. ``lora=r``: rank-r adapters on the attention and MLP projections (of the top
    K layers only when both are given), everything else frozen."""
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None:  # which layers are the top ones, and what LoRA targets, assume that layout
        raise InftoolError(f"{type(model).__name__}: training takes a decoder whose blocks are `.layers` "
                           "(Llama, Qwen, Mistral, Gemma and kin)")  # fmt: skip
    _check_layers(train_layers, len(layers))
    if lora is not None:
        peft = _peft()
        top = list(range(len(layers) - train_layers, len(layers))) if train_layers else None
        config = peft.LoraConfig(r=lora, lora_alpha=2 * lora, lora_dropout=0.0, target_modules=LORA_TARGETS,
                                 layers_to_transform=top)  # fmt: skip
        return peft.get_peft_model(model, config)
    for p in model.parameters():
        p.requires_grad_(train_layers is None)
    if train_layers is not None:
        for module in [*layers[len(layers) - train_layers :], model.get_decoder().norm]:
            for p in module.parameters():
                p.requires_grad_(True)
    return model


def trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: Any, state: dict[str, Any]) -> None:
    import torch

    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise InftoolError(f"the trainer state does not fit this model (e.g. {missing[0]})")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def reference_of(model: Any, lora: int | None) -> Any:
    """The frozen reference for the KL term: with LoRA the same module with its adapters off (no
    copy); otherwise a frozen copy of the starting weights."""
    if lora is not None:
        return None
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def rollout_model(model: Any, dtype: str) -> Any:
    """The model rollouts sample from: the trained one itself (float32), or a frozen copy in ``dtype``
    (bfloat16: half the bytes each decode step reads) that ``sync_rollout`` keeps up to date."""
    if dtype == "float32":
        return model
    import torch

    copied = copy.deepcopy(model).to(getattr(torch, dtype)).eval()
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied


def sync_rollout(rollout: Any, model: Any) -> None:
    """Copy ``model``'s trainable weights (the only ones that change) into its rollout copy, cast."""
    if rollout is model:
        return
    import torch

    params = dict(rollout.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                params[name].copy_(p)


def sequence_logprobs(model: Any, seqs: list[list[int]], targets: list[list[int]]) -> list[Any]:
    """Log-probabilities (temperature 1, as the rollout record keeps them) of ``seqs[i][t]`` for each
    ``t`` in ``targets[i]``, as one tensor per row; differentiable."""
    logits, chosen = target_logits(model, seqs, targets)
    return list(chosen_logprobs(logits, chosen).split([len(t) for t in targets]))


def chosen_logprobs(logits: Any, chosen: Any) -> Any:
    """Each row's log-probability of its chosen token, over the whole vocabulary."""
    return logits.log_softmax(-1).gather(-1, chosen.unsqueeze(-1)).squeeze(-1)


def target_logits(model: Any, seqs: list[list[int]], targets: list[list[int]]) -> tuple[Any, Any]:
    """The logits (float32, one row per target, rows' targets in order) that predict ``seqs[i][t]`` for
    each ``t`` in ``targets[i]``, and those tokens' ids; differentiable.

    The rows' longest common prefix (a group's prompt) is run once and its KV cache repeated for every
    row; the LM head is applied only at the positions that predict a target.
    """
    import torch

    device = next(model.parameters()).device
    first = min(min(t) for t in targets)
    if first < 1:
        raise ValueError("a target at position 0 has nothing to predict it")
    common = 0
    shortest = min(len(s) for s in seqs)
    while common < shortest and all(s[common] == seqs[0][common] for s in seqs):
        common += 1
    if common == 0 and len(seqs) > 1:  # no shared first token to run once: each row on its own
        parts = [target_logits(model, [s], [t]) for s, t in zip(seqs, targets, strict=True)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    prefix = max(1, min(common, first))  # every target lies after the prefix's last position
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    out = decoder(input_ids=torch.tensor([seqs[0][:prefix]], device=device), use_cache=True)
    cache = out.past_key_values
    cache.reorder_cache(torch.zeros(len(seqs), dtype=torch.long, device=device))
    width = max(len(s) for s in seqs) - prefix
    suffix = torch.tensor([s[prefix:] + [0] * (width + prefix - len(s)) for s in seqs], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width + prefix - len(s)) for s in seqs], device=device)
    positions = (prefix + torch.arange(width, device=device)).expand(len(seqs), width)
    hidden = decoder(input_ids=suffix, attention_mask=mask, position_ids=positions, past_key_values=cache,
                     use_cache=True).last_hidden_state  # fmt: skip
    states = torch.cat([out.last_hidden_state[0, -1:], hidden.reshape(-1, hidden.shape[-1])])
    # Row i's token t is predicted by the state at t-1: the prefix's last one, or suffix position t-1-prefix.
    where = [0 if t - 1 < prefix else 1 + i * width + (t - 1 - prefix) for i, ts in enumerate(targets) for t in ts]
    chosen = torch.tensor([s[t] for s, ts in zip(seqs, targets, strict=True) for t in ts], device=device)
    return head(states.index_select(0, torch.tensor(where, device=device))).float(), chosen


def save_checkpoint(model: Any, tokenizer: Any, target: Path) -> Path:
    """An HF directory (merged LoRA, the tokenizer and its chat template), written atomically."""
    merged = copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else model
    for stale in target.parent.glob(f"{target.name}.partial-*"):  # an earlier save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    merged.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    # The old checkpoint is moved aside, not deleted, until the new one stands in its place (a kill in
    # between leaves it whole under the aside name; training's state, not this folder, is what resumes).
    aside = target.with_name(f"{target.name}.partial-old-{os.getpid()}")
    if target.exists():
        target.replace(aside)
    partial.replace(target)
    shutil.rmtree(aside, ignore_errors=True)
    return target
