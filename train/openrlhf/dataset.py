"""OpenRLHF's prompt dataset from our tasks, and ``inftool export-openrlhf``.

Each row is one episode's start: ``prompt`` is the env's opening conversation (system message with the
tools rendered in the model's tool-call format, the user's first turn), for ``--data.apply_chat_template``
to render; ``label`` is an ``EpisodeLabel`` as JSON — env id, format, seed and the whole task — which the
agent file turns back into an isolated episode. Row ``i`` gets seed ``seed + i``, the seed ``inftool eval
--seed SEED`` gives the ``i``-th task, so an exported row and an evaluated episode start the same.

OpenRLHF keeps only the tail of a prompt longer than ``--data.max_len`` leaves it (``max_len - 1`` tokens at
most: one at least is generated), cutting the system message's head and tools; the agent file fails such an
episode (reward 0, ``prompt_too_long``). The export warns, once per env, about rows too long for ``max_len``
(Google Calendar's prompts are about 54k tokens; the launch script's MAX_LEN is 8192). With ``--tokenizer``
(the trained model's) it counts each prompt's tokens exactly as the agent file renders and OpenRLHF
tokenizes them (``episode.ChatTemplate``); without one it estimates them from their characters.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from inftool_env.argtypes import positive_int, seed_arg
from inftool_env.errors import InftoolError, first_invalid
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.llm.tokenizers import first_line, load_tokenizer
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.checks import DEFAULT_FORMAT, check_seed, check_text_format

if TYPE_CHECKING:
    from inftool_env.train.openrlhf.episode import ChatTemplate

HERE = Path(__file__).resolve().parent
AGENT_FILE = HERE / "agent_func.py"  # --train.agent_func_path
LAUNCH_SCRIPT = HERE / "launch_grpo.sh"
DEFAULT_MAX_LEN = 8192  # the launch script's MAX_LEN (--data.max_len)
CHARS_PER_TOKEN = 3.5  # Qwen2.5's tokenizer gives 3.4-4.3 on our envs' prompts: this errs towards warning

Prompt = list[dict[str, Any]]


class EpisodeLabel(BaseModel):
    """What a dataset row's label carries: everything needed to start its episode again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_id: str
    format: str = DEFAULT_FORMAT
    seed: int = Field(default=0, strict=True)  # strict: JSON `true` is not seed 1
    task: Task

    @field_validator("seed")
    @classmethod
    def _seed_not_negative(cls, seed: int) -> int:
        if seed < 0:  # gymnasium would refuse it only at the episode's reset, mid-rollout
            raise ValueError(f"must be 0 or more, not {seed}")
        return seed

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
class LongPrompts:
    """An env's rows whose prompt is too long for the export's ``max_len``: ``max_len`` tokens or more,
    counted by ``counted_by`` (a tokenizer) or, when that is ``None``, estimated (``CHARS_PER_TOKEN``)."""

    rows: int
    of: int  # the env's rows
    most_tokens: int  # the longest prompt's tokens
    max_len: int
    counted_by: str | None = None

    def warning(self, env_id: str) -> str:
        if self.counted_by is None:
            most = (f"about {self.most_tokens:,} tokens (estimated at {CHARS_PER_TOKEN} characters a token; pass "
                    f"--tokenizer for exact counts)")  # fmt: skip
        else:
            most = f"{self.most_tokens:,} tokens by {self.counted_by}"
        return (
            f"{env_id}: {self.rows} of {self.of} prompts are too long for --max-len {self.max_len}, up to {most}; "
            f"OpenRLHF would cut them and every such episode fails with reward 0: train with MAX_LEN "
            f"(--data.max_len) above that, with room for the episode's turns"
        )


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    rows: dict[str, int]  # env id -> rows written
    long_prompts: dict[str, LongPrompts] = field(default_factory=dict)  # env id -> its rows over max_len


def estimated_tokens(prompt: Prompt) -> int:
    """A prompt's tokens, roughly, without the model's tokenizer (when the export is given none)."""
    return round(sum(len(str(m.get("content") or "")) for m in prompt) / CHARS_PER_TOKEN)


def load_template(tokenizer: str) -> ChatTemplate:
    """The chat template of the tokenizer ``load_tokenizer`` loads from ``tokenizer``."""
    from inftool_env.train.openrlhf.episode import ChatTemplate

    loaded = load_tokenizer(tokenizer)
    try:
        return ChatTemplate(loaded)
    except Exception as exc:  # no chat template, or one that does not render a conversation
        raise InftoolError(f"--tokenizer {tokenizer}: its chat template renders no conversation "
                           f"({first_line(exc)})") from None  # fmt: skip


