"""What ``bench_soak.py`` runs against: a tool backend that can hang, and a model endpoint that fails.

- ``Soak`` (served as ``python:bench._soak_fixtures:Soak``): ``echo``, ``nap`` (sleeps as long as it is
  told: past the call timeout it is a hung tool, which the server must cancel — ``Soak.napping`` counts
  the naps still running in this process) and ``whoami`` (the serving process's pid).
- The endpoint (``python bench/_soak_fixtures.py``, prints its port): an OpenAI-compatible
  ``/v1/chat/completions`` on a raw asyncio HTTP/1.1 server, so it can fail the way real ones do — a
  500, a 429 with ``Retry-After``, a connection reset (RST), a 503 on every try. The first user message
  names the episode's scenario; the number of assistant messages so far picks the step of its script.
  A request is keyed by its body: the endpoint fails the first try and answers the retry (it records
  how long the client waited). For ``killed_server`` it SIGKILLs the stdio server whose pid the
  ``whoami`` result holds. ``GET /stats`` reports what it injected.

Replies are tool calls in the request's own mode: ``tool_calls`` when the request offers ``tools``,
else Hermes ``<tool_call>`` text. Garbage is sent raw: arguments that are not JSON, NaN, an unclosed
tag, 1 MB of text, lone surrogates (as JSON escapes, so they survive the wire), 300 levels of nesting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import time
from collections import Counter
from typing import Any

import anyio

# -- the backend -------------------------------------------------------------------------------------


class Soak:
    napping = 0  # naps in progress in this process: a hung call the server cut must not go on

    def echo(self, what: str) -> str:
        """Give the argument back."""
        return what

    async def nap(self, seconds: float) -> str:
        """Sleep this many seconds, then say so."""
        Soak.napping += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            Soak.napping -= 1
        return f"slept {seconds}s"

    def whoami(self) -> int:
        """The pid of the process serving this tool."""
        return os.getpid()


class Stubborn(Soak):
    """``Soak`` plus a tool that ignores the server's timeout: a truly hung server, as the env sees it
    (for ``tests/soak/test_soak_findings.py``)."""

    async def stubborn(self, seconds: float) -> str:
        """Sleep this many seconds, shielded from cancellation."""
        with anyio.CancelScope(shield=True):
            await anyio.sleep(seconds)
        return f"slept {seconds}s regardless"


# -- scenarios -----------------------------------------------------------------------------------------
HUNG_NAP_S = 60.0  # far past any call timeout the bench sets
RETRY_AFTER_S = 1  # the 429's Retry-After, whole seconds as HTTP says
BIG_TEXT = 1024 * 1024
DEEP = 300

# Faults injected by the endpoint on the first try of an episode's first request.
HTTP_FAULTS = ("http_5xx", "http_429", "conn_reset")
# Steps: ("call", name, raw JSON arguments[, content]) or ("text", content). An episode's script ends
# with a plain answer, which ends the episode (the scripted user has one turn).
AFTER = ("call", "echo", '{"what": "after"}')  # the connection still works after the fault
DONE = ("text", "done")
SCRIPTS: dict[str, list[tuple[str, ...]]] = {
    "ok": [("call", "echo", '{"what": "hi"}'), DONE],
    "hung_tool": [("call", "nap", json.dumps({"seconds": HUNG_NAP_S})), AFTER, DONE],
    "killed_server": [("call", "whoami", "{}"), ("kill", "echo", '{"what": "after the kill"}'), DONE],
    "http_5xx": [AFTER, DONE],
    "http_429": [AFTER, DONE],
    "conn_reset": [AFTER, DONE],
    "endpoint_down": [AFTER, DONE],
    "garbage_json": [
        ("call", "echo", '{"what": "unterminated'),
        ("call", "echo", '{"what": NaN}'),
        ("call", "echo", "[1, 2"),
        AFTER,
        DONE,
    ],
    "unterminated_tag": [("text", '<tool_call>\n{"name": "echo", "arguments": {"what": "x"}}'), AFTER, DONE],
    "huge_text": [("call", "echo", '{"what": "big"}', "x" * BIG_TEXT), AFTER, DONE],
    "lone_surrogate": [  # escaped in the arguments' JSON, raw in them, and raw in the content
        ("call", "echo", json.dumps({"what": "a\ud800b"}), "half a pair: \udc00"),
        ("call", "echo", json.dumps({"what": "c\udfffd"}, ensure_ascii=False)),
        AFTER,
        DONE,
    ],
    "deep_nesting": [("call", "echo", '{"what": ' + "[" * DEEP + "]" * DEEP + "}"), AFTER, DONE],
}
SCENARIOS = tuple(SCRIPTS)
_SCENARIO = re.compile(r"soak scenario=(\w+) ")


def task_text(scenario: str, name: str) -> str:
    """The episode's opening user message: its scenario, and a name that makes its requests unique."""
    return f"soak scenario={scenario} episode={name}"


