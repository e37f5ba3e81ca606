"""Run BFCL's own checker (in its own virtualenv) over agreement cases."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REPO

SCRIPT = Path(__file__).with_name("official_bfcl_checker.py")
MULTI_TURN_SCRIPT = Path(__file__).with_name("official_multi_turn_checker.py")


def official_python() -> Path:
    return Path(os.environ.get("INFTOOL_BFCL_PYTHON", REPO / ".venv-bfcl" / "bin" / "python"))


def official_verdicts(cases: list[dict[str, Any]], script: Path = SCRIPT) -> tuple[dict[str, dict[str, Any]], float]:
    """Verdicts by case id, and the seconds the official checking took (imports excluded)."""
    verdicts, seconds, _ = official_run(cases, script)
    return verdicts, seconds


def official_run(cases: list[dict[str, Any]], script: Path = SCRIPT) -> tuple[dict[str, dict[str, Any]], float, float]:
    """Verdicts by case id, and the seconds the official checking took, wall clock and CPU."""
    proc = subprocess.run(  # noqa: S603 - our own script, our own interpreter path
        [str(official_python()), str(script)],
        input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    found = re.search(r"checked \d+ in ([\d.]+)s \(cpu ([\d.]+)s\)", proc.stderr)
    if found is None:
        raise RuntimeError(f"{script.name} printed no timing: {proc.stderr[-2000:]}")
    verdicts = {v["id"]: v for v in map(json.loads, proc.stdout.splitlines())}
    return verdicts, float(found.group(1)), float(found.group(2))
