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
from inftool_env.tasks import Task, ToolCall
from tests.conftest import REPO, terminal_sigint
from tests.train._scripted import bookshelf_model

VENV = Path(os.environ.get("INFTOOL_VERIFIERS_VENV", REPO / ".venv-verifiers"))
VF_EVAL = VENV / "bin" / "vf-eval"
TASKS = ["bookshelf-add", "bookshelf-remove", "bookshelf-register-and-borrow"]
BOOKSHELF_TOOLS = ["listBooks", "addBook", "getBook", "removeBook", "updateBook", "listMembers", "registerMember",
                   "listLoans", "borrowBook"]  # fmt: skip


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


# Synthesized-style tasks that withhold tools (``excluded_tools``), in a manifest of their own: a model that
# calls what it is shown, and the tools each run showed it.
OFFER_TASKS = [
    Task(id="near-miss", category="irrelevance", turns=["Help me list library members."], servers=["bookshelf"],
         excluded_tools=[t for t in BOOKSHELF_TOOLS if t != "addBook"], one_shot=True),
    Task(id="remove-after-a-withheld-call", category="simple", turns=["Please remove the book boo_1."],
         servers=["bookshelf"], excluded_tools=[t for t in BOOKSHELF_TOOLS if t != "removeBook"], one_shot=True,
         ground_truth=[[ToolCall(name="removeBook", arguments={"bookId": "boo_1"})]]),
]  # fmt: skip


def _offer_reply(messages: list[dict[str, Any]], names: list[str]) -> str | dict[str, Any]:
    """The model's reply on OFFER_TASKS, shown the tools ``names``."""
    opening = str(next(m for m in messages if m.get("role") == "user").get("content"))
    if any(m.get("role") == "tool" for m in messages):
        return "Done."
    if "library members" in opening:  # the near miss: it calls listMembers whenever it is shown one
        return _calls(("listMembers", {})) if "listMembers" in names else "Sorry, no tool here can do that."
    return _calls(("listBooks", {}), ("removeBook", {"bookId": "boo_1"}))  # listBooks is withheld


def _calls(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    tool_calls = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                  for i, (name, args) in enumerate(calls)]  # fmt: skip
    return {"role": "assistant", "content": "", "tool_calls": tool_calls}


