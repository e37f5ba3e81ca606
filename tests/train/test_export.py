"""GGUF export of trained checkpoints, checked through llama.cpp against transformers: a tiny random
Qwen2 (F32, so the two agree to float error) and the embedded Q4_K_M model with one layer perturbed
(agreement within the base file's own quantization gap). The unperturbed export is the base file."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from inftool_env.errors import InftoolError
from tests.train.tiny import tiny_qwen2

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf", "llama_cpp")),
    reason="export needs torch, transformers, gguf and llama-cpp-python (the `model` and `gguf` extras)",
)
PROMPT = [{"role": "user", "content": "What's the weather in Paris? Call get_weather(city)."}]


def prompt_ids(model_dir: Path) -> list[int]:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(model_dir).apply_chat_template(PROMPT, add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def log_softmax(x: Any) -> Any:
    import numpy as np

    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def llama_cpp_logprobs(path: Path, ids: list[int]) -> Any:
    import llama_cpp
    import numpy as np

    engine = llama_cpp.Llama(str(path), n_ctx=512, logits_all=True, verbose=False, seed=0)
    try:
        engine.eval(ids)
        return log_softmax(np.array(engine.scores[: len(ids)], dtype=np.float64))
    finally:
        engine.close()


def transformers_logprobs(model: Any, ids: list[int]) -> Any:
    import numpy as np
    import torch

    with torch.no_grad():
        return log_softmax(model(torch.tensor([ids])).logits[0].double().numpy().astype(np.float64))


def perturb(layer: Any, scale: float, seed: int = 0) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def test_tiny_checkpoint_exports_only_what_changed_and_llama_cpp_agrees_with_transformers(tmp_path: Path) -> None:
    import numpy as np
    from transformers import AutoModelForCausalLM

    from inftool_env.train.loop.export import export_gguf, hf_to_gguf

    base_dir = tiny_qwen2(tmp_path / "tiny")
    base = hf_to_gguf(base_dir, tmp_path / "tiny.gguf")  # F32, the embedded model's tokenizer and template
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    ids = prompt_ids(base_dir)
    before = transformers_logprobs(model, ids)
    assert np.abs(llama_cpp_logprobs(base, ids) - before).max() < 1e-3

    perturb(model.model.layers[1].self_attn, 0.05)  # q/k included: a wrong permutation would show
    model.save_pretrained(tmp_path / "trained")
    result = export_gguf(tmp_path / "trained", tmp_path / "trained.gguf", base_gguf=base, dtype="f32")
    assert sorted(result.replaced) == [f"blk.1.attn_{n}" for n in
                                       ("k.bias", "k.weight", "output.weight", "q.bias", "q.weight", "v.bias",
                                        "v.weight")]  # fmt: skip
    assert result.kept == 27 - 7  # 2 layers x 12 tensors, embedding, output norm, output
    after = transformers_logprobs(model, ids)
    exported = llama_cpp_logprobs(result.path, ids)
    assert np.abs(after - before).max() > 0.05  # the perturbation is visible ...
    assert np.abs(exported - after).max() < 1e-3  # ... and llama.cpp computes the trained model

    with pytest.raises(InftoolError, match="dtype"):
        export_gguf(tmp_path / "trained", tmp_path / "x.gguf", base_gguf=base, dtype="q3")
    with pytest.raises(InftoolError, match="no config.json"):
        export_gguf(tmp_path, tmp_path / "x.gguf", base_gguf=base)
    assert not list(tmp_path.glob("x.gguf*"))  # nothing half-written is left behind


@pytest.mark.slow  # writes a 2.5 GB checkpoint and two 491 MB GGUFs: ~40 s alone, 100 s on a busy machine
def test_embedded_model_with_one_layer_perturbed_matches_transformers_within_the_quantization_gap(
    tmp_path: Path,
) -> None:
    """The embedded Q4_K_M file with its last layer trained (perturbed) in transformers: the export
    replaces that layer's 12 tensors only, and llama.cpp's logprobs of the export track transformers'
    as closely as the base file tracks its own dequantized weights; the base file does not."""
    import numpy as np
    from transformers import AutoModelForCausalLM

    from inftool_env.llm.embedded import embedded_gguf, export_hf
    from inftool_env.llm.gguf import GGUFChat
    from inftool_env.train.loop.export import export_gguf

    hf = export_hf()
    ids = prompt_ids(hf)
    model = AutoModelForCausalLM.from_pretrained(hf)
    gap_base = np.abs(llama_cpp_logprobs(embedded_gguf(), ids) - transformers_logprobs(model, ids)).mean()

    same = export_gguf(hf, tmp_path / "same.gguf")  # nothing changed: the base file, byte for byte
    assert same.replaced == () and filecmp.cmp(same.path, embedded_gguf(), shallow=False)
    greedy = [GGUFChat(str(p), max_new_tokens=24, prefix_cache=False) for p in (embedded_gguf(), same.path)]
    texts = [g._one(ids, 0.0, 24, 0)[0] for g in greedy]
    for g in greedy:
        g.close()
    assert texts[0] == texts[1] and len(texts[0]) > 3

    perturb(model.model.layers[23], 0.005)
    model.save_pretrained(tmp_path / "trained")
    trained = transformers_logprobs(model, ids)
    result = export_gguf(tmp_path / "trained", tmp_path / "trained.gguf")
    assert len(result.replaced) == 12 and all(n.startswith("blk.23.") for n in result.replaced)
    gap_export = np.abs(llama_cpp_logprobs(result.path, ids) - trained).mean()
    gap_stale = np.abs(llama_cpp_logprobs(embedded_gguf(), ids) - trained).mean()
    print(f"mean |logprob gap| (nats): base file {gap_base:.4f}, export {gap_export:.4f}, stale {gap_stale:.4f}")
    assert gap_export < 1.5 * gap_base < gap_stale
