"""A local Hugging Face transformers model as a ``ChatModel``: CPU or GPU, fp32 on CPU, batched
(left-padded; see ``local.py`` for what every local model shares). torch and transformers are
imported only here (the ``model`` extra).
"""

from __future__ import annotations

from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm.local import Generated, LocalChat, abandoned


class HFChat(LocalChat):
    def __init__(self, path: str, *, max_new_tokens: int = 256, max_batch: int = 8, device: str | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise PolicyError(
                f"hf: models need torch and transformers ({exc}); pip install 'inftool-env[model]'"
            ) from None
        from inftool_env.llm.embedded import hf_model_path
        from inftool_env.llm.gguf import gguf_tokenizer

        file, self.name = hf_model_path(path)
        if not file.exists():
            raise PolicyError(f"hf:{path}: no such model file or directory")
        where, gguf = (str(file.parent), file.name) if file.suffix == ".gguf" else (str(file), None)
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # A GGUF's tokenizer is converted once and cached (gguf_tokenizer), as for llama.cpp.
        self.tokenizer = gguf_tokenizer(file) if gguf else AutoTokenizer.from_pretrained(where)
        self.tokenizer.padding_side = "left"
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16  # this CPU has no fast bf16
        model: Any = AutoModelForCausalLM.from_pretrained(where, gguf_file=gguf, dtype=dtype)
        self.model = model.to(self.device).eval()
        self.max_new_tokens, self.max_batch = max_new_tokens, max_batch
        self._setup_batching()

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[Generated]:
        torch = self._torch
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        if seed is not None:
            torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, pad_token_id=pad,
                                      output_logits=True, return_dict_in_generate=True,
                                      stopping_criteria=[_WhenAbandoned(torch)], **sampling)  # fmt: skip
        new = out.sequences[:, width:]
        scores = torch.stack(out.logits, dim=1).float().log_softmax(-1)  # raw: (batch, steps, vocab)
        chosen = scores.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        return [self.cut_at_stop(row, lps, pad) for row, lps in zip(new.tolist(), chosen.tolist(), strict=True)]


class _WhenAbandoned:
    """A transformers stopping criterion: every row stops once the caller gave the generation up."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch = self.torch
        return torch.full((input_ids.shape[0],), abandoned(), dtype=torch.bool, device=input_ids.device)