def _manifest(folder: Path, tasks: list[Task]) -> Path:
    """A Bookshelf env of ``tasks``: what ``inftool synth`` writes, a manifest beside its tasks file."""
    (folder / "tasks.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    spec = REPO / "servers" / "bookshelf" / "openapi.yaml"
    manifest = folder / "Withheld-v0.toml"
    manifest.write_text(f'id = "test/Withheld-v0"\nservers = [{{ name = "bookshelf", spec = "{spec}" }}]\n'
                        '[tasks]\nsource = "tasks.jsonl"\n')  # fmt: skip
    return manifest


@pytest.fixture(scope="module")
def offer_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same model on the same withholding tasks under vf-eval and under ``inftool eval``."""
    out = tmp_path_factory.mktemp("offer")
    manifest = _manifest(out, OFFER_TASKS)
    shown: dict[str, dict[str, list[str]]] = {"vf": {}, "eval": {}}
    run = {"by": "vf"}  # which run is asking

    def model(messages: list[dict[str, Any]], tools: Any = None) -> str | dict[str, Any]:
        names = [t["function"]["name"] for t in tools or []]
        shown[run["by"]][str(next(m for m in messages if m.get("role") == "user").get("content"))] = names
        return _offer_reply(messages, names)

    async def both() -> None:
        env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", "INFTOOL_PYTHON": sys.executable,
               "SCRIPTED_KEY": "unused"}  # fmt: skip
        async with running_openai_server(ScriptedChat([model], cycle=True)) as url:
            vf = await anyio.run_process(
                [str(VF_EVAL), "inftool_verifiers", "--env.taskset.env", str(manifest), "-m", "scripted",
                 "--client.base-url", url, "--client.api-key-var", "SCRIPTED_KEY", "-c", "2", "--no-push",
                 "--no-rich", "-o", str(out / "vf")],
                env=env, cwd=out, check=False, stderr=subprocess.STDOUT,
            )  # fmt: skip
            assert vf.returncode == 0, vf.stdout.decode()[-3000:]
            run["by"] = "eval"
            ours = await anyio.run_process(
                [sys.executable, "-m", "inftool_env.cli", "eval", str(manifest), "--policy",
                 f"openai:{url}#scripted", "--out", str(out / "inftool")],
                cwd=out, check=False, stderr=subprocess.STDOUT,
            )  # fmt: skip
            assert ours.returncode == 0, ours.stdout.decode()[-3000:]

    anyio.run(both)
    episodes = [json.loads(line) for f in (out / "vf").glob("*/traces.jsonl") for line in f.read_text().splitlines()]
    trajectories = [json.loads(line) for line in (out / "inftool" / "trajectories.jsonl").read_text().splitlines()]
    return {
        "shown": shown,
        "vf": {e["task"]["data"]["task_id"]: e["traces"][0] for e in episodes},
        "eval": {t["task_id"]: t for t in trajectories},
    }


def _vf_tool_results(trace: dict[str, Any]) -> list[str]:
    return [str(n["message"]["content"]) for n in trace["nodes"] if n["message"].get("role") == "tool"]


@needs_vf
def test_vf_eval_shows_each_episode_the_tools_eval_offers(offer_runs: dict[str, Any]) -> None:
    shown = offer_runs["shown"]
    assert shown["vf"] == shown["eval"]
    assert shown["vf"]["Please remove the book boo_1."] == ["removeBook"]
    assert shown["vf"]["Help me list library members."] == ["addBook"]


@needs_vf
def test_the_near_miss_that_is_not_shown_its_tool_scores_as_in_eval(offer_runs: dict[str, Any]) -> None:
    trace, ours = offer_runs["vf"]["near-miss"], offer_runs["eval"]["near-miss"]
    assert trace["rewards"]["gated_reward"]["score"] == ours["reward"]["reward"] == 1.0
    assert _vf_tool_results(trace) == []  # listMembers was never called, so never ran
    assert trace["metrics"]["divergent_results"] == 0.0 and trace["metrics"]["finished"] == 1.0


@needs_vf
def test_a_call_to_a_withheld_tool_is_answered_and_scored_as_in_eval(offer_runs: dict[str, Any]) -> None:
    trace, ours = offer_runs["vf"]["remove-after-a-withheld-call"], offer_runs["eval"]["remove-after-a-withheld-call"]
    assert trace["rewards"]["gated_reward"]["score"] == ours["reward"]["reward"]
    assert trace["metrics"]["gate_schema"] == 0.0  # the withheld call fails the schema gate, as in eval
    eval_results = [str(m["content"]) for m in ours["messages"] if m.get("role") == "tool"]
    assert eval_results[0] == "Unknown tool 'listBooks'. Offered tools: removeBook."
    assert _vf_tool_results(trace) == eval_results  # the model reads what eval shows it, and listBooks never ran
    assert trace["metrics"]["divergent_results"] == 0.0


@needs_vf
def test_every_documented_vf_eval_id_is_one_verifiers_can_load() -> None:
    """``vf-eval ID`` in the adapter's docstrings and the README: verifiers' own loader finds a taskset."""
    docs = [REPO / "README.md", *(REPO / "train" / "verifiers").rglob("*.py")]
    ids = sorted({i for f in docs for i in re.findall(r"vf-eval ([\w.]+)", f.read_text(encoding="utf-8"))})
    assert "inftool_verifiers" in ids
    load = "import sys; from verifiers.v1.utils.loaders import taskset_class; [taskset_class(i) for i in sys.argv[1:]]"
    probe = subprocess.run([str(VENV / "bin" / "python"), "-c", load, *ids], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-2000:]


@needs_vf
def test_the_readme_vf_eval_lines_leave_inftool_ours() -> None:
    """The README's verifiers block, run in bash (``make`` and ``vf-eval`` stubbed): vf-eval finds verifiers'
    venv first on its PATH (its harness runs ``uv`` from there), and ``inftool`` after it is still .venv's."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*verifiers 0\.4\*\*.*?```bash\n(.*?)```", readme, re.S)
    assert block is not None
    script = ("make() { :; }\n"
              'vf-eval() { echo "vf-eval=$(type -P vf-eval) uv=$(type -P uv)"; }\n'
              f"{block[1]}\n"
              'echo "inftool=$(type -P inftool)"; echo "python=$INFTOOL_PYTHON"\n')  # fmt: skip
    ours = REPO / ".venv" / "bin"
    run = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{ours}:/usr/bin:/bin"})  # fmt: skip
    assert run.returncode == 0, run.stderr
    theirs = REPO / ".venv-verifiers" / "bin"
    assert f"vf-eval={theirs / 'vf-eval'} uv={theirs / 'uv'}" in run.stdout, run.stdout
    assert f"inftool={ours / 'inftool'}" in run.stdout and f"python={ours / 'python'}" in run.stdout, run.stdout


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
    harness = SimpleNamespace(SUPPORTS_TOOL_INTERCEPTION=True)  # as verifiers' null harness

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
def bridge_faults(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("faults"))}  # the killed bridge's log is kept
    run = subprocess.run([str(VENV / "bin" / "python"), "-c", BRIDGE_FAULTS, sys.executable],
                         capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
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


# The episode's MCP endpoint on its own (inftool's venv): the offer, not the server's listing.
def _mcp(client: Any, url: str, method: str, params: dict[str, Any] | None = None, rid: int = 1) -> Any:
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
    if "session" in client.headers:
        headers["mcp-session-id"] = client.headers["session"]
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if not method.startswith("notifications/"):
        body["id"] = rid
    response = client.post(url, json=body, headers=headers)
    assert response.status_code < 300, response.text
    if "mcp-session-id" in response.headers:
        client.headers["session"] = response.headers["mcp-session-id"]
    data = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return data[-1]["result"] if data else None


@pytest.fixture(scope="module")
def withheld_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from inftool_env.registration import make
    from inftool_env.train.verifiers.bridge import Bridge, bridge_app

    manifest = _manifest(tmp_path_factory.mktemp("withheld"), OFFER_TASKS)
    bridge = Bridge(make(str(manifest)))
    # Our MCP app checks Host exactly: the test client must name a loopback host and port.
    with TestClient(bridge_app(bridge), base_url="http://127.0.0.1:8123") as client:
        client.bridge = bridge
        yield client


def test_the_episode_mcp_endpoint_lists_the_offer_and_runs_no_other_tool(withheld_client: Any) -> None:
    client = withheld_client
    episode = client.post("/episodes", json={"task_id": "near-miss", "seed": 0}).json()
    assert episode["offered"] == [t["function"]["name"] for t in episode["tools"]] == ["addBook"]
    url = episode["servers"]["bookshelf"]
    _mcp(client, url, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                     "clientInfo": {"name": "test", "version": "0"}})  # fmt: skip
    _mcp(client, url, "notifications/initialized")
    assert [t["name"] for t in _mcp(client, url, "tools/list", rid=2)["tools"]] == ["addBook"]
    member = {"name": "Ada", "email": "ada@example.com"}
    refused = _mcp(client, url, "tools/call", {"name": "registerMember", "arguments": member}, rid=3)
    assert refused["isError"] and refused["_meta"]["inftool/error_kind"] == "unknown_tool"
    assert refused["content"][0]["text"] == "Unknown tool 'registerMember'. Offered tools: addBook."
    added = _mcp(client, url, "tools/call", {"name": "addBook", "arguments": {"title": "Dune", "author": "F. H."}}, 4)
    assert not added["isError"] and json.loads(added["content"][0]["text"])["title"] == "Dune"
    client.delete(f"/episodes/{episode['episode']}")


