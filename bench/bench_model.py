"""The embedded model on this machine: decode tokens/s at batch 1 and batched (the ratio is the
batching gain, both measured in this run), and the env's share of a rollout's wall time with it.

    python bench/bench_model.py [--tokens 48] [--batch 8] [--episodes 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import anyio

from inftool_env.eval.bfcl import run_category
from inftool_env.eval.bfcl_data import CATEGORIES, load_category
from inftool_env.llm.hf import HFChat
from inftool_env.policies.chat import ChatPolicy

PROMPT = [{"role": "user", "content": "Write a Python function that reverses a string, with a docstring."}]


async def decode_rate(model: HFChat, batch: int, tokens: int) -> float:
    results = []
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(batch):
            messages = [{"role": "system", "content": f"Request {i}."}, *PROMPT]  # distinct prompts, one batch

            async def one(m: list[dict[str, Any]] = messages) -> None:
                results.append(await model.complete(m, max_tokens=tokens))

            tg.start_soon(one)
    elapsed = time.perf_counter() - start
    return sum(r.usage.completion_tokens for r in results) / elapsed


class TimedPolicy(ChatPolicy):
    """Adds up the seconds spent in the model, so the rest of a sequential rollout is the env's."""

    model_s = 0.0

    async def act(self, observation: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return await super().act(observation)
        finally:
            TimedPolicy.model_s += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    model = HFChat("embedded", max_batch=args.batch)
    print(f"{model.name}: loaded in {time.perf_counter() - start:.0f}s on {model.device}")
    single, batched = [], []
    for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both alike
        single.append(anyio.run(decode_rate, model, 1, args.tokens))
        batched.append(anyio.run(decode_rate, model, args.batch, args.tokens))
    one, many = statistics.median(single), statistics.median(batched)
    print(f"decode, {args.tokens} new tokens, greedy, median of {args.rounds} rounds")
    print(f"  batch 1          {one:>7.1f} tokens/s")
    print(f"  batch {args.batch:<2}         {many:>7.1f} tokens/s")
    print(f"  ratio            {many / one:>7.2f}x (batched / batch 1)")

    data = load_category(CATEGORIES["simple_python"], limit=args.episodes)
    start = time.perf_counter()
    anyio.run(lambda: run_category(data, lambda task: TimedPolicy(model, max_tokens=64), concurrency=1,
                                   progress=False))  # fmt: skip
    wall = time.perf_counter() - start
    print(f"rollout: {args.episodes} BFCL simple_python episodes, one at a time")
    print(f"  wall {wall:.1f}s, model {TimedPolicy.model_s:.1f}s; the env's share {1 - TimedPolicy.model_s / wall:.2%}")


if __name__ == "__main__":
    main()
