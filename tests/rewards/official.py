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
    proc = subprocess.run(  # noqa: S603 - our own script, our own interpreter path
        [str(official_python()), str(script)],
        input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    seconds = float(re.search(r"checked \d+ in ([\d.]+)s", proc.stderr).group(1))
    return {v["id"]: v for v in map(json.loads, proc.stdout.splitlines())}, seconds
