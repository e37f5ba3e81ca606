"""Rollout sampling with a finished row leaving its batch (``TorchChat.retire_finished``, the trainer's
default) against every row kept to the batch's end (before), on the embedded model (fp32), in interleaved
rounds of one run so the ratio compares like with like on this shared machine.

Each round samples one training step's first turns: ``--tasks`` Bookshelf tasks' first prompts as the
trainer renders them, ``--group`` samples each, at temperature 1 with ``--tokens`` new tokens at most. The
same seeds give the same replies either way (checked: a row's sample must not depend on its batch); the
difference is the rows each decode pass runs.

    python bench/bench_retire_rows.py [--rounds 2] [--tasks 4] [--group 4] [--tokens 128]
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
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128, help="new tokens a reply may take")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inftool_env.llm.embedded import export_hf
    from inftool_env.llm.local import LocalChat
    from inftool_env.tasks import load_tasks
    from inftool_env.train.grpo.chat import TorchChat

    torch.manual_seed(0)
    model_dir = export_hf()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tasks = load_tasks(REPO / "servers" / "bookshelf" / "tasks.jsonl")[: args.tasks]
    renderer = LocalChat()
    renderer.tokenizer = tokenizer
    prompts = anyio.run(first_prompts, [t.id for t in tasks], renderer)
    batch = [p for p in prompts for _ in range(args.group)]
    seeds = list(range(len(batch)))

    class KeptToTheEnd(TorchChat):
        retire_finished = False

    ways: dict[str, type[TorchChat]] = {"every row to the end (before)": KeptToTheEnd, "finished rows leave": TorchChat}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    replies: dict[str, list[Any]] = {}
    for _ in range(args.rounds):
        for name, chat_class in ways.items():
            chat = chat_class(model, tokenizer, name="embedded", max_new_tokens=args.tokens, max_batch=len(batch))
            started = time.perf_counter()
            out = chat._generate_rows(batch, seeds, 1.0, args.tokens)
            wall[name].append(time.perf_counter() - started)
            replies.setdefault(name, [ids for ids, _ in out])
    lengths = [len(ids) for ids in next(iter(replies.values()))]
    same = sum(a == b for a, b in zip(*replies.values(), strict=True))
    print(f"embedded model, fp32; {ENV} prompts {[len(p) for p in prompts]} tokens x group {args.group}; "
          f"reply lengths {min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}); "
          f"the same reply both ways: {same} of {len(batch)} rows")  # fmt: skip
    print(f"{'':32} {'wall (median)':>14} {'tokens/s':>9}   {args.rounds} rounds")
    for name in ways:
        seconds = statistics.median(wall[name])
        print(f"{name:32} {seconds:13.1f}s {sum(lengths) / seconds:9.2f}")
    before, now = (statistics.median(wall[name]) for name in ways)
    print(f"speed-up of a step's first-turn sampling: {before / now:.2f}x "
          f"(row passes: {len(batch) * max(lengths)} before, {sum(lengths)} now)")  # fmt: skip


if __name__ == "__main__":
    main()
