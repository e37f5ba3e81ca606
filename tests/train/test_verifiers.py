"""verifiers 0.4 through its own entry point: ``vf-eval inftool_verifiers`` in .venv-verifiers, against
our real Bookshelf server (via the bridge), with a scripted model behind our OpenAI-compatible server.
The reward vf-eval reports for each task must equal what ``inftool eval`` gives for the same actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from inftool_env.llm.scripted import ScriptedChat
from inftool_env.llm.serve import running_openai_server
from tests.conftest import REPO
from tests.train._scripted import bookshelf_model

VENV = Path(os.environ.get("INFTOOL_VERIFIERS_VENV", REPO / ".venv-verifiers"))
VF_EVAL = VENV / "bin" / "vf-eval"
TASKS = ["bookshelf-add", "bookshelf-remove", "bookshelf-register-and-borrow"]


def _venv_ready() -> str | None:
    if not VF_EVAL.is_file():
        return f"verifiers' venv is not built ({VF_EVAL} missing: `make venv-verifiers`)"
    probe = subprocess.run([str(VENV / "bin" / "python"), "-c", "import inftool_verifiers"], capture_output=True)
    if probe.returncode != 0:
        return f"inftool_verifiers is not importable in {VENV} (`pip install --no-deps -e .` there)"
    return None


NOT_READY = _venv_ready()
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(NOT_READY is not None, reason=NOT_READY or "")]


async def test_vf_eval_plays_bookshelf_with_our_gated_reward(tmp_path: Path) -> None:
    model = ScriptedChat([bookshelf_model], cycle=True)
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", "INFTOOL_PYTHON": sys.executable,
           "SCRIPTED_KEY": "unused"}  # fmt: skip
    async with running_openai_server(model) as url:
        vf = await anyio.run_process(
            [str(VF_EVAL), "inftool_verifiers", "--env.taskset.env", "inftool/Bookshelf-v0", "-m", "scripted",
             "--select.include.ids", json.dumps(TASKS), "--client.base-url", url,
             "--client.api-key-var", "SCRIPTED_KEY", "-c", "3", "--no-push", "--no-rich",
             "-o", str(tmp_path / "vf")],
            env=env, cwd=tmp_path, check=False, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert vf.returncode == 0, vf.stdout.decode()[-3000:]
        ours = await anyio.run_process(
            [sys.executable, "-m", "inftool_env.cli", "eval", "inftool/Bookshelf-v0", "--policy",
             f"openai:{url}#scripted", "--out", str(tmp_path / "inftool")],
            cwd=tmp_path, check=False, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert ours.returncode == 0, ours.stdout.decode()[-3000:]

    episodes = [
        json.loads(line) for f in (tmp_path / "vf").glob("*/traces.jsonl") for line in f.read_text().splitlines()
    ]
    vf_rewards = {e["task"]["data"]["task_id"]: e["traces"][0]["rewards"]["gated_reward"]["score"] for e in episodes}
    metrics = {e["task"]["data"]["task_id"]: e["traces"][0]["metrics"] for e in episodes}
    trajectories = [json.loads(line) for line in (tmp_path / "inftool" / "trajectories.jsonl").read_text().splitlines()]
    inftool_rewards = {t["task_id"]: t["reward"]["reward"] for t in trajectories}

    assert sorted(vf_rewards) == sorted(TASKS)
    assert vf_rewards == {task: inftool_rewards[task] for task in TASKS}
    assert vf_rewards["bookshelf-register-and-borrow"] == 1.0  # two user turns, a tool call in each
    assert vf_rewards["bookshelf-remove"] == 1.0
    assert vf_rewards["bookshelf-add"] == 0.0  # wrong copies: the state check fails, gates pass
    assert metrics["bookshelf-add"]["gate_execution"] == 1.0 and metrics["bookshelf-add"]["state"] == 0.0
    assert all(m["divergent_results"] == 0.0 and m["finished"] == 1.0 for m in metrics.values())
    assert all(e["traces"][0]["stop_condition"] == "user_closed" for e in episodes)
