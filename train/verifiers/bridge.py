"""The inftool side of the verifiers adapter: one loopback HTTP service per env, run in inftool's venv.

``python -m inftool_env.train.verifiers.bridge ENV_ID --port-file FILE`` builds the env (``make``),
binds a free loopback port, writes it to FILE and serves until stopped:

- ``GET  /tasks``                         the env's tasks (id, category);
- ``POST /episodes``                      ``{task_id, seed}``: a live episode — the system and opening
  messages exactly as ``ToolEnv.reset`` makes them, and one MCP URL per server;
- ``/episodes/{key}/{server}/mcp``        that server, streamable HTTP, speaking for episode ``key``:
  the episode keys our servers read from ``_meta`` are added to every ``tools/call`` on the way in,
  so a client that sends none (verifiers' chat program) still gets its own isolated, seeded state.
  It shows the episode's offer, not the server's whole listing: ``tools/list`` holds only the tools
  ``ToolEnv.reset`` offered (a task's ``excluded_tools`` are not there), and a ``tools/call`` to any
  other tool is not run: it is answered as the env answers an unknown tool (``unknown_tool_text``);
- ``POST /episodes/{key}/user``           ``{messages}``: the env's user simulator's next reply;
- ``DELETE /episodes/{key}``              drop the episode's server state;
- ``POST /score``                         ``{task_id, seed, messages}``: the gated reward (see ``score``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inftool_env.argtypes import port
from inftool_env.env import ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.eval.bfcl_guard import refuse_bfcl
from inftool_env.mcp import http_app
from inftool_env.mcp.server import META_EPISODE, META_ERROR_KIND, META_INITIAL, META_SEED
from inftool_env.tasks import Task
from inftool_env.train.checks import check_seed
from inftool_env.users import UserReply

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EPISODE_PATH = re.compile(r"^/episodes/(?P<key>[\w-]+)/(?P<server>[\w.-]+)/mcp/?$")


@dataclass(frozen=True)
class LiveEpisode:
    task: Task
    seed: int  # the episode seed (what ToolEnv.reset drew), not the caller's
    offered: tuple[str, ...] = ()  # the tools ToolEnv.reset offered, in its order


def unknown_tool_text(name: str, offered: Sequence[str]) -> str:
    """What ``ToolEnv`` answers a call to a tool it does not offer (``env/core.py``, ``_run_call``);
    ``taskset.py`` words it the same way for calls verifiers' chat program answers itself."""
    return f"Unknown tool {name!r}. Offered tools: {', '.join(offered)}."


def unsupported(task: Task) -> str | None:
    """Why the bridge cannot play ``task`` as ``inftool eval`` does, or None."""
    if task.tools_added:
        return ("withholds tools until a later user turn, but verifiers' harness is shown one tool listing "
                "for a whole rollout")  # fmt: skip
    return None


def check_supported(env_id: str, tasks: Sequence[Task]) -> None:
    """Raise naming the first task ``unsupported`` refuses (and how many more there are): up front, not
    mid-rollout."""
    refused = [(t.id, why) for t in tasks if (why := unsupported(t))]
    if refused:
        more = f" ({len(refused) - 1} more such tasks)" if len(refused) > 1 else ""
        raise InftoolError(f"{env_id}: task {refused[0][0]} {refused[0][1]}{more}")


class RecordedUser:
    """Says what the user said in the recorded conversation, then is done: replaying an episode
    must not ask a (possibly sampling) user simulator again."""

    def __init__(self, said: list[str]) -> None:
        self.said = said

    async def opening(self, task: Task) -> str:
        return self.said[0] if self.said else task.turns[0]

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        n = sum(1 for m in messages if m.get("role") == "user")
        return UserReply(self.said[n]) if n < len(self.said) else UserReply(None, done=True)


