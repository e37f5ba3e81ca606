"""Task sources: where an environment's tasks come from, by the prefix of the manifest's ``tasks.source``.

- a JSONL file (no prefix; relative to the manifest);
- ``bfcl:<category>``: BFCL's multi-turn entries (``domain`` keeps those involving one class);
- ``synth:<options>``: tasks synthesized from the env's own servers when the env is built
  (``synth:n=40&categories=simple,multi_step&seed=0``; the schema generator, no model);
- anything a third party registers with ``register_task_source`` or the ``inftool_env.task_sources``
  entry-point group (``prefix = "pkg.module:loader"``).

The registry and the env builder both use this module; neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from urllib.parse import parse_qsl

from inftool_env.env.config import EnvConfig, TaskSource
from inftool_env.errors import RegistrationError
from inftool_env.tasks import Task, load_tasks

ENTRY_POINT_GROUP = "inftool_env.task_sources"
# (the source, the manifest's folder, the env's config) -> its tasks
TaskLoader = Callable[[TaskSource, Path, "EnvConfig | None"], list[Task]]
_LOADERS: dict[str, TaskLoader] = {}


def register_task_source(prefix: str, loader: TaskLoader) -> None:
    """Sources written ``<prefix>:…`` are loaded by ``loader``; a prefix is registered once."""
    if prefix in _LOADERS:
        raise RegistrationError(f"task source prefix {prefix!r} is already registered")
    _LOADERS[prefix] = loader


def task_source_prefixes() -> list[str]:
    _load_entry_points()
    return sorted(_LOADERS)


def load_task_source(source: TaskSource, base_dir: Path, config: EnvConfig | None = None) -> list[Task]:
    _load_entry_points()
    prefix, sep, _ = source.source.partition(":")
    if sep and prefix in _LOADERS:
        tasks = _LOADERS[prefix](source, base_dir, config)
    elif sep and len(prefix) > 1 and not Path(source.source).is_absolute():
        known = ", ".join(f"{p}:" for p in sorted(_LOADERS))
        raise RegistrationError(f"unknown task source {source.source!r}: known prefixes {known}, or a JSONL file")
    else:
        tasks = load_tasks(base_dir / source.source)
    return tasks[: source.limit] if source.limit is not None else tasks


def _bfcl(source: TaskSource, base_dir: Path, config: EnvConfig | None) -> list[Task]:
    from inftool_env.backends.bfcl import bfcl_multi_turn_tasks

    return bfcl_multi_turn_tasks(source.source.removeprefix("bfcl:"), domain=source.domain, limit=source.limit)


def _synth(source: TaskSource, base_dir: Path, config: EnvConfig | None) -> list[Task]:
    if config is None:
        raise RegistrationError(f"{source.source}: synthesized tasks need the env's servers (build it from a manifest)")
    from inftool_env.synth import synthesize
    from inftool_env.synth.world import ManifestSource

    options = dict(parse_qsl(source.source.removeprefix("synth:"), keep_blank_values=True))
    try:
        n = int(options.pop("n", "40"))
        seed = int(options.pop("seed", "0"))
    except ValueError as exc:
        raise RegistrationError(f"{source.source}: {exc}") from None
    categories = [c for c in options.pop("categories", "").split(",") if c] or None
    if options:
        raise RegistrationError(f"{source.source}: unknown options {sorted(options)}; known: n, seed, categories")
    run = synthesize(ManifestSource(config, base_dir), n=n, categories=categories, seed=seed)
    if not run.tasks:
        raise RegistrationError(f"{config.id}: synthesis gave no tasks ({run.not_applicable or run.dropped})")
    return run.tasks


_LOADERS.update({"bfcl": _bfcl, "synth": _synth})
_ENTRY_POINTS_LOADED = False


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _LOADERS:
            register_task_source(ep.name, ep.load())
