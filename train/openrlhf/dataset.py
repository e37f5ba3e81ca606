"""OpenRLHF's prompt dataset from our tasks, and ``inftool export-openrlhf``.

Each row is one episode's start: ``prompt`` is the env's opening conversation (system message with the
tools rendered in the model's tool-call format, the user's first turn), for ``--data.apply_chat_template``
to render; ``label`` is an ``EpisodeLabel`` as JSON — env id, format, seed and the whole task — which the
agent file turns back into an isolated episode. Row ``i`` gets seed ``seed + i``, the seed ``inftool eval
--seed SEED`` gives the ``i``-th task, so an exported row and an evaluated episode start the same.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError
from tqdm import tqdm

from inftool_env.argtypes import seed_arg
from inftool_env.errors import InftoolError, first_invalid
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.checks import DEFAULT_FORMAT, check_seed, check_text_format

HERE = Path(__file__).resolve().parent
AGENT_FILE = HERE / "agent_func.py"  # --train.agent_func_path
LAUNCH_SCRIPT = HERE / "launch_grpo.sh"


class EpisodeLabel(BaseModel):
    """What a dataset row's label carries: everything needed to start its episode again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_id: str
    format: str = DEFAULT_FORMAT
    seed: int = 0
    task: Task

    @classmethod
    def from_json(cls, text: str) -> EpisodeLabel:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise InftoolError(
                f"an OpenRLHF label must be an inftool EpisodeLabel as JSON (from `inftool export-openrlhf`); "
                f"{first_invalid(exc, root='label')}"
            ) from None


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    rows: dict[str, int]  # env id -> rows written


async def _rows(env_id: str, tasks: list[Task] | None, fmt: str, seed: int) -> list[dict[str, Any]]:
    from inftool_env.env.core import ToolEnv
    from inftool_env.registration import make

    base = make(env_id, format=fmt)
    chosen = tasks if tasks is not None else base.tasks
    env = ToolEnv(base.config, chosen, base.servers, user=base.user, reward_fn=base.reward_fn)
    rows = []
    try:
        for i, task in enumerate(tqdm(chosen, desc=f"export {env_id}", unit="task")):
            obs, _ = await env.reset(seed=seed + i, options={"task_id": task.id})
            label = EpisodeLabel(env_id=env_id, format=fmt, seed=seed + i, task=task)
            rows.append({"prompt": obs["messages"], "label": label.model_dump_json(exclude_defaults=True),
                         "datasource": env_id})  # fmt: skip
    finally:
        await env.close()
    return rows


def export_dataset(
    env_ids: Sequence[str] | str,
    out: str | Path,
    *,
    tasks: str | Path | None = None,
    format: str = DEFAULT_FORMAT,
    seed: int = 0,
) -> ExportSummary:
    """Write OpenRLHF's prompt dataset (JSONL: ``prompt``, ``label``, ``datasource``) for every task of
    ``env_ids``, or for the tasks in the JSONL file ``tasks`` (one env then)."""
    from inftool_env.registration import default_registry, is_manifest_path

    # A manifest by path goes into every label absolute: OpenRLHF's workers need not share this directory.
    given = [env_ids] if isinstance(env_ids, str) else list(env_ids)
    ids = [str(Path(e).resolve()) if is_manifest_path(e) else e for e in given]
    if not ids:
        raise InftoolError("name at least one environment id")
    twice = next((e for e in ids if ids.count(e) > 1), None)
    if twice is not None:  # rows are kept per env: the second would silently replace the first
        raise InftoolError(f"{twice} is given twice: each env's tasks are exported once")
    if tasks is not None and len(ids) != 1:
        raise InftoolError(f"--tasks gives the tasks of one environment, not of {len(ids)}")
    check_text_format(format)
    check_seed(seed)
    out = Path(out)
    if out.is_dir():
        raise InftoolError(f"{out}: a folder, where the dataset file is to be written (e.g. {out / 'prompts.jsonl'})")
    chosen = load_tasks(tasks) if tasks is not None else None
    for env_id in ids:  # training data: BFCL is for evaluation only
        refuse_bfcl(env_id, default_registry().resolve(env_id).config, chosen or ())
    rows: dict[str, list[dict[str, Any]]] = {}
    for env_id in ids:
        rows[env_id] = anyio.run(_rows, env_id, chosen, format, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for env_rows in rows.values():
            for row in env_rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return ExportSummary(out, {k: len(v) for k, v in rows.items()})


def add_commands(subparsers: Any) -> None:
    """Register ``inftool export-openrlhf`` (the lead wires this into cli.py)."""
    p = subparsers.add_parser(
        "export-openrlhf",
        help="write an OpenRLHF prompt dataset from environments' tasks, and name the agent file and launch script",
        epilog="example:\n  inftool export-openrlhf inftool/Bookshelf-v0 --out bookshelf.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env_ids", nargs="+", metavar="ENV_ID", help="registered environment ids")
    p.add_argument("--out", default="out/openrlhf/prompts.jsonl", help="the JSONL dataset to write")
    p.add_argument("--tasks", help="a JSONL file of tasks instead of the env's own (one env only)")
    p.add_argument("--format", default=DEFAULT_FORMAT,
                   help="the trained model's tool-call format: hermes (Qwen2.5), llama3, mistral, bfcl")  # fmt: skip
    p.add_argument("--seed", type=seed_arg, default=0, help="row i starts its episode with seed SEED+i")
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    summary = export_dataset(args.env_ids, args.out, tasks=args.tasks, format=args.format, seed=args.seed)
    width = max(len("environment"), *map(len, summary.rows))
    print(f"{'environment':<{width}}  rows")
    for env_id, n in summary.rows.items():
        print(f"{env_id:<{width}}  {n:>4}")
    print(f"{'total':<{width}}  {sum(summary.rows.values()):>4}")
    print(f"\ndataset        {summary.out}   (rows written: {sum(summary.rows.values())})")
    print(f"agent file     {AGENT_FILE}   (--train.agent_func_path)")
    print(f"launch script  {LAUNCH_SCRIPT}")
    print(f"train:         MODEL=Qwen/Qwen2.5-7B-Instruct DATA={summary.out} bash {LAUNCH_SCRIPT}")
    return 0