@pytest.mark.anyio
async def test_a_call_to_a_withheld_tool_is_no_divergence_however_the_harness_words_it(withheld_client: Any) -> None:
    """A harness without verifiers' tool gate answers such a call itself: no server ran it, live or replayed,
    so its wording is not a divergence. A result a server did give still is compared."""

    async def divergent(task: str, opening: str, call: tuple[str, dict[str, Any]], live: str) -> Any:
        messages = [
            {"role": "user", "content": opening},
            _calls(call),
            {"role": "tool", "tool_call_id": "call_0", "content": live},
            {"role": "assistant", "content": "Ok."},
        ]
        scored = await withheld_client.bridge.score(task, 0, messages)
        assert scored["finished"], scored
        return scored["divergent_results"]

    withheld = ("remove-after-a-withheld-call", "Please remove the book boo_1.", ("listBooks", {}))
    assert await divergent(*withheld, "error: unknown tool 'listBooks'") == 0  # verifiers' own words
    assert await divergent(*withheld, "Unknown tool 'listBooks'. Offered tools: removeBook.") == 0  # the env's
    offered = ("near-miss", "Help me list library members.", ("addBook", {"title": "Dune", "author": "F. H."}))
    assert await divergent(*offered, "not what the server said") == 1


def test_a_task_whose_tools_change_between_turns_is_refused_up_front(tmp_path: Path) -> None:
    later = Task(id="later", turns=["List the books.", "Now remove boo_1."], servers=["bookshelf"],
                 tools_added={1: ["removeBook"]})  # fmt: skip
    manifest = _manifest(tmp_path, [OFFER_TASKS[0], later])
    run = subprocess.run([sys.executable, "-m", "inftool_env.train.verifiers.bridge", str(manifest)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "test/Withheld-v0: task later withholds tools until a later user turn" in run.stderr, run.stderr[-2000:]


# The bridge's temporary folder (port file, log): gone after a clean stop, kept (and named) after a failure.
BRIDGE_FOLDERS = """
import json, signal, subprocess, sys, tempfile
from pathlib import Path
from inftool_env.train.verifiers import taskset as ts

PY, folders = sys.argv[1], lambda: sorted(str(f) for f in Path(tempfile.gettempdir()).glob("inftool-bridge-*"))
clean = ts.bridge_for("inftool/Bookshelf-v0", PY)
while_running = folders()
clean.stop()
after_stop = folders()
try:
    ts.bridge_for("inftool/NoSuchEnv-v0", PY)
    failed = None
except RuntimeError as exc:
    failed = str(exc)
for how in (signal.SIGINT, signal.SIGKILL):  # Ctrl-C is no failure; a bridge killed under us is one
    bridge = ts.BridgeProcess("inftool/Bookshelf-v0", PY)
    bridge.process.send_signal(how)
    try:
        bridge.process.wait(timeout=60)
    except subprocess.TimeoutExpired:  # say so with the bridge's log, rather than hang until pytest's timeout
        sys.exit(f"the bridge did not end on signal {how!r}; its log: {bridge.log.read_text()[-2000:]}")
    bridge.stop()
killed = str(bridge.log)
ts.bridge_for("inftool/Bookshelf-v0", PY)  # left to the exit to stop
print(json.dumps({"while_running": while_running, "after_stop": after_stop, "failed": failed, "killed": killed}))
"""


@needs_vf
def test_a_bridge_leaves_no_temporary_folder_unless_it_failed(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.run([str(VENV / "bin" / "python"), "-c", BRIDGE_FOLDERS, sys.executable],
                         capture_output=True, text=True, timeout=600, env=env, preexec_fn=terminal_sigint)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert len(result["while_running"]) == 1 and result["after_stop"] == []  # a clean stop removes it
    logs = sorted(str(f) for f in tmp_path.glob("inftool-bridge-*/bridge.log"))  # nor at exit, nor after Ctrl-C
    assert len(logs) == 2 and result["killed"] in logs, (logs, result)  # kept: the killed one's, and the
    (failed,) = set(logs) - {result["killed"]}  # failed start's, named in its error
    assert f"its log: {failed}" in result["failed"] and "NoSuchEnv" in result["failed"]
    assert f"inftool: the verifiers bridge for inftool/Bookshelf-v0 failed; its log: {result['killed']}" in run.stderr
