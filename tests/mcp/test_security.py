"""HTTP security: bearer token, exact Host/Origin, body size, slow clients, and `inftool serve` itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import anyio
import pytest
from starlette.testclient import TestClient

from inftool_env import compile_spec
from inftool_env.errors import ServerError
from inftool_env.mcp import http_app, open_client, running_http
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.anyio
INFTOOL = [sys.executable, "-m", "inftool_env.cli"]
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_a_token_is_required_when_set():
    compiled = compile_spec(BOOKSHELF)
    async with running_http(compiled, token="s3cret-token") as url:
        with pytest.raises(ServerError, match="cannot connect"):
            async with open_client(url, timeout=10):
                pass
        with pytest.raises(ServerError, match="cannot connect"):
            async with open_client(url, timeout=10, token="wrong"):
                pass
        async with open_client(url, token="s3cret-token", episode="e") as client:
            assert not (await client.call("listBooks", {"limit": 1})).is_error


def test_401_says_bearer():
    app = http_app(compile_spec(BOOKSHELF), token="t0k")
    with TestClient(app, base_url="http://127.0.0.1:8000") as web:
        refused = web.post("/mcp", json=PING, headers=HEADERS)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert web.post("/mcp", json=PING, headers={**HEADERS, "authorization": "Basic t0k"}).status_code == 401
        assert web.post("/mcp", json=PING, headers={**HEADERS, "authorization": "Bearer t0k"}).status_code != 401


@pytest.mark.parametrize(
    "header, value, status",
    [
        ("host", "127.0.0.1:8000", None),
        ("host", "localhost:8000", None),
        ("host", "127.0.0.1:8001", 421),  # another port of this machine: the SDK's "127.0.0.1:*" let it in
        ("host", "127.0.0.1:8000.evil.example", 421),  # and this, by prefix
        ("host", "evil.example:8000", 421),
        ("origin", "http://127.0.0.1:8000", None),
        ("origin", "http://127.0.0.1:8000.evil.example", 403),
        ("origin", "http://evil.example", 403),
    ],
)
def test_hosts_and_origins_match_exactly(header, value, status):
    with TestClient(http_app(compile_spec(BOOKSHELF)), base_url="http://127.0.0.1:8000") as web:
        answer = web.post("/mcp", json=PING, headers={**HEADERS, header: value})
    if status is None:
        assert answer.status_code not in (403, 421), answer.text
    else:
        assert answer.status_code == status


def test_a_server_on_another_address_accepts_that_name_and_the_allowed_ones():
    app = http_app(compile_spec(BOOKSHELF), host="10.1.2.3", allowed_hosts=["gym.internal"])
    with TestClient(app, base_url="http://10.1.2.3:8000") as web:
        for host, allowed in (("10.1.2.3:8000", True), ("gym.internal:8000", True), ("evil.example:8000", False)):
            answer = web.post("/mcp", json=PING, headers={**HEADERS, "host": host})
            assert (answer.status_code != 421) is allowed, host


def test_an_oversized_body_is_refused():
    app = http_app(compile_spec(BOOKSHELF), max_body_bytes=10_000)
    with TestClient(app, base_url="http://127.0.0.1:8000") as web:
        big = {**PING, "params": {"pad": "x" * 20_000}}
        assert web.post("/mcp", content=json.dumps(big), headers=HEADERS).status_code == 413


async def test_slow_clients_are_dropped():
    async with running_http(compile_spec(BOOKSHELF), idle_timeout_s=0.3) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        # Headers that never finish (slowloris), and a body that never comes: both connections end.
        for sent in (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n", _request_head(port, length=100) + b"{"):
            with anyio.fail_after(30):  # a guard against hanging, not a timing assertion
                async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                    await stream.send(sent)
                    received = b""
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
                        while True:
                            received += await stream.receive()
                    assert b"200 OK" not in received


def _request_head(port: int, *, length: int) -> bytes:
    return (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json, text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inftool_serve_takes_a_token_from_the_environment_and_exits_on_sigterm():
    port = free_port()
    env = {**os.environ, "INFTOOL_TOKEN": "from-env"}
    proc = subprocess.Popen(
        [*INFTOOL, "serve", str(BOOKSHELF), "--transport", "http", "--port", str(port), "--quiet"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"

        async def calls() -> tuple[str, bool]:
            for _ in range(200):
                try:
                    async with open_client(url, token="from-env", episode="e") as client:
                        text = (await client.call("listMembers", {"limit": 1})).text
                    break
                except ServerError:
                    await anyio.sleep(0.1)
            else:
                raise AssertionError("server did not come up")
            try:
                async with open_client(url, timeout=10):
                    refused = False
            except ServerError:
                refused = True
            return text, refused

        text, refused = anyio.run(calls)
        assert json.loads(text)[0]["id"].startswith("mem_") and refused
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_inftool_serve_stdio_exits_on_sigterm():
    proc = subprocess.Popen(
        [*INFTOOL, "serve", str(BOOKSHELF)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None and b"serving" in proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM  # the default action: it ends, now
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
