"""Where the shipped data lives: the registry's manifests and the domains' specs and tasks.

In a checkout they are the repository's top-level ``registry/`` and ``servers/``; an installed wheel
carries them inside the package (``inftool_env/registry``, ``inftool_env/servers``), side by side as
in the checkout, so a manifest's relative paths (``../servers/bookshelf/openapi.yaml``) resolve in both.
"""

from __future__ import annotations

from pathlib import Path

from inftool_env.errors import RegistrationError

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The shipped folder ``name`` (``registry`` or ``servers``): the installed copy, else the checkout's.
    A broken install (neither there) is an error that names both places, not an empty registry."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise RegistrationError(
        f"the package's {name}/ folder is missing: looked in {_PACKAGE / name} (installed wheel) and "
        f"{_PACKAGE.parent / name} (checkout); reinstall inftool-env"
    )


def manifest_dir() -> Path:
    """The registry's manifests (``<Name>-vN.toml``)."""
    return data_dir("registry")
