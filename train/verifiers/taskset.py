"""verifiers 0.4 (v1 API) side of the adapter, loaded as ``vf-eval inftool_verifiers`` (``vf_entry/``).

Runs in verifiers' own virtualenv (it pins mcp 2.0; inftool pins mcp 2.3). Nothing here runs our
servers or reward: every call goes to the bridge (``bridge.py``), a subprocess started from
inftool's interpreter (``--env.taskset.task.python`` or ``$INFTOOL_PYTHON``) and reached on loopback.

- ``InftoolTaskset``: the env's tasks as verifiers tasks (seed ``config.seed + i`` for the i-th, as
  ``inftool eval`` seeds them);
- ``InftoolEnv``: one episode = one verifiers ``interaction``. The harness (``null`` by default: a
  chat loop with MCP tools) gets the episode's own MCP URL on our real server, which lists only the
  tools the env offers that episode (a task's ``excluded_tools`` are not there); each time the agent
  answers without a tool call, the env's user simulator (on the bridge) replies, until it is done;
- ``InftoolTask.answer_unknown_tools``: a call to a tool the episode does not offer gets the env's own
  answer (``Unknown tool 'x'. Offered tools: …``) in place of the harness's (through verifiers' tool
  gate, where the harness has one), so the model reads what ``inftool eval`` would show it;
- ``InftoolTask.gated_reward``: our gated reward for the finished trace, its gates and components
  recorded as metrics.

A bridge that died is restarted off the event loop for the next rollout; the episodes it was running
fail, saying so (their server state went with it). Each bridge's port file and log live in a
temporary folder, removed when the bridge is stopped cleanly and kept (its path said) when it failed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import verifiers.v1 as vf
from pydantic import Field
from verifiers.v1.dialects.chat import message_to_wire
from verifiers.v1.mcp import SharedToolServer

__all__ = ["InftoolEnv", "InftoolTaskset"]

PYTHON_ENV_VAR = "INFTOOL_PYTHON"
BRIDGE_START_TIMEOUT_S = 120.0
INTERRUPTED = {130, -signal.SIGINT, -signal.SIGTERM}  # a bridge's exit codes when it was told to stop


class InftoolTaskData(vf.TaskData):
    env_id: str
    task_id: str
    category: str
    seed: int
    servers: list[str]
    offered: list[str] | None = None
    """The tools the episode offers, set by ``InftoolEnv.run`` where the harness asks verifiers' tool
    gate before each call: ``answer_unknown_tools`` then answers a call to any other tool."""


class InftoolTaskConfig(vf.TaskConfig):
    python: str | None = None
    """inftool's interpreter (its venv's ``bin/python``); default ``$INFTOOL_PYTHON``."""


class InftoolTask(vf.Task[InftoolTaskData, vf.State, InftoolTaskConfig]):
    @property
    def key(self) -> str:
        return f"{self.data.env_id}:{self.data.task_id}:{self.data.seed}"

    @vf.reward
    async def gated_reward(self, trace: vf.Trace) -> float:
        bridge = await running_bridge(self.data.env_id, self.config.python)
        messages = unprefixed([message_to_wire(m) for m in trace.messages], self.data.servers)
        body = {"task_id": self.data.task_id, "seed": self.data.seed, "messages": messages}
        scored = await bridge.call("POST", "/score", body)
        metrics = {f"gate_{k}": float(v) for k, v in scored.get("gates", {}).items()}
        metrics |= {k: float(v) for k, v in scored.get("components", {}).items() if v is not None}
        metrics |= {"finished": float(scored["finished"]), "divergent_results": float(scored["divergent_results"])}
        trace.record_metrics(metrics)
        return float(scored["reward"])

    @vf.intercept
    async def answer_unknown_tools(self, request: vf.Request) -> vf.Request | None:
        """A call to a tool the episode does not offer, answered as ``ToolEnv`` answers it (its MCP
        listing lacks the tool, so the harness would answer in its own words, e.g. ``error: unknown
        tool``). verifiers asks this before the harness runs each call, with an empty result last; a
        result put there is the call's verdict: the call is not run and the model sees that result."""
        offered, last = self.data.offered, request.messages[-1] if request.messages else None
        if offered is None or not isinstance(last, vf.ToolMessage) or last.name is None:
            return None
        name = unprefixed_name(last.name, self.data.servers)
        text = unknown_tool_text(name, offered)
        if name in offered or last.content == text:
            return None
        answered = last.model_copy(update={"content": text})
        return request.model_copy(update={"messages": [*request.messages[:-1], answered]})


