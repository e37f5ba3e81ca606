"""Hostile arguments and faulty backends: a clear isError result with its kind, never a dead connection.

Before: a lone surrogate killed the stdio and HTTP connections in the SDK's writer task (pydantic's
``model_dump_json`` / httpx's JSON encoder), deep nesting escaped as pydantic's ``ValueError``, NaN
was sent as null (stdio) or killed the connection (HTTP), a backend bug was charged to the model,
and a backtracking ``pattern`` ran on the event loop past the call's timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging

import anyio
import pytest

from inftool_env import compile_spec
from inftool_env.mcp import CompiledServer, ServerLimits, StdioCommand, open_client, running_http
from inftool_env.mcp.server import META_ERROR_KIND
from tests.conftest import BOOKSHELF
from tests.mcp._backends import FAULTY_SUITE, Faulty

pytestmark = pytest.mark.anyio
ECHO = "python:tests.mcp._backends:Echo"


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = {
    "lone surrogate": ({"title": "\ud800", "author": "x"}, "schema", "lone surrogate"),
    "surrogate in a key": ({"title": "t", "author": "x", "\udfff": 1}, "schema", "lone surrogate"),
    "surrogate deep inside": ({"title": "t", "author": "x", "tags": [{"a": ["ok", "\udc80"]}]}, "schema", "surrogate"),
    "nested 300 deep": ({"title": nested(300), "author": "x"}, "too_large", "deeper than"),
    "NaN": ({"title": "t", "author": "x", "year": float("nan")}, "schema", "NaN"),
    "Infinity": ({"title": "t", "author": "x", "year": float("inf")}, "schema", "not a JSON number"),
    "a megabyte string": ({"title": "x" * (1 << 20), "author": "x"}, "too_large", "limit"),
    "a list": (["title", "x"], "schema", "must be a JSON object, got an array"),
    "a string": ("title=x", "schema", "must be a JSON object, got a string"),
    "a number": (5, "schema", "must be a JSON object"),
    "a set": ({"title": {"a"}, "author": "x"}, "schema", "set is not a JSON value"),
    "an int key": ({1: "x"}, "schema", "is not a string"),
    "a huge integer": ({"title": "t", "author": "x", "year": 10**2000}, "too_large", "integer"),
}


async def test_hostile_arguments_leave_the_connection_alive(connector, transport):
    async with connector(transport, BOOKSHELF) as client:
        for case, (arguments, kind, says) in HOSTILE.items():
            bad = await client.call("addBook", arguments)
            assert bad.is_error and bad.error_kind == kind and says in bad.text, (case, bad)
            json.dumps(bad.text).encode("utf-8")  # the message itself travels (and is written) as JSON
            good = await client.call("addBook", {"title": case, "author": "Next Call"})
            assert not good.is_error and good.structured["title"] == case


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_the_server_refuses_them_itself(case):
    """What a foreign client (or the in-process env's own calls) hands the server directly."""
    arguments, kind, says = HOSTILE[case]
    compiled = compile_spec(BOOKSHELF)
    result = await compiled.call("addBook", arguments, compiled.episode_state())
    assert result.is_error and result.meta == {META_ERROR_KIND: kind} and says in result.content[0].text
    result.model_dump_json()  # encodable: no transport chokes on it


async def test_a_tool_name_that_is_not_text(connector, transport):
    async with connector(transport, BOOKSHELF) as client:
        for name in ("getBo\ud800k", 42, None):
            out = await client.call(name, {})  # type: ignore[arg-type]
            assert out.is_error and out.error_kind == "unknown_tool"
        assert not (await client.call("listBooks", {"limit": 1})).is_error


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
async def test_a_lone_surrogate_in_a_result_is_replaced_not_fatal(transport):
    target = compile_spec(ECHO) if transport == "inprocess" else StdioCommand.inftool_serve(ECHO)
    async with open_client(target) as client:
        out = await client.call("mojibake", {})
        assert not out.is_error and out.structured == {"text": "caf\ufffd"} and "\ufffd" in out.text
        assert (await client.call("echo", {"text": "still here"})).text == '"still here"'


async def test_a_foreign_clients_escaped_surrogate_over_http_is_a_schema_error():
    """JSON text may spell a lone surrogate as an escape; the HTTP server decodes it, and refuses it."""
    from starlette.testclient import TestClient

    from inftool_env.mcp import http_app

    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "addBook",
            "arguments": {"title": "SURROGATE", "author": "x"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    raw = json.dumps(body).replace("SURROGATE", "\\ud800")
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "addBook",
    }
    with TestClient(http_app(compile_spec(BOOKSHELF)), base_url="http://127.0.0.1:8000") as web:
        answer = web.post("/mcp", content=raw.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    result = json.loads(answer.text.split("data: ")[-1]) if "data: " in answer.text else answer.json()
    assert result["result"]["isError"] is True
    assert result["result"]["_meta"][META_ERROR_KIND] == "schema"


# -- error kinds -------------------------------------------------------------------------------
async def test_every_error_has_its_kind_and_a_backend_bug_is_logged(caplog):
    backend = Faulty()
    compiled = CompiledServer(FAULTY_SUITE, backend)
    for transport in ("inprocess", "http"):
        async with running_http(compiled) if transport == "http" else contextlib.nullcontext(compiled) as target:
            async with open_client(target, episode=f"kinds-{transport}") as client:
                caplog.clear()
                with caplog.at_level(logging.WARNING, logger="inftool_env.mcp.server"):
                    crash = await client.call("crash", {})
                assert crash.is_error and crash.error_kind == "backend" and "not a problem with the call" in crash.text
                assert caplog.records and caplog.records[0].exc_info is not None  # the traceback, server side
                assert (await client.call("refuse", {})).error_kind == "execution"
                assert (await client.call("crush", {})).error_kind == "unknown_tool"
                assert (await client.call("nap", {"seconds": "x"})).error_kind == "schema"
                ok = await client.call("nap", {"seconds": 0})
                assert not ok.is_error and ok.error_kind is None


async def test_a_python_backends_own_exception_is_the_tools_answer():
    """BFCL's API classes raise on misuse and BFCL shows the model the error: kind "execution"."""
    async with open_client(compile_spec("python:tests.fixtures.counter:Counter")) as client:
        out = await client.call("divide", {"divisor": 0})
    assert out.error_kind == "execution" and out.text == "divide failed: ZeroDivisionError: division by zero"


async def test_a_hung_call_times_out_and_its_work_is_cancelled():
    backend = Faulty()
    compiled = CompiledServer(FAULTY_SUITE, backend, limits=ServerLimits(call_timeout_s=0.2))
    async with running_http(compiled) as url, open_client(url, episode="hung") as client:
        out = await client.call("nap", {"seconds": 60})
        assert out.is_error and out.error_kind == "timeout" and "0.2 s" in out.text
        assert (backend.started, backend.cancelled, backend.finished) == (1, 1, 0)
        # A client may ask for less than the server's own limit.
        compiled.limits = ServerLimits(call_timeout_s=None)
        out = await client.call("nap", {"seconds": 60}, timeout=0.1)
        assert out.error_kind == "timeout" and backend.cancelled == 2
        assert (await client.call("nap", {"seconds": 0})).text == '"slept"'


async def test_a_backtracking_pattern_neither_blocks_the_loop_nor_outlives_the_timeout():
    backend = Faulty()
    compiled = CompiledServer(FAULTY_SUITE, backend, limits=ServerLimits(call_timeout_s=1.0))
    finished: list[str] = []
    async with open_client(compiled, episode="regex") as client:

        async def slow() -> None:
            out = await client.call("match", {"code": "a" * 40 + "!"})
            assert out.is_error and out.error_kind == "timeout", out
            finished.append("slow")

        async def quick() -> None:
            await anyio.sleep(0.05)  # let the slow check start first
            assert not (await client.call("nap", {"seconds": 0})).is_error
            finished.append("quick")

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            tg.start_soon(quick)
        # With `re` on the event loop, the quick call waited behind the slow check (and that ran on).
        assert finished == ["quick", "slow"]
        good = await client.call("match", {"code": "aaaa"})
        assert not good.is_error
        bad = await client.call("match", {"code": "ab"})
        assert bad.error_kind == "schema" and "does not match" in bad.text
