"""``inftool synth SOURCE --n N [--categories …] [--generator schema|MODEL] [--seed S] [--target REPORT]
[--max-answer-tokens N [--tokenizer T]] --out DIR``.

Writes ``DIR/tasks.jsonl`` and the manifest ``DIR/<Name>-v0.toml`` (``make()`` and ``inftool eval``
take it), prints a progress bar and a closing table. Registered by ``add_commands(subparsers)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from inftool_env.argtypes import positive_int, seed_arg
from inftool_env.errors import InftoolError
from inftool_env.synth.categories import CATEGORIES
from inftool_env.tasks import Task, load_tasks

if TYPE_CHECKING:
    from inftool_env.synth.run import Admit

SOURCE_HELP = (
    "a registered env id (inftool/Bookshelf-v0), a manifest (.toml), or any spec `inftool serve` accepts "
    "(OpenAPI file, function JSON, bfcl:CLASS, python:MODULE:CLASS, stdio:COMMAND, an MCP URL)"
)
EXAMPLE = """example:
  inftool synth servers/bookshelf/openapi.yaml --n 200 --out out/synth/bookshelf
  inftool eval out/synth/bookshelf/Bookshelf-v0.toml --policy oracle
  inftool synth inftool/Bookshelf-v0 --target out/eval/inftool/Bookshelf-v0 --categories multi_step,parallel \\
      --out out/synth/r1"""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "synthesize verified tasks in every category from a spec or an env"
    synth = subparsers.add_parser(
        "synth",
        help=summary,
        description=f"{summary}. Categories: {', '.join(CATEGORIES)} (comma- or space-separated).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("source", help=SOURCE_HELP)
    synth.add_argument(
        "--n",
        type=positive_int,
        default=200,
        help="tasks wanted over all categories (default 200); near misses' twins come beyond N",
    )
    synth.add_argument("--categories", nargs="+", help="a subset of the categories (default: all that apply)")
    synth.add_argument("--generator", default="schema",
                       help="schema (no model, the default) or a model: gguf:embedded, openai:URL#M, …")  # fmt: skip
    synth.add_argument("--seed", type=seed_arg, default=0)
    synth.add_argument("--round", type=int, default=0, help="loop round recorded in each task's provenance")
    synth.add_argument("--target", help="an eval out dir, trajectories.jsonl, BFCL report.json or "
                       "{task_id: success rate} JSON: generate where the policy fails")  # fmt: skip
    synth.add_argument("--target-tasks", help="the tasks the --target report was on (default: DIR/tasks.jsonl "
                       "of the report's env, else the source's own tasks)")  # fmt: skip
    synth.add_argument("--max-answer-tokens", type=positive_int, metavar="N",
                       help="only tasks whose answer fits N tokens a turn (the trainer's generation limit): others "
                       "are drawn in their place (counted by --tokenizer's template; needs transformers)")  # fmt: skip
    synth.add_argument("--tokenizer", metavar="PATH_OR_ID",
                       help="the trained model's tokenizer for --max-answer-tokens: an HF directory or model id, "
                       "or embedded (the default)")  # fmt: skip
    synth.add_argument("--out", required=True, help="output folder")
    synth.set_defaults(run=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from inftool_env.cli import warn_lost_operations
    from inftool_env.synth.categories import parse_categories
    from inftool_env.synth.run import env_config, synthesize, too_few
    from inftool_env.synth.world import open_world

    categories = parse_categories(args.categories)
    admit = _answer_budget(args)  # a tokenizer that does not load fails before any work
    world = open_world(args.source, model=None if args.generator == "schema" else args.generator)
    out = Path(args.out)
    ours = f"{env_config(world).id.rsplit('/', 1)[-1]}.toml"
    others = sorted(p.name for p in out.glob("*.toml") if p.name != ours) if out.is_dir() else []
    if others:  # its manifest would point at this run's tasks.jsonl: refused before any work
        raise InftoolError(f"{out} holds another env's synthesized tasks ({others[0]}); pick another --out")
    warn_lost_operations(world.compiled)  # no task will use what the spec lost
    plan = None
    if args.target:
        from inftool_env.synth.target import plan_targets

        plan = plan_targets(args.target, _target_tasks(args), n=args.n, seed=args.seed, categories=categories)
        print(plan.describe())
    if plan is None and (few := too_few(args.n, categories)) is not None:
        print(few)
    run = synthesize(world, n=args.n, categories=categories, generator=args.generator, seed=args.seed, plan=plan,
                     round=args.round, progress=True, admit=admit)  # fmt: skip
    print(run.table())
    if not run.tasks:  # an empty tasks.jsonl would replace whatever --out held
        raise InftoolError(f"{args.source}: no task was verified, so nothing was written (the table says why)")
    manifest = run.write(out)
    print(f"tasks: {out / 'tasks.jsonl'}; manifest: {manifest}")
    print(f"next: inftool eval {manifest} --policy oracle")
    return 0


def _answer_budget(args: argparse.Namespace) -> Admit | None:
    if args.max_answer_tokens is None:
        if args.tokenizer is not None:
            raise InftoolError("--tokenizer counts tokens for --max-answer-tokens N only: add it, or drop --tokenizer")
        return None
    from inftool_env.llm.tokenizers import EMBEDDED, load_tokenizer
    from inftool_env.synth.budget import within_budget

    flag = "--tokenizer" if args.tokenizer else "--max-answer-tokens"  # the flag the user gave
    name = args.tokenizer or EMBEDDED
    return within_budget(load_tokenizer(name, flag=flag), args.max_answer_tokens, name=f"{flag} {name}")


def _target_tasks(args: argparse.Namespace) -> list[Task]:

    if args.target_tasks:
        return load_tasks(args.target_tasks)
    target = Path(args.target)
    folder = target if target.is_dir() else target.parent
    for candidate in (folder / "tasks.jsonl", Path(args.out) / "tasks.jsonl"):
        if candidate.is_file():
            return load_tasks(candidate)
    try:
        from inftool_env.registration import default_registry

        return list(default_registry().make(args.source).tasks)
    except InftoolError:
        raise InftoolError(f"--target {args.target}: name the tasks it was on with --target-tasks FILE.jsonl") from None
