"""``inftool evolve``: registered by the main CLI through ``add_commands``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from inftool_env.argtypes import at_least, positive_int, seed_arg, share
from inftool_env.errors import InftoolError, first_invalid

EPILOG = (
    "Each round: evaluate on the held-out split -> plan targets -> synthesize -> GRPO -> export to GGUF -> "
    "evaluate. --eval-bfcl measures BFCL categories each round (never steers synthesis). "
    'Trainer settings: --grpo \'{"steps": 20, "group": 4}\' (GRPOConfig fields).\n\nexample:\n'
    "  inftool evolve inftool/Bookshelf-v0 --policy embedded --rounds 2 --out out/evolve "
    "--eval-bfcl parallel,irrelevance --eval-bfcl-limit 50"
)


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("evolve", help="the closed loop: evaluate, find the gaps, synthesize, train, repeat",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("sources", nargs="+", help="registered env ids or raw spec sources (not BFCL's)")
    p.add_argument("--policy", default="embedded", help="the model trained: embedded (default) or an HF directory")
    p.add_argument("--rounds", type=positive_int, default=2)
    p.add_argument("--out", default="out/evolve", help="the run folder (every round's files)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--tasks-per-round", type=positive_int, default=60, help="training tasks per source and round")
    p.add_argument("--eval-tasks", type=positive_int, default=40, help="held-out tasks per source")
    p.add_argument("--categories", nargs="+", help="synthesis categories (default: all that apply)")
    p.add_argument("--irrelevance-share", type=share, default=0.15,
                   help="share of each round's tasks to decline (keeps restraint; default 0.15)")  # fmt: skip
    p.add_argument("--replay-share", type=share, default=0.25,
                   help="share of training tasks replayed from earlier rounds (default 0.25)")  # fmt: skip
    p.add_argument("--foreign-requests", type=at_least(0), default=0,
                   help="with several sources: requests made per source that the others' irrelevance tasks offer "
                   "their own tools, which cannot do them (default 0: none; 8 measured no gain)")  # fmt: skip
    p.add_argument("--eval-via", choices=("gguf", "hf"), default="gguf",
                   help="gguf: checkpoints exported to llama.cpp (default); hf: transformers")  # fmt: skip
    p.add_argument("--eval-max-tokens", type=positive_int, default=128)
    p.add_argument("--eval-bfcl", help="BFCL categories to measure each round, comma-separated (measurement only)")
    p.add_argument("--eval-bfcl-limit", type=positive_int, help="the first N entries of each BFCL category")
    p.add_argument("--grpo", default="{}",
                   help="GRPO settings as JSON: GRPOConfig's field names, which are `inftool train`'s flags with _ "
                   "(but explore_temperature for --explore-first, episode_timeout_s for --episode-timeout); "
                   'train_layers a number or "all"; model is --policy')  # fmt: skip
    p.add_argument("--no-keep-best", dest="keep_best", action="store_false",
                   help="train each round from the latest policy, even one that scored below an earlier")  # fmt: skip
    p.add_argument("--no-fit-budget", dest="fit_budget", action="store_false",
                   help="also synthesize tasks whose answer needs more tokens than a turn allows "
                   "(--eval-max-tokens held out, grpo's max_new_tokens in training)")  # fmt: skip
    p.add_argument("--seed", type=seed_arg, default=0)
    p.set_defaults(run=cmd_evolve)


def cmd_evolve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from inftool_env.train.loop.evolve import EvolveConfig, evolve

    try:
        grpo = json.loads(args.grpo)
    except json.JSONDecodeError as exc:
        raise InftoolError(f"--grpo: not JSON ({exc.msg})") from None
    if not isinstance(grpo, dict):
        raise InftoolError('--grpo: expected a JSON object, e.g. {"steps": 20}')
    bfcl = [c.strip() for c in (args.eval_bfcl or "").split(",") if c.strip()]
    fields = {"sources": args.sources, "policy": args.policy, "rounds": args.rounds, "seed": args.seed,
              "tasks_per_round": args.tasks_per_round, "eval_tasks": args.eval_tasks, "categories": args.categories,
              "irrelevance_share": args.irrelevance_share, "replay_share": args.replay_share,
              "foreign_requests": args.foreign_requests,
              "eval_via": args.eval_via, "eval_max_tokens": args.eval_max_tokens, "bfcl_categories": bfcl,
              "bfcl_limit": args.eval_bfcl_limit, "grpo": grpo, "keep_best": args.keep_best,
              "fit_budget": args.fit_budget}  # fmt: skip
    try:
        config = EvolveConfig(**fields)
    except ValidationError as exc:
        raise InftoolError(f"evolve: {first_invalid(exc)}") from None
    if bfcl:
        from inftool_env.eval.bfcl_data import resolve_categories

        resolve_categories(bfcl)  # a typo fails now, not after round 1's training
    table = evolve(config, args.out, resume=args.resume)
    print(table)
    print(f"run folder: {args.out} (metrics.jsonl, progress.png, summary.txt)")
    return 0