@dataclass
class Bridge:
    env: ToolEnv
    episodes: dict[str, LiveEpisode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_supported(self.env.config.id, self.env.tasks)

    # -- live episodes --------------------------------------------------------------------------
    async def start(self, task_id: str, seed: int) -> dict[str, Any]:
        worker = self.env.spawn()
        try:
            obs, info = await worker.reset(seed=seed, options={"task_id": task_id})
        finally:
            await worker.close()
        task = next(t for t in self.env.tasks if t.id == task_id)
        key = uuid.uuid4().hex
        offered = tuple(str(t["function"]["name"]) for t in obs["tools"])
        self.episodes[key] = LiveEpisode(task, int(info["seed"]), offered)
        names = task.servers or list(self.env.servers)
        return {
            "episode": key,
            "episode_seed": info["seed"],
            "messages": obs["messages"],
            "tools": obs["tools"],
            "offered": list(offered),
            "servers": {name: f"/episodes/{key}/{name}/mcp" for name in names},
        }

    async def user_reply(self, key: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        episode = self._episode(key)
        reply = await self.env.user.reply(episode.task, messages)
        return {"message": reply.message, "done": reply.done}

    def end(self, key: str) -> None:
        if self.episodes.pop(key, None) is not None:
            for server in self.env.servers.values():
                server.end_episode(key)

    def meta(self, key: str, server: str) -> dict[str, Any]:
        episode = self._episode(key)
        meta: dict[str, Any] = {META_EPISODE: key, META_SEED: episode.seed}
        initial = episode.task.initial_for(server)
        if initial is not None:
            meta[META_INITIAL] = initial
        return meta

    def _episode(self, key: str) -> LiveEpisode:
        if key not in self.episodes:
            raise InftoolError(f"no live episode {key!r}")
        return self.episodes[key]

    # -- scoring --------------------------------------------------------------------------------
    async def score(self, task_id: str, seed: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Replay the conversation's assistant turns through a fresh ToolEnv episode (same task,
        same seed, the recorded user) and return its gated reward: by construction what
        ``inftool eval`` gives for the same actions. Tool results the model saw are compared with
        the replay's; a difference is reported, never hidden. A call to a tool the episode does not
        offer is not compared: no server ran it, live or in the replay, and a harness that answers
        such calls itself words the answer its own way (verifiers' chat program does, unless
        ``taskset.py``'s interceptor answers first)."""
        said = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        env = ToolEnv(self.env.config, self.env.tasks, self.env.servers, user=RecordedUser(said),
                      reward_fn=self.env.reward_fn)  # fmt: skip
        try:
            await env.reset(seed=seed, options={"task_id": task_id})
            seen = _tool_results_after_each_assistant(messages)
            divergent, steps, result = 0, 0, None
            for action, live_results in seen:
                result = await env.step(action)
                steps += 1
                replayed = result.info.get("calls", [])
                divergent += sum(c["result"] != live for c, live in zip(replayed, live_results, strict=False)
                                 if c.get("error_kind") != "unknown_tool")  # fmt: skip
                if result.terminated or result.truncated:
                    break
            finished = result is not None and (result.terminated or result.truncated)
            if not finished or result is None:
                return {"reward": 0.0, "finished": False, "steps": steps, "divergent_results": divergent,
                        "notes": ["the conversation ended before the environment's episode did"]}  # fmt: skip
            breakdown = result.info["reward_breakdown"]
            return {
                "reward": float(result.reward),
                "finished": True,
                "steps": steps,
                "divergent_results": divergent,
                "terminated": result.terminated,
                "truncation_reason": result.info.get("truncation_reason"),
                "gates": breakdown["gates"],
                "components": breakdown["components"],
                "notes": breakdown["notes"],
            }
        finally:
            await env.close()


def _tool_results_after_each_assistant(messages: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Each assistant message (as an action) with the tool results that followed it."""
    out: list[tuple[dict[str, Any], list[str]]] = []
    for m in messages:
        if m.get("role") == "assistant":
            action = {"role": "assistant", "content": _text(m.get("content"))}
            if m.get("tool_calls"):
                action["tool_calls"] = m["tool_calls"]
            out.append((action, []))
        elif m.get("role") == "tool" and out:
            out[-1][1].append(_text(m.get("content")))
    return out


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# -- the app --------------------------------------------------------------------------------------
def bridge_app(bridge: Bridge) -> ASGIApp:
    servers = {name: http_app(compiled) for name, compiled in bridge.env.servers.items()}

    async def tasks(_: Request) -> Response:
        rows = [{"id": t.id, "category": t.category, "servers": t.servers or list(bridge.env.servers)}
                for t in bridge.env.tasks]  # fmt: skip
        return JSONResponse({"env_id": bridge.env.config.id, "tasks": rows})

    async def start(request: Request) -> Response:
        body = await _body(request, "task_id")
        return JSONResponse(await bridge.start(str(body["task_id"]), _seed(body.get("seed", 0))))

    async def user(request: Request) -> Response:
        body = await _body(request, "messages")
        return JSONResponse(await bridge.user_reply(request.path_params["key"], list(body["messages"])))

    async def end(request: Request) -> Response:
        bridge.end(request.path_params["key"])
        return JSONResponse({"ended": True})

    async def score(request: Request) -> Response:
        body = await _body(request, "task_id", "seed", "messages")
        return JSONResponse(await bridge.score(str(body["task_id"]), _seed(body["seed"]), list(body["messages"])))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        async with AsyncExitStack() as stack:  # each server app's session manager must run
            for app in servers.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield
        await bridge.env.close()

    api = Starlette(
        routes=[
            Route("/tasks", tasks),
            Route("/episodes", start, methods=["POST"]),
            Route("/episodes/{key}/user", user, methods=["POST"]),
            Route("/episodes/{key}", end, methods=["DELETE"]),
            Route("/score", score, methods=["POST"]),
        ],
        exception_handlers={InftoolError: _error, KeyError: _error, ValueError: _error, StopIteration: _error},
        lifespan=lifespan,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        match = EPISODE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await api(scope, receive, send)
            return
        key, server = match["key"], match["server"]
        if key not in bridge.episodes or server not in servers:
            await JSONResponse({"error": f"no episode {key!r} with server {server!r}"}, status_code=404)(
                scope, receive, send
            )
            return
        inner = dict(scope, path="/mcp", raw_path=b"/mcp")
        offered = bridge.episodes[key].offered
        receive, answers = await _episode_request(receive, inner, bridge.meta(key, server), offered)
        await servers[server](inner, receive, _answering(send, answers) if answers else send)

    return app


async def _body(request: Request, *required: str) -> dict[str, Any]:
    """The request's JSON object, with ``required`` fields: a bad request is a 400 saying why, not a 500."""
    try:
        body = await request.json()
    except ValueError:
        raise InftoolError(f"{request.url.path}: the body is not JSON") from None
    if not isinstance(body, dict):
        raise InftoolError(f"{request.url.path}: the body must be a JSON object, not {type(body).__name__}")
    missing = [name for name in required if name not in body]
    if missing:
        raise InftoolError(f"{request.url.path}: the body lacks {', '.join(missing)}")
    return body


def _seed(value: Any) -> int:
    """A seed as gymnasium takes it (a whole number of 0 or more), refused here rather than mid-reset."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InftoolError(f"seed must be a whole number, not {value!r}")
    check_seed(value)
    return value


async def _error(_: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)


async def _episode_request(
    receive: Receive, scope: Scope, meta: dict[str, Any], offered: Sequence[str]
) -> tuple[Receive, dict[str, Answer]]:
    """Read a POST's JSON-RPC body now and hand back a ``receive`` that yields it as the episode's:
    the episode's keys in every ``tools/call``'s ``_meta`` (the protocol's place for them), and a call
    to a tool the episode does not offer renamed to one no server has, so that nothing runs it;
    content-length follows. With it, by request id, how to rewrite each answer: ``tools/list`` to
    the offered tools, such a call's error to the env's own words."""
    answers: dict[str, Answer] = {}
    if scope.get("method") != "POST":
        return receive, answers
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive, answers
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if payload is not None:
        for request in payload if isinstance(payload, list) else [payload]:
            if not isinstance(request, dict):
                continue
            method, rid = request.get("method"), json.dumps(request.get("id"))
            if method == "tools/list" and "id" in request:
                answers[rid] = _offer_only(offered)
            elif method == "tools/call":
                params = request.setdefault("params", {})
                params["_meta"] = {**(params.get("_meta") or {}), **meta}
                name = params.get("name")
                if isinstance(name, str) and name not in offered:
                    params["name"] = NOT_OFFERED
                    answers[rid] = _unknown_tool(name, offered)
        body = json.dumps(payload).encode()
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # what follows the body: a disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay, answers


NOT_OFFERED = "inftool/not-offered"  # no tool is named so (a slash): the server answers unknown_tool, runs nothing
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def _offer_only(offered: Sequence[str]) -> Answer:
    keep = set(offered)
    return lambda result: {**result, "tools": [t for t in result.get("tools", []) if t.get("name") in keep]}


def _unknown_tool(name: str, offered: Sequence[str]) -> Answer:
    text = unknown_tool_text(name, offered)
    answer = {"content": [{"type": "text", "text": text}], "isError": True, "_meta": {META_ERROR_KIND: "unknown_tool"}}
    return lambda _result: answer


def _answering(send: Send, answers: dict[str, Answer]) -> Send:
    """``send`` with the results of the requests in ``answers`` rewritten: an event stream event by
    event as it comes (a call's progress is not held back), a JSON body whole (its length changes)."""
    start: Message | None = None
    stream = started = False
    pending = b""

    async def wrapped(message: Message) -> None:
        nonlocal start, stream, started, pending
        if message["type"] == "http.response.start":
            start = message
            stream = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                         for k, v in message.get("headers", []))  # fmt: skip
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        more = bool(message.get("more_body"))
        pending += message.get("body", b"")
        if stream:
            if not started:
                await send(start)
                started = True
            cut = _events_end(pending) if more else len(pending)
            done, pending = pending[:cut], pending[cut:]
            if done or not more:
                await send({"type": "http.response.body", "body": _rewrite_events(done, answers), "more_body": more})
        elif not more:
            body = _rewrite_json(pending, answers)
            kept = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*kept, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})

    return wrapped


def _events_end(data: bytes) -> int:
    """Where the last complete event of an event stream's ``data`` ends (0: none is complete yet)."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _rewrite_message(message: Any, answers: dict[str, Answer]) -> Any:
    if isinstance(message, list):
        return [_rewrite_message(m, answers) for m in message]
    if isinstance(message, dict) and isinstance(message.get("result"), dict):
        answer = answers.get(json.dumps(message.get("id")))
        if answer is not None:
            return {**message, "result": answer(message["result"])}
    return message


def _rewrite_json(body: bytes, answers: dict[str, Answer]) -> bytes:
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    return json.dumps(_rewrite_message(payload, answers)).encode()


def _rewrite_events(body: bytes, answers: dict[str, Answer]) -> bytes:
    """Each ``data:`` line of an event stream that is a JSON-RPC answer in ``answers``, rewritten."""
    out = []
    for line in body.decode("utf-8", errors="surrogateescape").splitlines(keepends=True):
        text = line.rstrip("\r\n")
        if text.startswith("data:"):
            try:
                payload = json.loads(text[5:])
            except ValueError:
                payload = None
            if payload is not None:
                line = "data: " + json.dumps(_rewrite_message(payload, answers)) + line[len(text) :]
        out.append(line)
    return "".join(out).encode("utf-8", errors="surrogateescape")


async def serve(env_id: str, *, host: str, port: int, port_file: Path | None) -> None:
    from inftool_env.asgi import running_asgi
    from inftool_env.registration import default_registry, make

    refuse_bfcl(env_id, default_registry().resolve(env_id).config)  # what the bridge serves is trained on
    env = make(env_id)
    refuse_bfcl(env_id, env.config, env.tasks)  # its tasks too: BFCL's, however the env is named
    bridge = Bridge(env)
    async with running_asgi(bridge_app(bridge), host=host, port=port) as bound:
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(str(bound))
            tmp.replace(port_file)  # readers never see a half-written port
        print(f"inftool: verifiers bridge for {env_id} on http://{host}:{bound}", file=sys.stderr)
        await anyio.sleep_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inftool_env.train.verifiers.bridge")
    parser.add_argument("env_id")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=port, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    args = parser.parse_args(argv)
    try:
        anyio.run(lambda: serve(args.env_id, host=args.host, port=args.port, port_file=args.port_file))
    except InftoolError as exc:
        print(f"inftool: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
