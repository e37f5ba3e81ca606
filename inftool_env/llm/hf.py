"""A local Hugging Face transformers model as a ``ChatModel``: CPU or GPU, fp32 on CPU, batched.

Concurrent requests with the same sampling settings are generated together (left-padded), in a
worker thread so the event loop keeps serving. The chat template renders the tools; the reply's
``<tool_call>`` blocks (Hermes/Qwen) become OpenAI ``tool_calls``. Token ids and per-token logprobs
of the completion come back with every reply. torch and transformers are imported only here (the
``model`` extra).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm import Completion, Usage
from inftool_env.parsing import get_format

_HERMES = get_format("hermes")
BATCH_WINDOW_S = 0.02  # how long the first request waits for others to join its batch


@dataclass
class _Request:
    prompt: list[int]
    future: asyncio.Future[tuple[list[int], list[float]]] = field(repr=False)


class HFChat:
    def __init__(self, path: str, *, max_new_tokens: int = 256, max_batch: int = 8, device: str | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise PolicyError(
                f"hf: models need torch and transformers ({exc}); pip install 'inftool-env[model]'"
            ) from None
        if path == "embedded":
            from inftool_env.llm.embedded import NAME, embedded_gguf

            file, self.name = embedded_gguf(), NAME
        else:
            file, self.name = Path(path), Path(path).name
            if not file.exists():
                raise PolicyError(f"hf:{path}: no such model file or directory")
        where, gguf = (str(file.parent), file.name) if file.suffix == ".gguf" else (str(file), None)
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=gguf)
        self.tokenizer.padding_side = "left"
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16  # this CPU has no fast bf16
        model: Any = AutoModelForCausalLM.from_pretrained(where, gguf_file=gguf, dtype=dtype)
        self.model = model.to(self.device).eval()
        self.max_new_tokens, self.max_batch = max_new_tokens, max_batch
        self._queues: dict[tuple[float, int, int | None], list[_Request]] = {}
        self._lock = asyncio.Lock()

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        """The prompt's token ids, by the model's own chat template (tool-call arguments as objects)."""
        prepared = []
        for m in messages:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [
                    {**c, "function": {**c["function"], "arguments": _as_object(c["function"].get("arguments"))}}
                    for c in m["tool_calls"]
                ]
            prepared.append(m)
        encoded: Any = self.tokenizer.apply_chat_template(
            prepared, tools=list(tools) if tools else None, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> Completion:
        prompt = self.render(messages, tools)
        key = (float(temperature or 0.0), int(max_tokens or self.max_new_tokens), seed)
        future: asyncio.Future[tuple[list[int], list[float]]] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append(_Request(prompt, future))
        asyncio.get_running_loop().call_later(BATCH_WINDOW_S, lambda: asyncio.ensure_future(self._drain(key)))
        ids, lps = await future
        text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
        parsed = _HERMES.parse(text)
        message: dict[str, Any] = {"role": "assistant", "content": parsed.content if parsed.calls else text}
        if parsed.calls and parsed.error is None:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for i, c in enumerate(parsed.calls)
            ]  # fmt: skip
        finish = "tool_calls" if "tool_calls" in message else ("length" if len(ids) >= key[1] else "stop")
        return Completion(message, Usage(len(prompt), len(ids), 1), finish, token_ids=ids,
                          logprobs=lps if logprobs else None)  # fmt: skip

    async def _drain(self, key: tuple[float, int, int | None]) -> None:
        async with self._lock:  # one generate() at a time: the model is not re-entrant
            while self._queues.get(key):
                batch, self._queues[key] = self._queues[key][: self.max_batch], self._queues[key][self.max_batch :]
                try:
                    results = await asyncio.to_thread(self._generate, [r.prompt for r in batch], *key)
                except Exception as exc:  # the model broke: every waiting request hears why
                    for r in batch:
                        r.future.set_exception(PolicyError(f"{self.name}: generation failed: {exc}"))
                    continue
                for r, result in zip(batch, results, strict=True):
                    r.future.set_result(result)

    def _generate(
        self, prompts: list[list[int]], temperature: float, max_new: int, seed: int | None
    ) -> list[tuple[list[int], list[float]]]:
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
                                      output_scores=True, return_dict_in_generate=True, **sampling)  # fmt: skip
        new = out.sequences[:, width:]
        scores = torch.stack(out.scores, dim=1).log_softmax(-1)  # (batch, steps, vocab)
        chosen = scores.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        stops = {self.tokenizer.eos_token_id, pad, *self._stop_ids()}
        results = []
        for row, lps in zip(new.tolist(), chosen.tolist(), strict=True):
            end = next((i for i, t in enumerate(row) if t in stops), len(row))
            results.append((row[:end], lps[:end]))
        return results

    def _stop_ids(self) -> list[int]:
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return [end] if isinstance(end, int) and end >= 0 else []


def _as_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments
