"""``inftool train ENV_IDS|TASKS.jsonl --policy MODEL --out DIR``: the built-in GRPO trainer.

An env id or manifest trains on that env's own tasks; a JSONL file's tasks run in the env named by
``--env``, else in the manifest beside the file that lists it (``inftool synth`` writes one), else in
each task's ``provenance.env_id``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from inftool_env.argtypes import at_least, positive_float, seed_arg
from inftool_env.errors import InftoolError, invalid_why


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a local model with GRPO on environments' gated rewards",
        epilog="Writes DIR/metrics.jsonl, DIR/rollouts.jsonl, DIR/trainer_state/ (for --resume) and\n"
        "DIR/checkpoint/ (an HF directory: evaluate it with --policy hf:DIR/checkpoint).\n\nexample:\n"
        "  inftool train inftool/Bookshelf-v0 --policy embedded --steps 20 --group 4 --max-turns 2 --out out/train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("targets", nargs="+", metavar="ENV_ID|MANIFEST|TASKS.jsonl",
                   help="registered env ids, manifests (.toml) and/or task files")  # fmt: skip
    p.add_argument("--policy", required=True, help="the model to train: embedded (hf:embedded) or an HF directory")
    p.add_argument("--out", required=True, help="the run's folder")
    p.add_argument(
        "--env",
        help="the env that a TASKS.jsonl file's tasks run in (default: the manifest beside the "
        "file that lists it, as `inftool synth` writes one, else each task's provenance.env_id)",
    )
    p.add_argument("--steps", type=at_least(0), default=20, help="GRPO steps (default 20)")
    p.add_argument("--tasks-per-step", type=at_least(1), default=4)
    p.add_argument("--group", type=at_least(2), default=4, help="samples per task (default 4)")
    p.add_argument("--lr", type=float, default=1e-5, help="learning rate (default 1e-5)")
    p.add_argument("--sft-lr", type=float, metavar="LR", help="the warm start's learning rate (default: --lr)")
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--kl", type=float, default=0.0, help="KL penalty to the starting model (default 0: none)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=at_least(1), default=128, help="per assistant turn")
    p.add_argument("--max-turns", type=at_least(1), help="assistant turns per episode (default: the env's own limit)")
    p.add_argument(
        "--episode-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="an episode's wall-clock limit (default: none; an episode past it is scored as it stands)",
    )
    p.add_argument("--train-layers", default="4", help="top N decoder layers to train, or 'all' (default 4)")
    p.add_argument("--lora", type=at_least(1), help="LoRA rank instead of full weights (merged into the checkpoint)")
    p.add_argument("--updates", type=at_least(1), default=1, help="optimiser steps per batch of rollouts")
    p.add_argument("--sft-warmup-steps", type=at_least(0), default=0, help="supervised steps on oracle episodes first")
    p.add_argument("--sft-decides", choices=("never", "pairs", "always"), default="never",
                   help="where the warm start trains a reply's first token, call or decline: never (GRPO "
                   "decides), on near-miss/twin pairs only, or always")  # fmt: skip
    p.add_argument("--sft-call-form", action="store_true",
                   help="train how a call reply opens (the template's tag, not a code fence) where --sft-decides "
                   "leaves its first token out, renormalised over the tokens a call opens with (measured: it "
                   "still made the model call more)")  # fmt: skip
    p.add_argument("--sft-keep-decision", type=float, default=0.0, metavar="W",
                   help="weight of a KL term to the starting model between calling and not at each reply's "
                   "first token in the warm start: keeps its decision while the rest is learnt (default 0: "
                   "off)")  # fmt: skip
    p.add_argument("--explore-first", type=positive_float, metavar="T",
                   help="draw each reply's first token (call or answer) from the top --explore-top-k at "
                   "temperature T, importance-weighted in the loss (default: plain sampling)")  # fmt: skip
    p.add_argument("--explore-top-k", type=at_least(2), default=8, metavar="K",
                   help="the likeliest tokens an explored first token is drawn from (default 8)")  # fmt: skip
    p.add_argument("--explore-after-call", action="store_true",
                   help="with --explore-first: explore the token after each closed tool call too, the one that "
                   "decides between another call and the end of the reply")  # fmt: skip
    p.add_argument("--explore-balanced", action="store_true",
                   help="with --explore-first: draw a reply's first token's side (a call opener or not) at even "
                   "odds, a reply drawn not to call never starting one later, so every group tries both "
                   "decisions; use with --clip-to proximal")  # fmt: skip
    p.add_argument("--clip-to", choices=("behaviour", "proximal"), default="behaviour",
                   help="the loss's clipped ratio: pi/mu (behaviour, default), or pi over the step's first policy, "
                   "weighed by pi/mu truncated at --is-cap (proximal); they differ on explored tokens")  # fmt: skip
    p.add_argument("--is-cap", type=positive_float, default=1.0, metavar="C",
                   help="with --clip-to proximal: truncate the importance weight pi/mu at C (default 1)")  # fmt: skip
    p.add_argument("--partial-calls", action="store_true",
                   help="reward a one-shot task's answer by the share of its calls that match (2 of 3 asked: 0.67), "
                   "not all or nothing, so a parallel group where no sample makes every call has a signal")  # fmt: skip
    p.add_argument("--cut-fails", action="store_true",
                   help="score 0 a sample with a reply cut at --max-new-tokens (a text reply otherwise earns an "
                   "irrelevance task's reward however it ends); measured, it also took away irrelevance's "
                   "signal, as long answers asked for are cut too")  # fmt: skip
    p.add_argument("--text-credit", choices=("all", "first"), default="all",
                   help="the tokens of a reply that makes no call that carry its advantage: all (default), or the "
                   "first, which decides whether to call (the reward never judges a text reply's words)")  # fmt: skip
    p.add_argument("--irrelevance-credit", choices=("all", "first"), default="all",
                   help="the tokens of a reply to an irrelevance task that carry its advantage: all (default), or "
                   "the first (the reward judges there only whether a reply calls, not a call's words)")  # fmt: skip
    p.add_argument("--rollout-dtype", choices=("float32", "bfloat16"), default="float32",
                   help="sample rollouts from the trained weights (float32, default) or a bfloat16 copy synced "
                   "each step: faster generation on CPUs with bf16 instructions and on GPUs; use with "
                   "--clip-to proximal")  # fmt: skip
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved step")
    p.set_defaults(run=cmd_train)


def training_pool(targets: list[str], env: str | None) -> list[tuple[Any, list[Any]]]:
    """(env, tasks) per env: an id or a manifest brings its own tasks, a file's tasks go to their env
    (``--env``, else the manifest beside the file that lists it, else each task's ``provenance.env_id``).
    Each env is built once (an unknown id fails here, with its "did you mean")."""
    from inftool_env.registration import is_manifest_path, make
    from inftool_env.tasks import load_tasks

    tasks: dict[str, list[Any]] = defaultdict(list)
    envs: dict[str, Any] = {}
    files = [t for t in targets if t.endswith(".jsonl") or (Path(t).is_file() and not is_manifest_path(t))]
    if env is not None and not files:
        raise InftoolError("--env: it names the env of task files, and every target is an env (ids or manifests)")
    for target in targets:
        if target in files:
            beside = None if env else manifest_listing(Path(target))
            for task in load_tasks(target):
                env_id = env or beside or task.provenance.get("env_id")
                if not env_id:
                    raise InftoolError(f"{target}: task {task.id!r} names no env, and no manifest beside the file "
                                       "lists it; pass --env ENV_ID or the manifest (.toml)")  # fmt: skip
                tasks[env_id].append(task)
        elif Path(target).is_dir():
            raise InftoolError(f"{target}: a folder; pass its manifest (.toml) or its tasks file (.jsonl)")
        else:
            envs[target] = make(target)
            tasks[target] += envs[target].tasks
    for env_id in tasks:
        if env_id not in envs:
            envs[env_id] = make(env_id)
    return [(envs[env_id], t) for env_id, t in tasks.items()]


def manifest_listing(task_file: Path) -> str | None:
    """The one manifest beside ``task_file`` whose tasks are that file (what ``inftool synth`` writes)."""
    from inftool_env.registration import load_manifest

    found = []
    for path in sorted(task_file.parent.glob("*.toml")):
        try:
            config = load_manifest(path).config
        except InftoolError:
            continue  # not a manifest, or a broken one: it lists nothing
        if (path.parent / config.tasks.source).resolve() == task_file.resolve():
            found.append(str(path))
    return found[0] if len(found) == 1 else None


def cmd_train(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from inftool_env.train.grpo import GRPOConfig, train_grpo
    from inftool_env.train.grpo.config import flag_of

    if args.train_layers == "all":
        train_layers = None
    elif args.train_layers.isdigit() and int(args.train_layers) >= 1:
        train_layers = int(args.train_layers)
    else:
        raise InftoolError(f"--train-layers: expected a whole number of at least 1 or 'all', not {args.train_layers!r}")
    try:
        config = GRPOConfig(
            model=args.policy.removeprefix("hf:"), steps=args.steps, tasks_per_step=args.tasks_per_step,
            group=args.group, lr=args.lr, clip=args.clip, kl=args.kl, temperature=args.temperature,
            max_new_tokens=args.max_new_tokens, max_turns=args.max_turns,
            episode_timeout_s=args.episode_timeout, train_layers=train_layers, lora=args.lora,
            updates=args.updates,
            sft_warmup_steps=args.sft_warmup_steps, sft_lr=args.sft_lr, sft_decides=args.sft_decides,
            sft_call_form=args.sft_call_form,
            sft_keep_decision=args.sft_keep_decision,
            explore_temperature=args.explore_first, explore_top_k=args.explore_top_k,
            explore_after_call=args.explore_after_call, explore_balanced=args.explore_balanced,
            clip_to=args.clip_to,
            is_cap=args.is_cap, partial_calls=args.partial_calls, cut_fails=args.cut_fails,
            text_credit=args.text_credit, irrelevance_credit=args.irrelevance_credit,
            rollout_dtype=args.rollout_dtype,
            seed=args.seed, device=args.device,
        )  # fmt: skip
    except ValidationError as exc:
        field = ".".join(str(x) for x in exc.errors()[0]["loc"])
        where = (flag_of(field) or field).split()[0] if field else "training settings"
        raise InftoolError(f"{where}: {invalid_why(exc)}") from None
    pool = training_pool(args.targets, args.env)
    result = train_grpo(config, pool, Path(args.out), resume=args.resume, progress=True)
    print(f"checkpoint: {result.checkpoint}  (evaluate with --policy hf:{result.checkpoint})")
    return 0
