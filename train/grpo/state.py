"""What resuming needs, in ``OUT/trainer_state/state.pt``: the step reached, the trainable weights,
the optimiser's moments, the random generators and the running per-task success; the metrics and
rollout logs are cut back to that step on resume. Rollout seeds derive from (seed, step), so with
these restored the next step is the one an uninterrupted run would have taken.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inftool_env.errors import InftoolError
from inftool_env.tasks import Task
from inftool_env.train.grpo.config import GRPOConfig

# Fields a resumed run may change: how long it runs and how often it saves.
RESUMABLE_CHANGES = {"steps", "save_every", "device"}


def state_file(out: Path) -> Path:
    return out / "trainer_state" / "state.pt"


def save_state(out: Path, payload: dict[str, Any]) -> None:
    import numpy as np
    import torch

    payload = {**payload, "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                                  "torch": torch.get_rng_state()}}  # fmt: skip
    target = state_file(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"state.pt.partial-{os.getpid()}")
    torch.save(payload, partial)
    partial.replace(target)  # atomic: an interruption leaves the previous state whole


def pool_fingerprint(envs_and_tasks: Sequence[tuple[str, Sequence[Task]]]) -> dict[str, Any]:
    """Which tasks a run trains on, in order, and a digest of what they say: a resumed run's schedule
    indexes into its pool, so another pool (a regenerated task file, another env) is another run."""
    digest = hashlib.sha256()
    for env, tasks in envs_and_tasks:
        for task in tasks:
            digest.update(f"{env}\0{task.model_dump_json()}\0".encode())
    return {"envs": [env for env, _ in envs_and_tasks], "tasks": sum(len(t) for _, t in envs_and_tasks),
            "sha256": digest.hexdigest()}  # fmt: skip


def load_state(out: Path, config: GRPOConfig, pool: dict[str, Any] | None = None) -> dict[str, Any]:
    """The saved state, once it is checked to be this run's (the same settings but ``RESUMABLE_CHANGES``,
    the same tasks); read before the model loads, so a mismatch costs nothing. ``restore_rng`` after."""
    import torch

    path = state_file(out)
    if not path.is_file():
        raise InftoolError(f"nothing to resume in {out}: no {path.relative_to(out)} (a run stopped before its "
                           "first save starts again without --resume)")  # fmt: skip
    payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)  # noqa: S614 - our own file
    saved = GRPOConfig.model_construct(**payload["config"])  # our own file: not refused by rules newer than it
    was_set, now_set = saved.effective(), config.effective()
    changed = [k for k in now_set if k not in RESUMABLE_CHANGES and not _same(was_set[k], now_set[k], k)]
    if changed:
        differ = ", ".join(f"{k} {was_set[k]!r} -> {now_set[k]!r}" for k in changed)
        may = ", ".join(sorted(RESUMABLE_CHANGES))
        raise InftoolError(f"{out} was trained with other settings ({differ}); resume with the same ones, "
                           f"or train into a new --out (only {may} may change)")  # fmt: skip
    was = payload.get("pool")  # absent in states saved before it was kept
    if pool is not None and was is not None and was != pool:
        alike = ", as many but not the same" if was["tasks"] == pool["tasks"] else ""
        raise InftoolError(
            f"{out} was trained on other tasks ({was['tasks']} of {', '.join(was['envs'])}; now {pool['tasks']} of "
            f"{', '.join(pool['envs'])}{alike}); resume with the same envs and task files, or train into a new --out"
        )
    return payload


def _same(was: Any, now: Any, field: str) -> bool:
    if field == "model" and was != now and Path(was).exists() and Path(now).exists():
        return Path(was).resolve() == Path(now).resolve()  # ./tiny is tiny
    return bool(was == now)


def restore_rng(payload: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(payload["rng"]["python"])
    np.random.set_state(payload["rng"]["numpy"])
    torch.set_rng_state(payload["rng"]["torch"])


def cut_log(path: Path, keep: Any) -> None:
    """Keep the JSON lines for which ``keep(record)`` holds (the steps a resumed state already covers),
    rewritten atomically: a kill during the rewrite leaves the old log whole."""
    if not path.is_file():
        return
    kept = [record for record in read_log(path) if keep(record)]
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    partial.replace(path)


def append_log(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's records. A last line without its newline that does not decode was torn by a kill mid-write
    (its step is redone on resume) and is dropped; any other line that does not decode is an error."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise InftoolError(f"{path}: line {number} is not JSON ({exc.msg}): the log was damaged") from None
    return records