class InftoolTasksetConfig(vf.TasksetConfig):
    env: str = "inftool/Bookshelf-v0"
    """The inftool env: a registered env id (``inftool list``) or the path of an env manifest (a TOML
    file, such as the one ``inftool synth`` writes beside its tasks); a relative path is read from the
    bridge's working directory, which is verifiers'."""
    seed: int = Field(default=0, ge=0)  # gymnasium refuses a negative seed: every rollout would fail
    """Task i plays with seed ``seed + i`` (as ``inftool eval --seed`` does)."""
    task: InftoolTaskConfig = InftoolTaskConfig()


class InftoolTaskset(vf.Taskset[InftoolTask, InftoolTasksetConfig]):
    def load(self) -> Iterator[InftoolTask]:
        python = resolve_python(self.config.task.python)
        config = self.config.task.model_copy(update={"python": python})
        listing = bridge_for(self.config.env, python).call_sync("GET", "/tasks")
        for i, row in enumerate(listing["tasks"]):
            data = InftoolTaskData(
                id=row["id"], name=row["id"], env_id=self.config.env, task_id=row["id"], category=row["category"],
                seed=self.config.seed + i, servers=row["servers"],
            )  # fmt: skip
            yield InftoolTask(data, config)


class InftoolEnvConfig(vf.EnvConfig):
    agent: vf.AgentConfig = vf.AgentConfig(harness={"id": "null"}, runtime={"type": "subprocess"})
    """The assistant under training/evaluation: ``null`` is verifiers' plain chat loop with MCP tools,
    run as a local subprocess (it executes no code; our servers are on this host's loopback)."""


class InftoolEnv(vf.Env[InftoolEnvConfig]):
    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        data = task.data
        if not isinstance(data, InftoolTaskData) or not isinstance(task.config, InftoolTaskConfig):
            raise TypeError(f"InftoolEnv plays InftoolTaskset's tasks, not {type(task).__name__}")
        bridge = await running_bridge(data.env_id, task.config.python)
        episode = await bridge.call("POST", "/episodes", {"task_id": data.task_id, "seed": data.seed})
        key = episode["episode"]
        system = "\n\n".join(m["content"] for m in episode["messages"] if m["role"] == "system") or None
        opening = next(m["content"] for m in episode["messages"] if m["role"] == "user")
        # Without a tool gate a verdict cannot stop a call, only end the rollout: such a harness keeps its
        # own words for a call to a tool it was not shown (the bridge still runs none of them).
        gated = agents.agent.harness.SUPPORTS_TOOL_INTERCEPTION
        played = task.with_data(prompt=None, system_prompt=system, offered=episode["offered"] if gated else None)
        # One server keeps our bare tool names (verifiers prefixes "<server>_" otherwise).
        single = len(episode["servers"]) == 1
        tools = {
            ("" if single else name): SharedToolServer(url=bridge.url + path, local=True, external=True)
            for name, path in episode["servers"].items()
        }
        try:
            async with agents.agent.interaction(played, tools=tools) as chat:
                segment = await chat.turn(opening)
                while not segment.terminated:
                    messages = unprefixed([message_to_wire(m) for m in chat.trace.messages], data.servers)
                    reply = await bridge.call("POST", f"/episodes/{key}/user", {"messages": messages})
                    if reply["done"]:
                        break
                    segment = await chat.turn(reply["message"])
        except Exception:
            bridge.check_alive()  # a dead bridge is the cause: say so
            raise
        finally:
            with contextlib.suppress(httpx.HTTPError, BridgeExited):
                await bridge.call("DELETE", f"/episodes/{key}")
        bridge.check_alive()  # the chat may end on its own after tool calls to a dead bridge


def unprefixed(messages: list[dict[str, Any]], servers: list[str]) -> list[dict[str, Any]]:
    """Tool names as our env knows them: with several servers, verifiers calls ``server_tool``."""
    if len(servers) < 2:
        return messages
    for m in messages:
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            fn["name"] = unprefixed_name(str(fn.get("name", "")), servers)
    return messages


