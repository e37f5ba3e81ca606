"""A warm-start example's forward and backward with its decision anchor, on the embedded model (fp32, the
top 4 layers training): the policy's and the reference's layers below the top run once for both
(``PairedLogits.together``, what the trainer does) against two whole forwards (``apart``, before), in
interleaved rounds of one run so the ratio compares like with like on this shared machine.

Each example is a Bookshelf task's first prompt as the trainer renders it (system prompt and tools)
followed by an answer of ``--answer`` tokens, all of them targets, the first also the anchored decision.

    python bench/bench_sft_anchor.py [--rounds 3] [--tasks 4] [--answer 48]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import ENV, REPO, first_prompts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=4, help="examples per round")
    parser.add_argument("--answer", type=int, default=48, help="answer tokens after each prompt")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inftool_env.llm.embedded import export_hf
    from inftool_env.llm.local import LocalChat
    from inftool_env.tasks import load_tasks
    from inftool_env.train.grpo.model import chosen_logprobs, make_trainable, reference_of
    from inftool_env.train.grpo.trunk import PairedLogits

    torch.manual_seed(0)
    model_dir = export_hf()
    tasks = load_tasks(REPO / "servers" / "bookshelf" / "tasks.jsonl")[: args.tasks]
    renderer = LocalChat()
    renderer.tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = anyio.run(first_prompts, [t.id for t in tasks], renderer)
    call = '<tool_call>\n{"name": "getBook", "arguments": {"bookId": "boo_1"}}\n</tool_call>'
    answer = renderer.tokenizer.encode(call)
    answer = (answer * (args.answer // len(answer) + 1))[: args.answer]
    examples = [(p + answer, list(range(len(p), len(p) + len(answer))), [len(p)]) for p in prompts]

    model = make_trainable(AutoModelForCausalLM.from_pretrained(model_dir), train_layers=4, lora=None)
    paired = PairedLogits(model, reference_of(model, None))
    paired(*examples[0])  # its first use checks the shared path against whole forwards
    print(f"embedded model ({ENV} prompts {[len(p) for p in prompts]} tokens + {len(answer)} answer tokens); "
          f"layers run once for both: {paired.bottom} of {len(model.get_decoder().layers)}; "
          f"checked against whole forwards: {'agree' if paired.shared else 'DISAGREE'}")  # fmt: skip

    def one_pass(method: Any) -> None:
        for seq, targets, decisions in examples:
            logits, chosen, start = method(seq, targets, decisions)
            loss = -chosen_logprobs(logits, chosen).sum() + (logits[:1] - start).square().mean()
            loss.backward()
            model.zero_grad(set_to_none=True)

    ways = {"two whole forwards (before)": paired.apart, "shared layers once (now)": paired.together}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, method in ways.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            one_pass(method)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    print(f"{'':30} {'wall (median)':>14} {'cpu (median)':>13}   {args.tasks} examples, {args.rounds} rounds")
    for name in ways:
        print(f"{name:30} {statistics.median(wall[name]):13.2f}s {statistics.median(cpu[name]):12.2f}s")
    before, now = (statistics.median(wall[name]) for name in ways)
    before_cpu, now_cpu = (statistics.median(cpu[name]) for name in ways)
    print(f"speed-up of an anchored warm-start example: {before / now:.2f}x wall, {before_cpu / now_cpu:.2f}x cpu")


if __name__ == "__main__":
    main()
