"""The GRPO trainer on the embedded model (fp32 transformers), in one run so the ratios compare like
with like on this shared, noisy machine:

- plain inference: the same model through the project's ``hf:`` backend (transformers ``generate()``,
  batched), on the same first-turn prompts the training rollouts start from (tokens/s);
- training: ``train_grpo`` on Bookshelf tasks (a real MCP server), each step's wall time split
  between generation, env and optimisation, and the rollouts' tokens/s while training;
- ``--rollout-dtype both``: the training run twice, rollouts sampled from the float32 weights and then
  from a bfloat16 copy (``rollout_dtype``), and the ratio of their rollout tokens/s.

    python bench/bench_train.py [--steps 1] [--tasks 2] [--group 4] [--tokens 64] [--max-turns 2] [--train-layers 4]
                                [--rollout-dtype float32|bfloat16|both]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parent.parent
ENV = "inftool/Bookshelf-v0"


async def first_prompts(task_ids: list[str], renderer: Any) -> list[list[int]]:
    """Each task's first-turn prompt as the training policy renders it (messages + tools)."""
    from inftool_env.registration import make

    env = make(ENV)
    prompts = []
    try:
        for task_id in task_ids:
            obs, _ = await env.reset(seed=0, options={"task_id": task_id})
            prompts.append(renderer.render(obs["messages"], obs["tools"]))
    finally:
        await env.close()
    return prompts


def plain_inference(model_dir: Path, prompts: list[list[int]], group: int, tokens: int) -> tuple[float, int, float]:
    """transformers generate() at batch len(prompts) * group, temperature 1: (tokens/s, tokens, seconds)."""
    from inftool_env.llm.hf import HFChat

    chat = HFChat(str(model_dir), max_new_tokens=tokens, max_batch=len(prompts) * group)
    batch = [p for p in prompts for _ in range(group)]
    started = time.perf_counter()
    out = chat._generate(batch, 1.0, tokens, 0)
    seconds = time.perf_counter() - started
    made = sum(len(ids) for ids, _ in out)
    del chat
    return made / seconds, made, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=2, help="tasks per step")
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per assistant turn")
    parser.add_argument("--max-turns", type=int, default=2, help="assistant turns per episode")
    parser.add_argument("--train-layers", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rollout-dtype", choices=("float32", "bfloat16", "both"), default="float32")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from inftool_env.llm.embedded import export_hf
    from inftool_env.llm.local import LocalChat
    from inftool_env.tasks import load_tasks
    from inftool_env.train.grpo import GRPOConfig
    from inftool_env.train.grpo.rollout import schedule

    model_dir = export_hf()
    tasks = load_tasks(REPO / "servers" / "bookshelf" / "tasks.jsonl")
    config = GRPOConfig(model="embedded", steps=args.steps, tasks_per_step=args.tasks, group=args.group,
                        max_new_tokens=args.tokens, max_turns=args.max_turns, train_layers=args.train_layers,
                        device=args.device, lr=1e-5, clip_to="proximal")  # fmt: skip
    # The tasks the first training step plays, so the plain run sees the same prompts.
    first = [tasks[i].id for i in schedule(len(tasks), args.tasks, 0, config.seed)]
    renderer = LocalChat()  # the chat template alone: renders prompts as every local model does
    renderer.tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = anyio.run(first_prompts, first, renderer)
    print(f"embedded model, fp32; {len(first)} Bookshelf tasks x group {args.group}; prompts "
          f"{[len(p) for p in prompts]} tokens; up to {args.tokens} new tokens a turn")  # fmt: skip

    plain_rate, plain_tokens, plain_s = plain_inference(model_dir, prompts, args.group, args.tokens)
    print(f"plain inference (hf: generate, batch {len(prompts) * args.group}): {plain_tokens} tokens in "
          f"{plain_s:.1f}s = {plain_rate:.1f} tokens/s")  # fmt: skip

    dtypes = ["float32", "bfloat16"] if args.rollout_dtype == "both" else [args.rollout_dtype]
    rates = {dtype: train_and_report(config.model_copy(update={"rollout_dtype": dtype}), tasks, args.steps, plain_rate)
             for dtype in dtypes}  # fmt: skip
    if len(rates) == 2:
        print(f"rollout tokens/s while training, bfloat16 copy / float32 weights: {rates['bfloat16']:.1f} / "
              f"{rates['float32']:.1f} = {rates['bfloat16'] / rates['float32']:.2f}x")  # fmt: skip


def train_and_report(config: Any, tasks: list[Any], steps: int, plain_rate: float) -> float:
    """One training run on ``tasks``: its steps' split printed; its rollout tokens/s returned."""
    from inftool_env.train.grpo import train_grpo

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = train_grpo(config, [(ENV, tasks)], Path(out), progress=False)
        whole = time.perf_counter() - started
        records = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    print(f"training, rollouts from the {config.rollout_dtype} weights: {steps} GRPO step(s) in {whole:.0f}s "
          "(model load and checkpoint included)")  # fmt: skip
    print(f"{'step':>4}  {'generation':>10}  {'env':>6}  {'optimise':>8}  {'total':>6}  "
          f"{'rollout tok':>11}  {'tok/s':>6}  {'trained tok':>11}  {'reward':>6}")  # fmt: skip
    for r in records:
        t = r["time_s"]
        print(f"{r['step']:>4}  {t['generation']:>9.1f}s  {t['env']:>5.1f}s  {t['optimisation']:>7.1f}s  "
              f"{t['total']:>5.1f}s  {r['rollout_tokens']:>11}  {r['rollout_tokens_per_s']:>6.1f}  "
              f"{r['tokens_trained']:>11}  {r['reward_mean']:>6.2f}")  # fmt: skip
    gen = sum(r["time_s"]["generation"] for r in records)
    env = sum(r["time_s"]["env"] for r in records)
    opt = sum(r["time_s"]["optimisation"] for r in records)
    total = sum(r["time_s"]["total"] for r in records)
    made = sum(r["rollout_tokens"] for r in records)
    rate = made / gen if gen else 0.0
    print(f"split of a step's wall time: generation {gen / total:.0%}, env {env / total:.0%}, "
          f"optimisation {opt / total:.0%}")  # fmt: skip
    print(f"rollout tokens/s while training / plain inference tokens/s: {rate:.1f} / {plain_rate:.1f} = "
          f"{rate / plain_rate:.2f}x")  # fmt: skip
    trained = sum(r["tokens_trained"] for r in records)
    if opt and trained:
        print(f"optimisation: {trained} sampled tokens scored in {opt:.1f}s ({trained / opt:.1f} trained tokens/s)")
    weights = [r["is_weight_mean"] for r in records if r.get("is_weight_mean") is not None]
    if weights:  # pi/mu: 1 where rollouts sample from the weights that train
        print(f"importance weight pi/mu, mean over the steps: {sum(weights) / len(weights):.4f}")
    return rate


if __name__ == "__main__":
    main()
