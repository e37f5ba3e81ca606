"""The environment registry: ``ns/Name-vN`` ids, TOML manifests, lazy loading, entry points.

``Registry`` is an object (inject your own in tests); ``default_registry()`` builds the shared one
lazily from the manifests shipped in ``registry/`` and from the ``inftool_env.envs`` entry-point
group, whose entries name a directory of manifests (``pkg.module:MANIFEST_DIR``) or a callable
taking the registry. An explicit call (``load_manifest``, ``Registry.register_dir`` of a folder you
pass, ``resolve`` of a manifest path) raises ``RegistrationError`` for a bad manifest. The default
registry's scan does not let one broken file or plugin take every command down: it registers the
good manifests and keeps each failure (the manifest's path or the plugin's package, and why) in
``Registry.problems``, which ``inftool list`` prints; asking for an id whose manifest is among them
raises that manifest's error, and asking for an unknown id names them. Nothing is dropped silently.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from inftool_env.data import manifest_dir
from inftool_env.env.config import EnvConfig
from inftool_env.errors import NameNotFound, RegistrationError, VersionNotFound, first_invalid
from inftool_env.task_sources import load_task_source

__all__ = [
    "EnvEntry",
    "LoadProblem",
    "Registry",
    "default_registry",
    "load_manifest",
    "load_task_source",
    "make",
    "parse_id",
]

ID_RE = re.compile(r"^(?:(?P<ns>[\w-]+)/)?(?P<name>[\w-]+?)-v(?P<version>\d+)$")
ENTRY_POINT_GROUP = "inftool_env.envs"
MANIFEST_DIR = manifest_dir()  # the checkout's registry/, or the copy an installed wheel carries


@dataclass(frozen=True)
class EnvEntry:
    config: EnvConfig
    base_dir: Path  # relative paths in the manifest resolve against this


@dataclass(frozen=True)
class LoadProblem:
    """A manifest (or a plugin package) the default registry's scan could not load, and why."""

    source: str  # the manifest's path, or the entry point and package that could not be loaded
    reason: str  # one line
    env_id: str | None = None  # the id a broken manifest is for: its own, or ``Name-vN`` from its file name

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", " ".join(self.reason.split()))  # one line, whatever raised it

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


def parse_id(env_id: str) -> tuple[str | None, str, int]:
    match = ID_RE.match(env_id)
    if not match:
        raise RegistrationError(f"malformed environment id {env_id!r}: expected 'namespace/Name-vN'")
    return match["ns"], match["name"], int(match["version"])


