"""Registration with ``skyrl_gym.envs.register`` and the prompt rows SkyRL's dataset needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inftool_env.env.core import refuse_missing_servers
from inftool_env.tasks import Task
from inftool_env.train.checks import check_seed

ENTRY_POINT = "inftool_env.train.skyrl.env:InftoolTextEnv"
GENERIC_ID = "inftool"  # env id from the row (``extras["env_id"]``)


def env_key(env_id: str | Path) -> str:
    """An env id as a row names it: a manifest path made absolute (SkyRL's workers need not share this
    directory, as for OpenRLHF's labels), a registered id as it is."""
    from inftool_env.registration import is_manifest_path

    return str(Path(env_id).resolve()) if is_manifest_path(env_id) else str(env_id)


def register_envs(env_ids: list[str] | None = None) -> list[str]:
    """Register ``inftool`` (generic: the env id comes from the row, as in ``dataset_rows``' rows of a manifest)
    and each of our env ids (``inftool/Bookshelf-v0``, …; default: every registered one but BFCL's, which is for
    evaluation only and refused if named) with skyrl_gym; ids already there are left alone. A manifest path
    given is registered as given, for its absolute path. Returns the ids added."""
    import skyrl_gym
    from skyrl_gym.envs.registration import registry

    from inftool_env.eval.bfcl_guard import bfcl_origin, refuse_bfcl
    from inftool_env.registration import default_registry

    known = default_registry()
    if env_ids is None:
        env_ids = [i for i in known.ids() if bfcl_origin(known.entry(i).config) is None]
    for env_id in env_ids:  # before registering any: an unknown or a BFCL id is refused, nothing half done
        refuse_bfcl(env_id, known.resolve(env_id).config)
    added = []
    for env_id in [GENERIC_ID, *env_ids]:
        if env_id in registry:
            continue
        kwargs = {} if env_id == GENERIC_ID else {"env_id": env_key(env_id)}
        skyrl_gym.envs.register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
        added.append(env_id)
    return added


def dataset_rows(
    env_id: str | Path, *, seed: int = 0, fmt: str | None = None, tasks: str | Path | Sequence[Task] | None = None
) -> list[dict[str, Any]]:
    """One SkyRL dataset row per task: ``env_class`` our env id (for a manifest path, the generic ``inftool``,
    which ``register_envs()`` always registers, with the manifest's absolute path as the row's ``env_id``), the
    task and seed in the row (SkyRL hands the row to the env as ``extras``), and the prompt the env's ``init``
    will return. ``fmt``: the model's text tool-call format (default: the manifest's if it is one, else hermes,
    Qwen2.5's; llama3, mistral, bfcl); ``tasks``: a tasks JSONL file or tasks instead of the env's own
    (synthesized ones: each row then carries its task); row ``i`` gets seed ``seed + i``."""
    from inftool_env.eval.bfcl_guard import refuse_bfcl
    from inftool_env.registration import is_manifest_path
    from inftool_env.tasks import load_tasks
    from inftool_env.train.skyrl.env import base_env, run

    check_seed(seed)
    env_id = env_key(env_id)
    env_class = GENERIC_ID if is_manifest_path(env_id) else env_id
    base = base_env(env_id, fmt)
    chosen = None if tasks is None else load_tasks(tasks) if isinstance(tasks, str | Path) else list(tasks)
    if chosen is not None:
        refuse_bfcl(env_id, base.config, chosen)  # training data: BFCL's tasks, in whatever env
        refuse_missing_servers(env_id, chosen, base.servers)
    env = base.spawn()

    async def rows() -> list[dict[str, Any]]:
        out = []
        try:
            for i, task in enumerate(env.tasks if chosen is None else chosen):
                options = {"task_id": task.id} if chosen is None else {"task": task}
                obs, _ = await env.reset(seed=seed + i, options=options)
                prompt = [{"role": m["role"], "content": m["content"]} for m in obs["messages"]]
                row = {"prompt": prompt, "env_class": env_class, "env_id": env_id, "task_id": task.id,
                       "seed": seed + i, "format": env.config.format, "data_source": env_id}  # fmt: skip
                if chosen is not None:
                    row["task"] = task.model_dump_json()
                out.append(row)
        finally:
            await env.close()
        return out

    return run(rows())  # on the envs' loop, where the base env's connections then stay open