# -- the endpoint --------------------------------------------------------------------------------------
class Endpoint:
    def __init__(self) -> None:
        self.tries: Counter[str] = Counter()  # body digest -> requests seen
        self.faulted_at: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.retry_waits: dict[str, list[float]] = {k: [] for k in HTTP_FAULTS}

    def respond(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body), or None to reset the connection."""
        if method == "GET" and path == "/stats":
            stats = {"counts": dict(self.stats), "retry_waits": self.retry_waits}
            return 200, {}, json.dumps(stats).encode()
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, {}, b'{"error": {"message": "not found"}}'
        request = json.loads(body)
        messages = request["messages"]
        opening = next((m["content"] for m in messages if m["role"] == "user"), "")
        found = _SCENARIO.search(opening + " ")
        scenario = found.group(1) if found else "ok"
        step = sum(1 for m in messages if m["role"] == "assistant")
        digest = hashlib.sha1(body).hexdigest()  # noqa: S324 - a key, not a secret
        self.tries[digest] += 1
        self.stats["requests"] += 1
        first_try = self.tries[digest] == 1
        if step == 0 and first_try:
            self.stats[f"episodes:{scenario}"] += 1
        if scenario == "endpoint_down":
            self.stats["endpoint_down"] += 1
            return 503, {}, b'{"error": {"message": "down for the soak"}}'
        if scenario in HTTP_FAULTS and step == 0:
            if first_try:
                self.stats[scenario] += 1
                self.faulted_at[digest] = time.monotonic()
                if scenario == "conn_reset":
                    return None
                if scenario == "http_429":
                    return 429, {"Retry-After": str(RETRY_AFTER_S)}, b'{"error": {"message": "slow down"}}'
                return 500, {}, b'{"error": {"message": "internal error for the soak"}}'
            if self.tries[digest] == 2:
                self.retry_waits[scenario].append(time.monotonic() - self.faulted_at[digest])
        script = SCRIPTS.get(scenario, SCRIPTS["ok"])
        move = script[min(step, len(script) - 1)]
        if move[0] == "kill" and first_try:
            self.stats["killed_server"] += self._kill(messages)
        message = _message(move, native=bool(request.get("tools")), step=step)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        reply = {
            "id": f"soak-{digest[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "soak"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": len(body) // 4, "completion_tokens": 8, "total_tokens": len(body) // 4 + 8},
        }  # fmt: skip
        return 200, {}, json.dumps(reply).encode()  # ASCII: lone surrogates travel as \udXXX escapes

    def _kill(self, messages: list[dict[str, Any]]) -> int:
        """SIGKILL the stdio server whose pid the last tool result holds; 1 if it died."""
        text = next((m.get("content") or "" for m in reversed(messages) if m["role"] == "tool"), "")
        try:
            pid = int(json.loads(text))
        except (ValueError, TypeError):
            return 0
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ")
        except OSError:
            return 0
        if b"inftool_env.cli serve" not in command or pid in (os.getpid(), os.getppid()):
            return 0  # only ever a stdio server of the bench's
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.01)  # dead (a zombie until its parent reaps it) before the reply goes out
        return 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _message(move: tuple[str, ...], *, native: bool, step: int) -> dict[str, Any]:
    if move[0] == "text":
        return {"role": "assistant", "content": move[1]}
    name, arguments = move[1], move[2]
    content = move[3] if len(move) > 3 else ""
    if native:
        call = {"id": f"call_{step}", "type": "function", "function": {"name": name, "arguments": arguments}}
        return {"role": "assistant", "content": content, "tool_calls": [call]}
    tagged = f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'
    return {"role": "assistant", "content": f"{content}\n{tagged}" if content else tagged}


async def _serve_connection(endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, path, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                key, _, value = header.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = endpoint.respond(method, path, body)
            if answer is None:  # a reset: RST, not FIN
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            status, extra, payload = answer
            reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
                      503: "Service Unavailable"}[status]  # fmt: skip
            head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                    f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in extra.items())]  # fmt: skip
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


async def serve_endpoint(port: int = 0) -> None:
    endpoint = Endpoint()
    server = await asyncio.start_server(lambda r, w: _serve_connection(endpoint, r, w), "127.0.0.1", port,
                                        backlog=4096, limit=1 << 20)  # fmt: skip
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve_endpoint(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
