"""The package as a user gets it: a built wheel (not this checkout) installed into a fresh virtualenv
gives a working ``inftool`` — every subpackage imports, the registry lists every manifest, and an
episode runs on a shipped domain's spec and tasks — from a directory outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Folders that install under inftool_env (pyproject's package-dir), and what the wheel calls them.
MAPPED = {"inftool_env": "inftool_env", "policies": "inftool_env.policies", "train": "inftool_env.train",
          "registry": "inftool_env.registry", "servers": "inftool_env.servers"}  # fmt: skip
SOURCES = ["pyproject.toml", "README.md", *MAPPED]


def _packages_on_disk(package_dir: dict[str, str]) -> set[str]:
    """Every folder the wheel must carry as a package (it holds code or shipped data), named by the
    deepest package-dir mapping above it (so a folder mapped to a top-level name is found under it)."""
    folders = {Path(folder): name for name, folder in package_dir.items() if name}
    folders.update({Path(folder): name for folder, name in MAPPED.items()})
    found = set()
    for top in MAPPED:
        for path in [REPO / top, *(p for p in (REPO / top).rglob("*") if p.is_dir())]:
            rel = path.relative_to(REPO)
            if "__pycache__" in rel.parts or not any(f.is_file() for f in path.iterdir()):
                continue
            base = max((f for f in folders if rel.is_relative_to(f)), key=lambda f: len(f.parts))
            found.add(".".join([folders[base], *rel.relative_to(base).parts]))
    return found


def test_every_package_and_data_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for folder, name in MAPPED.items():
        if folder != name:
            assert config["package-dir"].get(name) == folder, f"package-dir must map {name} to {folder}/"
    missing = sorted(_packages_on_disk(config["package-dir"]) - set(config["packages"]))
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {missing}: a wheel would leave them out"


def test_a_missing_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    from inftool_env import data
    from inftool_env.errors import RegistrationError

    assert data.manifest_dir() == REPO / "registry"  # a checkout: the repository's own folder
    monkeypatch.setattr(data, "_PACKAGE", tmp_path / "site" / "inftool_env")
    with pytest.raises(RegistrationError, match=r"registry/ folder is missing: looked in .*site/inftool_env/registry"):
        data.manifest_dir()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel built from a copy of the sources (so no stale build/ or
    egg-info of the checkout gets in), its dependencies from the package index or pip's cache."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(dist)], cwd=root)
    (wheel,) = dist.glob("inftool_env-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("inftool_env/llm/__init__.py", "inftool_env/registry/Bookshelf-v0.toml",
                     "inftool_env/servers/bookshelf/openapi.yaml", "inftool_env/train/openrlhf/agent_func.py",
                     "inftool_env/train/openrlhf/launch_grpo.sh"):  # fmt: skip
        assert expected in names, f"the wheel lacks {expected}"
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"),
          str(wheel)], cwd=root)  # fmt: skip
    return venv


def _run(cmd: list[str], *, cwd: Path, timeout: float = 180) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_package_imports_from_the_wheel(fresh, tmp_path):
    code = (
        "import inftool_env, inftool_env.env, inftool_env.llm, inftool_env.policies, inftool_env.train.openrlhf\n"
        "from inftool_env.registration import MANIFEST_DIR\n"
        "print(inftool_env.__file__); print(MANIFEST_DIR)"
    )
    module, manifests = _run([str(fresh / "bin" / "python"), "-c", code], cwd=tmp_path).split()
    site = fresh / "lib"
    assert Path(module).is_relative_to(site) and Path(manifests).is_relative_to(site), (module, manifests)


def test_inftool_lists_every_env_and_runs_an_episode(fresh, tmp_path):
    inftool = str(fresh / "bin" / "inftool")
    listed = _run([inftool, "list"], cwd=tmp_path).splitlines()
    ids = sorted(line.split()[0] for line in listed)
    assert ids == sorted(f"inftool/{p.stem}" for p in (REPO / "registry").glob("*.toml"))
    checked = _run([inftool, "check", "inftool/Bookshelf-v0"], cwd=tmp_path)
    assert "PASS  check_env(inftool/Bookshelf-v0)" in checked and "reward 1.0" in checked, checked
