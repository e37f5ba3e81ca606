"""The tiny model the training tests share: the embedded model's architecture (Qwen2) with tiny dims and
random weights, beside the embedded model's real tokenizer, saved as an HF directory (seconds to build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_qwen2(where: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=4096, bos_token_id=151643, eos_token_id=151645,
                         pad_token_id=151643)  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(where)
    gguf_tokenizer(embedded_gguf()).save_pretrained(where)
    return where


def tool_entry(name: str, where: str = "for the user") -> dict[str, Any]:
    """An offered tool of two parameters, its description made from its name (prompts of a chosen length)."""
    return {"type": "function", "function": {
        "name": name, "description": f"{name.replace('_', ' ').capitalize()} {where}.",
        "parameters": {"type": "object", "properties": {
            "id": {"type": "string", "description": "the item's id"},
            "limit": {"type": "integer", "description": "how many at most"}}, "required": ["id"]}}}  # fmt: skip
