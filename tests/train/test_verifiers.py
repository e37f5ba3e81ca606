"""verifiers 0.4 through its own entry point: ``vf-eval inftool_verifiers`` in .venv-verifiers, against
our real Bookshelf server (via the bridge), with a scripted model behind our OpenAI-compatible server.
The reward vf-eval reports for each task must equal what ``inftool eval`` gives for the same actions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
needs_vf = pytest.mark.skipif(NOT_READY is not None, reason=NOT_READY or "")  # the bridge's own tests run here


@needs_vf
@pytest.mark.anyio
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


@needs_vf
def test_every_documented_vf_eval_id_is_one_verifiers_can_load() -> None:
    """``vf-eval ID`` in the adapter's docstrings and the README: verifiers' own loader finds a taskset."""
    docs = [REPO / "README.md", *(REPO / "train" / "verifiers").rglob("*.py")]
    ids = sorted({i for f in docs for i in re.findall(r"vf-eval ([\w.]+)", f.read_text(encoding="utf-8"))})
    assert "inftool_verifiers" in ids
    load = "import sys; from verifiers.v1.utils.loaders import taskset_class; [taskset_class(i) for i in sys.argv[1:]]"
    probe = subprocess.run([str(VENV / "bin" / "python"), "-c", load, *ids], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-2000:]


# A bridge that dies: one mid-episode (verifiers' chat faked, the bridge and its HTTP real), then a
# reward that restarts it while a ticker measures how long the event loop was held.
BRIDGE_FAULTS = """
import asyncio, contextlib, json, sys, time
from types import SimpleNamespace
from inftool_env.train.verifiers import taskset as ts

ENV, PY = "inftool/Bookshelf-v0", sys.argv[1]
row = next(r for r in ts.bridge_for(ENV, PY).call_sync("GET", "/tasks")["tasks"] if r["id"] == "bookshelf-remove")
data = ts.InftoolTaskData(id=row["id"], name=row["id"], env_id=ENV, task_id=row["id"], category=row["category"],
                          seed=0, servers=row["servers"])
task = ts.InftoolTask(data, ts.InftoolTaskConfig(python=PY))

class Chat:
    trace = SimpleNamespace(messages=[])
    async def turn(self, text):
        bridge = ts.bridge_for(ENV, PY)
        bridge.process.kill()
        bridge.process.wait()
        return SimpleNamespace(terminated=False)

class Agent:
    @contextlib.asynccontextmanager
    async def interaction(self, task, tools):
        yield Chat()

async def episode_on_a_dying_bridge():
    try:
        await ts.InftoolEnv.run(object.__new__(ts.InftoolEnv), task, SimpleNamespace(agent=Agent()))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

async def reward_while_restarting():
    gaps, done = [], asyncio.Event()
    async def tick():
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)  # the ticker is running, as other rollouts would be
    start = time.monotonic()
    reward = await task.gated_reward(SimpleNamespace(messages=[], record_metrics=lambda m: None))
    took = time.monotonic() - start
    done.set()
    await ticker
    return {"reward": reward, "took": took, "longest_stall": max(gaps)}

died = asyncio.run(episode_on_a_dying_bridge())
print(json.dumps({"died": died, **asyncio.run(reward_while_restarting())}))
"""


@pytest.fixture(scope="module")
def bridge_faults() -> dict[str, Any]:
    run = subprocess.run([str(VENV / "bin" / "python"), "-c", BRIDGE_FAULTS, sys.executable],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


@needs_vf
def test_a_bridge_that_dies_mid_episode_fails_the_rollout_saying_so(bridge_faults: dict[str, Any]) -> None:
    died = str(bridge_faults["died"])
    assert "bridge for inftool/Bookshelf-v0 exited" in died and "episodes it was running are lost" in died


@needs_vf
def test_restarting_the_bridge_does_not_hold_the_event_loop(bridge_faults: dict[str, Any]) -> None:
    took, stall = bridge_faults["took"], bridge_faults["longest_stall"]
    assert bridge_faults["reward"] == 0.0  # an empty trace is scored, by the restarted bridge
    assert took > 0.5 and stall < took / 4, bridge_faults


@needs_vf
def test_a_negative_taskset_seed_is_refused_naming_it() -> None:
    probe = "from inftool_env.train.verifiers.taskset import InftoolTasksetConfig as C; C(seed=-1)"
    run = subprocess.run([str(VENV / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert run.returncode != 0 and "seed" in run.stderr and "greater than or equal to 0" in run.stderr


# The bridge on its own, in inftool's venv: a bad request is a 400 saying why, not a 500.
@pytest.fixture(scope="module")
def bridge_client() -> Iterator[Any]:
    from starlette.testclient import TestClient

    from inftool_env.registration import make
    from inftool_env.train.verifiers.bridge import Bridge, bridge_app

    with TestClient(bridge_app(Bridge(make("inftool/Bookshelf-v0")))) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "why"),
    [
        ("/episodes", {"task_id": "bookshelf-remove", "seed": -1}, "seed must be 0 or more, not -1"),
        ("/episodes", {"task_id": "bookshelf-remove", "seed": None}, "seed must be a whole number, not None"),
        ("/episodes", ["bookshelf-remove"], "/episodes: the body must be a JSON object, not list"),
        ("/episodes", {"seed": 0}, "/episodes: the body lacks task_id"),
        ("/score", {"task_id": "bookshelf-remove", "seed": -1, "messages": []}, "seed must be 0 or more"),
        ("/score", {"task_id": "bookshelf-remove"}, "/score: the body lacks seed, messages"),
    ],
    ids=["negative-seed", "null-seed", "not-an-object", "no-task", "score-negative-seed", "score-missing"],
)
def test_a_bad_request_gets_a_400_with_the_reason(bridge_client: Any, path: str, body: Any, why: str) -> None:
    response = bridge_client.post(path, json=body)
    assert response.status_code == 400 and why in response.json()["error"], response.text


def test_a_good_request_still_starts_an_episode(bridge_client: Any) -> None:
    response = bridge_client.post("/episodes", json={"task_id": "bookshelf-remove", "seed": 3})
    assert response.status_code == 200 and response.json()["servers"]
    bridge_client.delete(f"/episodes/{response.json()['episode']}")


def test_the_bridge_refuses_to_serve_bfcl() -> None:
    """What it serves is trained on; the taskset's bridge_for raises with this line from the bridge's log."""
    run = subprocess.run([sys.executable, "-m", "inftool_env.train.verifiers.bridge", "inftool/BfclTravelAPI-v0"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "BFCL's, and BFCL is for evaluation only" in run.stderr, run.stderr[-2000:]