def unprefixed_name(name: str, servers: list[str]) -> str:
    if len(servers) < 2:
        return name
    return next((name[len(s) + 1 :] for s in servers if name.startswith(f"{s}_")), name)


def unknown_tool_text(name: str, offered: list[str]) -> str:
    """What ``ToolEnv`` answers a call to a tool it does not offer: ``bridge.unknown_tool_text``, which
    this venv cannot import (it holds none of inftool's dependencies)."""
    return f"Unknown tool {name!r}. Offered tools: {', '.join(offered)}."


# -- the bridge process ---------------------------------------------------------------------------
def resolve_python(python: str | None) -> str:
    python = python or os.environ.get(PYTHON_ENV_VAR)
    if not python:
        raise ValueError(
            f"inftool's interpreter is unknown: pass --env.taskset.task.python PATH or set ${PYTHON_ENV_VAR} "
            "to the python of the virtualenv where inftool-env is installed"
        )
    if not Path(python).is_file():
        raise ValueError(f"inftool interpreter {python!r} (--env.taskset.task.python / ${PYTHON_ENV_VAR}) not found")
    return python


class BridgeProcess:
    """``python -m inftool_env.train.verifiers.bridge ENV`` in inftool's venv, on a loopback port. Its port
    file and log are in ``folder``, a temporary folder removed when ``stop`` ends the bridge cleanly; one
    that failed (did not start, died, or had to be killed) keeps it, since its log says why."""

    def __init__(self, env_id: str, python: str) -> None:
        self.env_id = env_id
        self.folder = Path(tempfile.mkdtemp(prefix="inftool-bridge-"))
        port_file, self.log = self.folder / "port", self.folder / "bridge.log"
        self.failed = self.stopped = False
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, argv without a shell
                [python, "-m", "inftool_env.train.verifiers.bridge", env_id, "--port-file", str(port_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        atexit.register(self.stop)
        deadline = time.monotonic() + BRIDGE_START_TIMEOUT_S
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.failed = True
                self.stop(say=False)  # the error says where its log is
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"inftool bridge for {env_id} did not start ({python}; its log: {self.log}): {tail}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def call_sync(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.url + path, json=body, timeout=120.0)
        return _checked(response, self.env_id)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with httpx.AsyncClient(timeout=120.0) as client:
                response = await client.request(method, self.url + path, json=body)
        except httpx.TransportError:
            self.check_alive()
            raise
        return _checked(response, self.env_id)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BridgeExited(f"inftool bridge for {self.env_id} exited (code {code}); the episodes it was running "
                               f"are lost, and the next rollout restarts it (its log: {self.log})")  # fmt: skip

    def stop(self, *, say: bool = True) -> None:
        """End the bridge (once; again is a no-op). Its folder goes with it, unless the bridge failed: it
        exited before it was asked to (an interrupt, Ctrl-C say, is no failure), or did not end when
        asked. Then the folder is kept and, with ``say``, its log named on stderr."""
        if self.stopped:
            return
        self.stopped = True
        code = self.process.poll()
        if code is not None:
            self.failed = self.failed or code not in INTERRUPTED  # it died, or never started
        else:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.failed = True
        if not self.failed:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif say:
            print(f"inftool: the verifiers bridge for {self.env_id} failed; its log: {self.log}", file=sys.stderr)


class BridgeExited(RuntimeError):
    """The bridge process is gone, and with it its live episodes' server state."""


def _checked(response: httpx.Response, env_id: str) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"inftool bridge ({env_id}): {response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:500]}")  # fmt: skip
    return response.json()


_BRIDGES: dict[tuple[str, str], BridgeProcess] = {}
_LOCK = threading.Lock()


def bridge_for(env_id: str, python: str | None) -> BridgeProcess:
    """One bridge per (interpreter, env) in this process, started on first use."""
    python = resolve_python(python)
    with _LOCK:
        key = (python, env_id)
        if key not in _BRIDGES or _BRIDGES[key].process.poll() is not None:
            _BRIDGES[key] = BridgeProcess(env_id, python)
        return _BRIDGES[key]


async def running_bridge(env_id: str, python: str | None) -> BridgeProcess:
    """``bridge_for`` from a rollout: a (re)start waits up to ``BRIDGE_START_TIMEOUT_S`` for the port,
    in a thread, so the other rollouts go on meanwhile."""
    return await asyncio.to_thread(bridge_for, env_id, python)