def prompt_counter(tokenizer: str | ChatTemplate) -> Callable[[Prompt], int]:
    """A prompt's tokens as OpenRLHF will see them (``tokenizer``: see ``load_tokenizer``):
    ``ChatTemplate.opening``, the very count the agent file's episode checks its opening against."""
    template = load_template(tokenizer) if isinstance(tokenizer, str) else tokenizer
    return lambda prompt: template.opening(prompt)[1]


def check_template(template: ChatTemplate, tokenizer: str) -> None:
    """What the agent file checks as each episode starts (``ChatTemplate.check``), on an opening shaped as
    an env's (system, user): a template it refuses would fail every episode, found only once training runs."""
    opening = [{"role": "system", "content": template.PROBE}, {"role": "user", "content": template.PROBE}]
    try:
        template.check(opening)
    except InftoolError as exc:
        raise InftoolError(f"--tokenizer {tokenizer}: {exc}; the agent file would refuse every episode") from None


def _long_prompts(
    rows: list[dict[str, Any]], max_len: int, tokens: Callable[[Prompt], int], counted_by: str | None
) -> LongPrompts | None:
    # OpenRLHF keeps at most max_len - 1 of a prompt (max_len less --rollout.max_new_tokens when that is set).
    over = [n for n in (tokens(r["prompt"]) for r in rows) if n >= max_len]
    return LongPrompts(len(over), len(rows), max(over), max_len, counted_by) if over else None


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
    max_len: int | None = DEFAULT_MAX_LEN,
    tokenizer: str | None = None,
) -> ExportSummary:
    """Write OpenRLHF's prompt dataset (JSONL: ``prompt``, ``label``, ``datasource``) for every task of
    ``env_ids``, or for the tasks in the JSONL file ``tasks`` (one env then). The summary's
    ``long_prompts`` names each env with prompts too long for ``max_len`` (``None``: no check), counted by
    ``tokenizer`` (see ``load_tokenizer``) or, without one, estimated."""
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
    tokens: Callable[[Prompt], int] = estimated_tokens
    if tokenizer is not None:  # loaded and checked before any row
        template = load_template(tokenizer)
        check_template(template, tokenizer)
        tokens = prompt_counter(template)
    rows: dict[str, list[dict[str, Any]]] = {}
    for env_id in ids:
        rows[env_id] = anyio.run(_rows, env_id, chosen, format, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for env_rows in rows.values():
            for row in env_rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    long = {
        k: lp
        for k, v in rows.items()
        if max_len is not None and (lp := _long_prompts(v, max_len, tokens, tokenizer)) is not None
    }
    return ExportSummary(out, {k: len(v) for k, v in rows.items()}, long)


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
    p.add_argument("--max-len", type=positive_int, default=DEFAULT_MAX_LEN,
                   help="the --data.max_len you will train with (the launch script's MAX_LEN): warn about "
                        "prompts too long for it (default: %(default)s)")  # fmt: skip
    p.add_argument("--tokenizer", metavar="PATH_OR_ID",
                   help="the trained model's tokenizer (an HF directory or model id, or 'embedded'): count each "
                        "prompt's tokens exactly, as OpenRLHF will see them; needs transformers (default: "
                        f"estimate them at {CHARS_PER_TOKEN} characters a token)")  # fmt: skip
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    summary = export_dataset(args.env_ids, args.out, tasks=args.tasks, format=args.format, seed=args.seed,
                             max_len=args.max_len, tokenizer=args.tokenizer)  # fmt: skip
    width = max(len("environment"), *map(len, summary.rows))
    print(f"{'environment':<{width}}  rows")
    for env_id, n in summary.rows.items():
        print(f"{env_id:<{width}}  {n:>4}")
    print(f"{'total':<{width}}  {sum(summary.rows.values()):>4}")
    print(f"\ndataset        {summary.out}   (rows written: {sum(summary.rows.values())})")
    print(f"agent file     {AGENT_FILE}   (--train.agent_func_path)")
    print(f"launch script  {LAUNCH_SCRIPT}")
    print(f"train:         MODEL=Qwen/Qwen2.5-7B-Instruct DATA={summary.out} bash {LAUNCH_SCRIPT}")
    for env_id, long in summary.long_prompts.items():
        print(f"inftool: warning: {long.warning(env_id)}", file=sys.stderr)
    return 0
