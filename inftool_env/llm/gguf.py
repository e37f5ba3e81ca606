"""A GGUF model on llama.cpp (``gguf:PATH``, ``gguf:embedded``), through llama-cpp-python: the fastest
path on a CPU (the embedded model decodes ~6x faster than on transformers at batch 1 here). The
prompt is rendered by the model's own chat template through the transformers tokenizer read from the
same file, so every local backend sees the same tokens. llama-cpp-python decodes one sequence at a time, so
requests run one after another; each gets the model's raw logprobs (temperature 1), as vLLM gives.
By default the KV cache of the previous request's longest common prefix is reused: an episode's
next turn (its prompt is the episode's token record, see ``episode_tokens.py``) evaluates only its
new tokens (3.6-4.7x faster per turn here, bench/bench_model.py). Evaluating a prompt in different
pieces changes the quantized arithmetic: logprobs then differ from a cold start by up to ~0.06 nats
(measured; the greedy tokens did not change). ``prefix_cache=0`` evaluates every prompt whole, so
equal inputs give equal outputs.

Install with the ``gguf`` extra; it compiles llama.cpp (~3 minutes on two cores with the CMAKE_ARGS
the Makefile sets, ~7 without).
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm.local import Generated, LocalChat, abandoned

# Plain temperature sampling (llama.cpp's defaults add top-k 40, top-p 0.95 and min-p 0.05), so a
# sampled token's logprob is the policy's own, as a trainer assumes.
PLAIN_SAMPLING = {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0}


def warn_if_amx(llama_cpp: Any) -> None:
    """llama.cpp's AMX path segfaults in the first decode on some AMX CPUs (seen on a 2-core Xeon VM;
    llama.cpp issue 20824), a crash with no message: say beforehand what to rebuild if it comes."""
    if b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info():
        warnings.warn(
            "this llama-cpp-python build uses llama.cpp's AMX kernels, which crash on some CPUs; if it "
            "segfaults, rebuild it without them: CFLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
            'CXXFLAGS="$CFLAGS" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36 '
            "(the Makefile does)",
            RuntimeWarning,
            stacklevel=3,
        )


class GGUFChat(LocalChat):
    def __init__(
        self, path: str, *, max_new_tokens: int = 256, threads: int | None = None, prefix_cache: bool = True
    ) -> None:
        if path != "embedded" and (not Path(path).is_file() or Path(path).suffix != ".gguf"):
            raise PolicyError(f"gguf:{path}: no such .gguf file")
        try:
            import llama_cpp
            import numpy as np
            import transformers  # noqa: F401 - renders the chat template
        except ImportError as exc:
            need = "llama-cpp-python and transformers"
            raise PolicyError(f"gguf: models need {need} ({exc}); pip install 'inftool-env[gguf]'") from None
        from inftool_env.llm.embedded import model_path

        file, self.name = model_path(path)
        warn_if_amx(llama_cpp)
        self._llama_cpp, self._np = llama_cpp, np
        self.tokenizer = gguf_tokenizer(file)
        # n_ctx=0: the context the model was trained for; the KV cache is small for small models.
        self.engine: Any = llama_cpp.Llama(str(file), n_ctx=0, n_threads=threads or os.cpu_count(), seed=0,
                                           verbose=False)  # fmt: skip
        self._n_vocab, self._n_ctx = int(self.engine.n_vocab()), int(self.engine.n_ctx())
        self.max_new_tokens, self.max_batch, self.prefix_cache = max_new_tokens, 1, prefix_cache
        self._engine_lock = threading.Lock()  # one llama.cpp context, whichever event loop asks
        self._setup_batching()

    def close(self) -> None:
        """Free llama.cpp's context now rather than at interpreter exit."""
        with self._engine_lock:
            self.engine.close()

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[Generated]:
        with self._engine_lock:
            return [self._one(prompt, temperature, max_new, seed) for prompt in prompts]

    def _one(self, prompt: list[int], temperature: float, max_new: int, seed: int | None) -> Generated:
        if len(prompt) >= self._n_ctx:
            raise PolicyError(f"the prompt has {len(prompt)} tokens; {self.name}'s context holds {self._n_ctx}")
        np, logits_of = self._np, self._llama_cpp.llama_get_logits_ith
        engine = self.engine
        if not self.prefix_cache:
            engine.reset()  # generate() then finds no cached prefix to reuse
        engine.set_seed(seed if seed is not None else 0)
        room = min(max_new, self._n_ctx - len(prompt))
        stops = self.stop_ids()
        ids: list[int] = []
        lps: list[float] = []
        for token in engine.generate(prompt, temp=temperature, reset=True, **PLAIN_SAMPLING):
            logits = np.ctypeslib.as_array(logits_of(engine.ctx, -1), shape=(self._n_vocab,))
            top = float(logits.max())
            ids.append(int(token))
            lps.append(float(logits[token]) - top - math.log(float(np.exp(logits - top).sum())))
            if token in stops or len(ids) >= room or abandoned():
                break
        return ids, lps


def gguf_tokenizer(file: Path) -> Any:
    """The file's tokenizer and chat template, as transformers reads them. Converting them from GGUF
    takes ~20 s, so the result is saved once in the cache (keyed by the file's name and size) and
    loaded from there (<1 s)."""
    from transformers import AutoTokenizer

    from inftool_env.llm.embedded import cache_root

    saved = cache_root() / "tokenizers" / f"{file.stem}-{file.stat().st_size}"
    if (saved / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(saved))
    tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
    partial = saved.with_name(f"{saved.name}.partial-{os.getpid()}")
    tokenizer.save_pretrained(str(partial))
    try:
        partial.replace(saved)
    except OSError:  # another process saved it first
        shutil.rmtree(partial, ignore_errors=True)
    return tokenizer
