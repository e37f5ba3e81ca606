"""The embedded model on this machine, every local backend measured in the same run (the machine is
shared and noisy, so only ratios within a run mean much):

- decode tokens/s: transformers at batch 1 (the baseline) and batched, llama.cpp at batch 1;
- multi-turn: llama.cpp's seconds per later turn of a Bookshelf episode with the prompt-prefix cache
  against without (each turn's prompt is the episode's token record, so the cache holds all but the
  new messages);
- the env's share of a rollout's wall time, with the fastest backend as the assistant.

    python bench/bench_model.py [--tokens 48] [--batch 8] [--episodes 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from typing import Any

import anyio

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_episode
from inftool_env.eval.bfcl import run_category
from inftool_env.eval.bfcl_data import CATEGORIES, load_category
from inftool_env.llm.local import LocalChat
from inftool_env.policies.chat import ChatPolicy
from inftool_env.tasks import Task

PROMPT = [{"role": "user", "content": "Write a Python function that reverses a string, with a docstring."}]
BOOKSHELF = "servers/bookshelf/openapi.yaml"


async def decode_rate(model: LocalChat, batch: int, tokens: int) -> float:
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
    """Records the seconds each turn spent in the model, so the rest of a sequential rollout is the env's."""

    turns_s: list[float] = []

    async def act(self, observation: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return await super().act(observation)
        finally:
            TimedPolicy.turns_s.append(time.perf_counter() - start)


async def later_turn_seconds(model: LocalChat, turns: int) -> float:
    """Median model seconds of turns 2.. of one Bookshelf episode (the small model keeps calling tools)."""
    task = Task(id="add", turns=["Please add the book 'Dune' by Frank Herbert to the shelf, then list the shelf."])
    config = EnvConfig(id="bench/Shelf-v0", servers=[ServerConfig(name="shelf", spec=BOOKSHELF)],
                       tasks=TaskSource(source="-"), limits=Limits(max_turns=turns))  # fmt: skip
    env = ToolEnv(config, [task], {"shelf": compile_spec(BOOKSHELF)})
    TimedPolicy.turns_s = []
    try:
        await run_episode(env, lambda t: TimedPolicy(model, max_tokens=64), seed=0)
    finally:
        await env.close()
    return statistics.median(TimedPolicy.turns_s[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    from inftool_env.llm.hf import HFChat

    hf = HFChat("embedded", max_batch=args.batch)
    gguf = None
    if importlib.util.find_spec("llama_cpp") is not None:
        from inftool_env.llm.gguf import GGUFChat

        gguf = GGUFChat("embedded")
    else:
        print("llama.cpp: not installed (the `gguf` extra); its rows are skipped")
    single, batched, llama = [], [], []
    for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits all alike
        single.append(anyio.run(decode_rate, hf, 1, args.tokens))
        batched.append(anyio.run(decode_rate, hf, args.batch, args.tokens))
        if gguf is not None:
            llama.append(anyio.run(decode_rate, gguf, 1, args.tokens))
    one = statistics.median(single)
    print(f"{hf.name}: decode, {args.tokens} new tokens, greedy, median of {args.rounds} rounds")
    print(f"  {'backend':<30}{'tokens/s':>10}{'vs transformers batch 1':>26}")
    rows = [("transformers, batch 1", one), (f"transformers, batch {args.batch}", statistics.median(batched))]
    if gguf is not None:
        rows.append(("llama.cpp, batch 1", statistics.median(llama)))
    for name, rate in rows:
        print(f"  {name:<30}{rate:>10.1f}{rate / one:>25.2f}x")

    fastest: LocalChat = hf
    if gguf is not None:
        fastest = gguf
        cached, cold = [], []
        for _ in range(args.rounds):
            gguf.prefix_cache = True
            cached.append(anyio.run(later_turn_seconds, gguf, args.turns))
            gguf.prefix_cache = False
            cold.append(anyio.run(later_turn_seconds, gguf, args.turns))
        gguf.prefix_cache = True
        warm_s, cold_s = statistics.median(cached), statistics.median(cold)
        print(f"multi-turn (llama.cpp): model seconds per later turn of a {args.turns}-turn Bookshelf episode")
        print(f"  prefix cache off {cold_s:>6.2f}s   on {warm_s:>6.2f}s   ratio {cold_s / warm_s:.2f}x (off / on)")

    data = load_category(CATEGORIES["simple_python"], limit=args.episodes)
    TimedPolicy.turns_s = []
    start = time.perf_counter()
    anyio.run(lambda: run_category(data, lambda task: TimedPolicy(fastest, max_tokens=64), concurrency=1,
                                   progress=False))  # fmt: skip
    wall, model_s = time.perf_counter() - start, sum(TimedPolicy.turns_s)
    print(f"rollout ({fastest.name} on {type(fastest).__name__}): {args.episodes} BFCL simple_python episodes, "
          "one at a time")  # fmt: skip
    print(f"  wall {wall:.1f}s, model {model_s:.1f}s; the env's share {1 - model_s / wall:.2%}")
    if gguf is not None:
        gguf.close()


if __name__ == "__main__":
    main()
