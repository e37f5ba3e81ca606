"""Model endpoint faults against a real local HTTP server (raw sockets, no mocks of the client): 5xx,
429 with ``Retry-After``, connections reset before or during a response. Retried with backoff,
bounded in tries and time, then a ``PolicyError`` on that episode's trajectory only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from inftool_env.env import EnvConfig, ServerConfig, TaskSource, ToolEnv, run_batch
from inftool_env.errors import PolicyError
from inftool_env.llm.openai_chat import OpenAIChat, retry_after
from inftool_env.policies import close_policy, resolve_policy
from inftool_env.tasks import Task
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.anyio
COMPLETION = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}  # fmt: skip
CHUNK = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [
    {"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}  # fmt: skip


def response(status: int, body: bytes, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> bytes:  # fmt: skip
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
            "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# "reset", "cut" / "cut-chunked" (mid-stream), "ok", a status, (status, headers)
Step = str | int | tuple[int, dict[str, str]]


class Endpoint:
    """An OpenAI-compatible ``/chat/completions`` on a real socket that plays ``script`` one request at a
    time (then answers), or decides per request with ``decide(body)``."""

    def __init__(self, script: list[Step] | None = None, decide: Callable[[dict], Step] | None = None) -> None:
        self.script, self.decide = list(script or []), decide
        self.arrivals: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)  # fmt: skip
            body = json.loads(await reader.readexactly(length)) if length else {}
            self.arrivals.append(time.monotonic())
            step = self.decide(body) if self.decide else (self.script.pop(0) if self.script else "ok")
            if step == "reset":
                writer.transport.abort()  # RST: the connection drops before any answer
                return
            if step in ("cut", "cut-chunked"):  # headers and half a stream, then the connection drops
                framing = "Transfer-Encoding: chunked\r\n" if step == "cut-chunked" else ""
                part = b'20\r\ndata: {"id"' if step == "cut-chunked" else b'data: {"id"'
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{framing}\r\n".encode() + part)
                await writer.drain()
                writer.transport.abort()
                return
            if step == "ok":
                if body.get("stream"):
                    sse = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n".encode()
                    writer.write(response(200, sse, content_type="text/event-stream"))
                else:
                    writer.write(response(200, json.dumps(COMPLETION).encode()))
            else:
                status, headers = step if isinstance(step, tuple) else (step, {})
                writer.write(response(status, json.dumps({"error": {"message": f"status {status}"}}).encode(), headers))
            await writer.drain()
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        finally:
            server.close()
            await server.wait_closed()


async def ask(url: str, **options: object) -> str:
    async with OpenAIChat(url, "m", **options) as chat:  # type: ignore[arg-type]
        return (await chat.complete([{"role": "user", "content": "hi"}])).message["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_resets_429s_and_5xxs_are_retried_until_an_answer(stream):
    faults: list[Step] = ["reset", 429, 500, (503, {"Retry-After": "0"}), 502, 504]
    if stream:
        faults += ["cut", "cut-chunked"]
    endpoint = Endpoint(faults)
    async with endpoint.serving() as url:
        assert await ask(url, backoff_s=0.001, max_retries=len(faults), stream=stream) == "ok"
    assert len(endpoint.arrivals) == len(faults) + 1


async def test_retry_after_is_honoured():
    endpoint = Endpoint([(429, {"retry-after-ms": "300"}), (503, {"Retry-After": "0.2"})])
    async with endpoint.serving() as url:
        assert await ask(url, backoff_s=0.0) == "ok"
    first, second, third = endpoint.arrivals
    assert second - first >= 0.3 and third - second >= 0.2  # never sooner than the server asked


def test_retry_after_reads_seconds_milliseconds_and_dates():
    import httpx2

    def error(**headers: str) -> Exception:
        resp = httpx2.Response(429, headers=headers, request=httpx2.Request("POST", "http://x"))
        return __import__("openai").RateLimitError("slow down", response=resp, body=None)

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after(error(**{"Retry-After": "7"})) == 7.0
    assert retry_after(error(**{"retry-after-ms": "1500", "Retry-After": "9"})) == 1.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after(error(**{"Retry-After": later}), now=now.timestamp()) == pytest.approx(30.0)
    assert retry_after(error(**{"Retry-After": "soon"})) is None and retry_after(error()) is None
    assert retry_after(ValueError("no response")) is None


async def test_tries_and_time_are_bounded():
    down = Endpoint([503] * 10)
    async with down.serving() as url:
        with pytest.raises(PolicyError, match=r"InternalServerError after 3 tries in [\d.]+s"):
            await ask(url, backoff_s=0.001, max_retries=2)
    assert len(down.arrivals) == 3
    patient = Endpoint([(429, {"Retry-After": "3600"})])
    async with patient.serving() as url:
        with pytest.raises(PolicyError, match=r"asks for 3600s more would pass the retry budget \(60s\)"):
            await ask(url, retry_budget_s=60)
    assert len(patient.arrivals) == 1  # gave up at once rather than sleep an hour or retry early
    refused = Endpoint([400])
    async with refused.serving() as url:
        with pytest.raises(PolicyError, match="BadRequestError"):
            await ask(url, backoff_s=0.001)
    assert len(refused.arrivals) == 1  # a bad request is not retried


async def test_an_unreachable_endpoint_is_a_policy_error_naming_it():
    endpoint = Endpoint()
    async with endpoint.serving() as url:
        pass  # closed: nothing listens there any more
    with pytest.raises(PolicyError, match=rf"{url}: APIConnectionError after 2 tries"):
        await ask(url, backoff_s=0.001, max_retries=1)


async def test_an_endpoint_fault_is_recorded_on_that_trajectory_only():
    from inftool_env import compile_spec

    tasks = [Task(id=f"t{i}", turns=["POISON" if i == 1 else f"hello {i}"]) for i in range(3)]
    config = EnvConfig(id="test/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                       tasks=TaskSource(source="-"))  # fmt: skip
    env = ToolEnv(config, tasks, {"shelf": compile_spec(BOOKSHELF)})
    endpoint = Endpoint(decide=lambda body: 500 if "POISON" in json.dumps(body) else "ok")
    async with endpoint.serving() as url:
        policy = resolve_policy(f"openai:{url}#m?retries=2")
        policy.chat.backoff_s = 0.001
        trajectories = await run_batch(env, policy, episodes=[(i, f"t{i}") for i in range(3)], concurrency=3)
        await close_policy(policy)
    await env.close()
    assert [t.task_id for t in trajectories] == ["t0", "t1", "t2"]
    assert [t.error is None for t in trajectories] == [True, False, True]
    broken = trajectories[1]
    assert broken.error.startswith(f"PolicyError: {url}: InternalServerError after 3 tries")
    assert broken.truncated and broken.truncation_reason == "policy_error"
    assert all(t.terminated for t in (trajectories[0], trajectories[2]))