def load_manifest(path: Path) -> EnvEntry:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistrationError(f"{path}: cannot read manifest: {exc}") from None
    try:
        config = EnvConfig.model_validate(raw)
    except ValidationError as exc:
        raise RegistrationError(f"{path}: {first_invalid(exc)}") from None
    parse_id(config.id)
    return EnvEntry(config, path.parent)


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, EnvEntry] = {}
        self._origins: dict[str, str] = {}  # id -> the manifest (or caller) that registered it
        self.problems: list[LoadProblem] = []  # what the default registry's scan could not load
        self._scanning: str | None = None  # during that scan: where the manifests come from ("" for registry/)

    def register(self, entry: EnvEntry | EnvConfig, base_dir: Path | None = None, *, origin: str = "") -> None:
        if isinstance(entry, EnvConfig):
            entry = EnvEntry(entry, base_dir or Path.cwd())
        env_id = entry.config.id
        parse_id(env_id)
        if env_id in self._entries:
            first = self._origins[env_id]
            where = f" (by {first}{f', then by {origin}' if origin else ''})" if first else ""
            raise RegistrationError(f"{env_id} is already registered{where}")
        self._entries[env_id] = entry
        self._origins[env_id] = origin

    def register_dir(self, directory: Path) -> None:
        """Every ``*.toml`` in ``directory``; a bad one raises, except in the default registry's scan,
        which keeps it in ``problems`` (with the id it is for) and registers the rest."""
        if not directory.is_dir():
            raise RegistrationError(f"{directory}: not a folder of manifests")
        for path in sorted(directory.glob("*.toml")):
            try:
                self.register(load_manifest(path), origin=str(path))
            except RegistrationError as exc:
                if self._scanning is None:
                    raise
                source = f"{path} (from {self._scanning})" if self._scanning else str(path)
                self.problems.append(LoadProblem(source, str(exc).removeprefix(f"{path}: "), _intended_id(path)))

    def ids(self) -> list[str]:
        return sorted(self._entries)

    def resolve(self, env_id: str | Path) -> EnvEntry:
        """A registered id, or a path to a manifest (``*.toml``) that need not be registered."""
        if is_manifest_path(env_id):
            path = Path(env_id)
            if not path.is_file():
                raise RegistrationError(f"no manifest at {path}")
            return load_manifest(path)
        return self.entry(str(env_id))

    def entry(self, env_id: str) -> EnvEntry:
        if env_id in self._entries:
            return self._entries[env_id]
        ns, name, version = parse_id(env_id)
        broken = [str(p) for p in self.problems if p.env_id in (env_id, f"{name}-v{version}")]
        if broken:  # its manifest is there, but could not be loaded: say why, not "no environment"
            raise RegistrationError(f"{env_id} could not be loaded: {'; '.join(broken)}")
        unloaded = ""
        if self.problems:  # the one asked for may be among them, under another file name
            unloaded = f". Could not load (`inftool list` says why): {', '.join(p.source for p in self.problems)}"
        same_name = [i for i in self._entries if parse_id(i)[:2] == (ns, name)]
        if same_name:
            registered = ", ".join(sorted(same_name))
            raise VersionNotFound(f"{env_id}: no version {version}; registered: {registered}{unloaded}")
        # Names compared within the namespace: every id shares "inftool/", which made any two look alike.
        known = {i: parse_id(i) for i in self._entries}
        names = {f"{n}-v{v}": i for i, (space, n, v) in known.items() if space == ns}
        close = [names[m] for m in difflib.get_close_matches(f"{name}-v{version}", names, n=3, cutoff=0.6)]
        close = close or difflib.get_close_matches(env_id, self._entries, n=3, cutoff=0.9)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise NameNotFound(f"no environment {env_id!r}.{hint} (`inftool list` shows them all){unloaded}")

    def make(self, env_id: str | Path, *, trainer_driven: bool = False, **overrides: Any) -> Any:
        """A fresh async ``ToolEnv`` from a registered id or a manifest file (``out/synth/Spotify-v0.toml``);
        ``overrides`` replace manifest fields (``transport="http"``). ``trainer_driven``: for a trainer's
        adapter, no wall-clock limit on an episode (``inftool_env.env.config.trainer_driven``)."""
        from inftool_env.env.build import build_env
        from inftool_env.env.config import trainer_driven as driven
        from inftool_env.env.config import with_overrides

        entry = self.resolve(env_id)
        config = with_overrides(entry.config, overrides) if overrides else entry.config
        return build_env(driven(config) if trainer_driven else config, entry.base_dir)


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    global _DEFAULT
    if _DEFAULT is None:
        # Every command builds this registry: one broken manifest or plugin must not stop the others'
        # envs, and must say which file or package to fix or remove (``problems``).
        registry = Registry()
        registry._scanning = ""
        if MANIFEST_DIR.is_dir():
            registry.register_dir(MANIFEST_DIR)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            package = f"entry point {ep.name!r} = {ep.value} (package {ep.dist.name if ep.dist else 'unknown'})"
            registry._scanning = package
            try:
                target = ep.load()
                if callable(target):
                    target(registry)  # what it registered before failing stays: those did load
                else:
                    registry.register_dir(Path(target))
            except RegistrationError as exc:
                registry.problems.append(LoadProblem(package, str(exc)))
            except Exception as exc:  # an import error in the plugin's package, or a bug in its callable
                registry.problems.append(LoadProblem(package, f"cannot be loaded: {type(exc).__name__}: {exc}"))
        registry._scanning = None
        _DEFAULT = registry
    return _DEFAULT


def make(env_id: str | Path, *, trainer_driven: bool = False, **overrides: Any) -> Any:
    return default_registry().make(env_id, trainer_driven=trainer_driven, **overrides)


def _intended_id(path: Path) -> str | None:
    """The id a manifest that failed to load is for: its own ``id`` where that can be read, or else
    ``Name-vN`` from its file name (manifests are named so), matching that name in any namespace."""
    try:
        declared = tomllib.loads(path.read_text(encoding="utf-8")).get("id")
        if isinstance(declared, str):
            parse_id(declared)
            return declared
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RegistrationError):
        pass
    return path.stem if ID_RE.match(path.stem) else None


def is_manifest_path(env_id: str | Path) -> bool:
    return isinstance(env_id, Path) or str(env_id).endswith(".toml")
