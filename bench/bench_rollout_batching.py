"""TorchChat's split of a mixed batch into clusters of rows that share a prefix, on and off in one run:
prompt tokens run through the model's prefill (padding included) and wall time of one batch of
``--tasks`` first-turn prompts x ``--group`` samples, one task's prompt offering many more tools than the
others' (as a trainer's step mixing sources sends).

By default on the tiny randomly initialised model the tests use (2 layers, hidden 64), so it runs in
seconds on a CPU; ``--model embedded`` runs the embedded model (its HF export), the one whose costs the
split is for. The prefill-token ratio holds for any model; the wall-time ratio does not: the tiny model's
prefill is nearly free, so only the split's extra decode loops show, where on a CPU the embedded model's
decode step costs only ~40 prefill tokens (see DECODE_STEP_COST in train/grpo/chat.py).

    python bench/bench_rollout_batching.py [--model tiny|embedded] [--tasks 4] [--group 4] [--tokens 16]
        [--long-tools 28]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.train.tiny import tiny_qwen2, tool_entry  # noqa: E402


def prompts(chat: Any, tasks: int, long_tools: int) -> list[list[int]]:
    """One prompt per task: the first offers ``long_tools`` tools, the others 4, 8, ... each under its
    own system prompt (so the batch's common prefix is a few template tokens)."""
    out = []
    for t in range(tasks):
        n = long_tools if t == 0 else 4 * t
        tools = [tool_entry(f"task{t}_action_{i}") for i in range(n)]
        messages = [{"role": "system", "content": f"Source {t}: you act for the user with the tools given."},
                    {"role": "user", "content": f"Please do task number {t} for me."}]  # fmt: skip
        out.append(chat.render(messages, tools))
    return out


def run(model: Any, tokenizer: Any, batch: list[list[int]], tokens: int, split: bool) -> tuple[int, float, int]:
    """(prefilled tokens, seconds, clusters) of one ``_generate_rows`` call on a fresh chat (no cached prefix)."""
    from inftool_env.train.grpo.chat import TorchChat, _clusters

    chat = TorchChat(model, tokenizer, name="bench", max_new_tokens=tokens)
    chat.stop_ids = lambda: set()  # every row generates all its tokens: like for like
    if not split:
        chat.decode_step_cost = math.inf
    prefilled = [0]

    def count(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs["input_ids"]
        if ids.shape[1] > 1:
            prefilled[0] += ids.numel()

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        started = time.perf_counter()
        chat._generate_rows(batch, list(range(len(batch))), 1.0, tokens)
        seconds = time.perf_counter() - started
    finally:
        handle.remove()
    return prefilled[0], seconds, len(_clusters(batch, chat.decode_step_cost * tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per row")
    parser.add_argument("--long-tools", type=int, default=28, help="tools offered by the first task's prompt")
    parser.add_argument("--model", choices=("tiny", "embedded"), default="tiny")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inftool_env.train.grpo.chat import TorchChat

    with tempfile.TemporaryDirectory() as where:
        if args.model == "embedded":
            from inftool_env.llm.embedded import export_hf

            path, what = export_hf(), "the embedded model (fp32)"
        else:
            path, what = tiny_qwen2(Path(where)), "tiny Qwen2 (random weights)"
        model, tokenizer = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    distinct = prompts(TorchChat(model, tokenizer, name=args.model, max_new_tokens=args.tokens), args.tasks,
                       args.long_tools)  # fmt: skip
    batch = [p for p in distinct for _ in range(args.group)]
    print(f"{what}, CPU; {args.tasks} tasks x group {args.group}; prompts "
          f"{[len(p) for p in distinct]} tokens (distinct total {sum(map(len, distinct))}); "
          f"{args.tokens} new tokens a row")  # fmt: skip
    run(model, tokenizer, distinct[1:2], 2, split=False)  # warm up
    off = run(model, tokenizer, batch, args.tokens, split=False)
    on = run(model, tokenizer, batch, args.tokens, split=True)
    for label, (prefilled, seconds, clusters) in (("one batch", off), ("clustered", on)):
        print(f"{label:>10}: {clusters} sub-batch(es), {prefilled} tokens prefilled, {seconds:.2f}s")
    print(f"clustered / one batch: prefill tokens {on[0] / off[0]:.2f}x, wall time {on[1] / off[1]:.2f}x")


if __name__ == "__main__":
    main()
