"""The prompt dataset ``GRPOTrainer`` samples from: one row per task (times ``repeats``).

Each row carries the conversational ``prompt`` (the env's and the task's system prompt, then the user's
opening; TRL renders the tools itself through the chat template), the ``task`` as JSON (what ``reset``
starts), its ``task_id``, the episode ``seed``, and the ``environment`` TRL routes it to: the key of the
task's tool offer in ``environment_factory``'s dict. TRL passes the other columns to ``reset(**row)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from inftool_env.env.config import EnvConfig
from inftool_env.env.core import ToolEnv, missing_servers
from inftool_env.errors import InftoolError
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.checks import check_seed


def build_dataset(
    env: str | ToolEnv, *, tasks: str | Path | Sequence[Task] | None = None, seed: int = 0, repeats: int = 1
) -> Any:
    """A ``datasets.Dataset`` of our tasks for ``GRPOTrainer(train_dataset=...)``.

    ``env``: a registered env id, a manifest (``.toml``) or a ``ToolEnv``; ``tasks``: a tasks JSONL file or
    tasks instead of the env's own (give ``environment_factory`` the same). Row ``i`` gets seed ``seed + i``.
    Tasks TRL cannot run as ``inftool eval`` does are refused (``unsupported``), and so is BFCL (for
    evaluation only). One-shot tasks (the single-turn categories) are scored on their first assistant
    turn, by ``gated_reward``.
    """
    try:
        from datasets import Dataset
    except ImportError:
        raise InftoolError("build_dataset needs the datasets package: pip install 'inftool-env[trl]'") from None
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InftoolError(f"repeats must be a whole number of at least 1, not {repeats!r}")
    check_seed(seed)
    config, own = _config_and_tasks(env)
    chosen = own if tasks is None else (load_tasks(tasks) if isinstance(tasks, str | Path) else list(tasks))
    refuse_bfcl(config.id, config, chosen)
    refuse_duplicate_ids(config.id, chosen)
    servers = [s.name for s in config.servers]
    check_supported(config.id, chosen, servers)
    if not chosen:
        raise InftoolError(f"{config.id}: no tasks")
    rows = []
    for r in range(repeats):
        for i, task in enumerate(chosen):
            rows.append({"prompt": prompt(config, task), "task": task.model_dump_json(), "task_id": task.id,
                         "seed": seed + r * len(chosen) + i,
                         "environment": offer_name(config.id, task, servers)})  # fmt: skip
    return Dataset.from_list(rows)


def unsupported(task: Task, servers: Collection[str]) -> str | None:
    """Why TRL cannot run ``task`` the way ``inftool eval`` does, or None. TRL offers an environment's
    public methods for a whole rollout, so a task whose tools change between turns is refused (the env would
    still refuse the calls, but the model would be trained on a listing eval never shows)."""
    if task.tools_added:
        return "withholds tools until a later user turn, but TRL offers the same tools for a whole rollout"
    unknown = missing_servers(task, servers)
    if unknown:
        return f"names servers {unknown} the env does not have"
    return None


def refuse_duplicate_ids(env_id: str, tasks: Sequence[Task]) -> None:
    """Raise naming the first task id given twice: an env finds a task by its id, so ``environment_factory``
    would keep one of them and a row of the other would fail mid-training (``load_tasks`` refuses a file so)."""
    seen: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.id in seen:
            raise InftoolError(f"{env_id}: task id {task.id!r} is given twice (tasks [{seen[task.id]}] and [{i}]); "
                               "task ids must be unique")  # fmt: skip
        seen[task.id] = i


def check_supported(env_id: str, tasks: Sequence[Task], servers: Collection[str]) -> None:
    """Raise naming the first task ``unsupported`` refuses (and how many more there are)."""
    refused = [(t.id, why) for t in tasks if (why := unsupported(t, servers))]
    if refused:
        more = f" ({len(refused) - 1} more such tasks)" if len(refused) > 1 else ""
        raise InftoolError(f"{env_id}: task {refused[0][0]} {refused[0][1]}{more}")


def offer_name(env_id: str, task: Task, servers: Collection[str]) -> str:
    """The key of the tools ``task`` is offered (its servers' tools less the excluded ones): the env id when
    that is every tool, else the id and a digest, so the dataset and the factory agree without listing tools."""
    chosen = sorted(set(task.servers or servers))  # [] is every server, as ToolEnv.reset reads it
    excluded = sorted(set(task.excluded_tools))
    if chosen == sorted(set(servers)) and not excluded:
        return env_id
    digest = hashlib.sha256(json.dumps([chosen, excluded]).encode()).hexdigest()[:12]
    return f"{env_id}#{digest}"


def prompt(config: EnvConfig, task: Task) -> list[dict[str, str]]:
    """The system message (without a tool listing) and the user's opening; for a user whose opening is
    not fixed by the task (an LLM), the opening is left empty and ``reset`` supplies it."""
    system = "\n\n".join(p for p in (config.system_prompt, task.system_prompt) if p)
    opening = {"scripted": task.turns[0], "template": task.goal or task.turns[0]}.get(config.user, "")
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": opening}]


def _config_and_tasks(env: str | ToolEnv) -> tuple[EnvConfig, list[Task]]:
    if isinstance(env, ToolEnv):
        return env.config, env.tasks
    from inftool_env.registration import default_registry, load_task_source

    entry = default_registry().resolve(env)  # an id or a manifest path; no server is compiled for a dataset
    return entry.config, load_task_source(entry.config.tasks, entry.base_dir)
