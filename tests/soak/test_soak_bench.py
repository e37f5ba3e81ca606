"""The soak benchmark in a tiny configuration: 40 episodes at once, every fault kind injected at least once,
run as a user runs it (a subprocess); it must pass every line of its closing table and lose nothing."""

from __future__ import annotations

import re
import subprocess
import sys

from bench._soak_fixtures import SCENARIOS
from tests.conftest import REPO


def test_the_soak_bench_passes_in_a_tiny_configuration():
    command = [sys.executable, str(REPO / "bench" / "bench_soak.py"), "--episodes", "40", "--stdio-servers", "2",
               "--duration", "60"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    table = done.stdout
    assert done.returncode == 0, table[-4000:] + done.stderr[-4000:]
    assert re.search(r"^\s+trajectories lost\s+0\s+PASS$", table, re.MULTILINE), table
    for scenario in SCENARIOS:
        if scenario == "ok":
            continue
        found = re.search(rf"^\s+fault {scenario}\s+injected (\d+)/(\d+), survived (\d+)", table, re.MULTILINE)
        assert found, f"no line for {scenario}:\n{table}"
        injected, planned, survived = map(int, found.groups())
        assert injected == planned == survived >= 1, found.group(0)
    for leak in ("fds", "asyncio tasks", "child processes"):
        assert re.search(rf"^\s+leaked {leak} after close\s+0\s+PASS$", table, re.MULTILINE), table
