from __future__ import annotations

import json

import anyio
import pytest

from inftool_env import compile_spec, load_spec
from inftool_env.backends import StatefulBackend
from inftool_env.errors import ServerError
from inftool_env.mcp import CompiledServer, StdioCommand, open_client
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.anyio


async def test_unknown_tool_is_an_error_result_with_a_suggestion():
    async with open_client(compile_spec(BOOKSHELF)) as client:
        out = await client.call("getBok", {"bookId": "x"})
    assert out.is_error
    assert "Unknown tool 'getBok'. Did you mean 'getBook'?" in out.text


async def test_invalid_arguments_name_every_problem_and_where():
    async with open_client(compile_spec(BOOKSHELF)) as client:
        out = await client.call("addBook", {"title": 3, "year": 99, "colour": "red"})
    assert out.is_error
    assert "at 'title': 3 is not of type 'string'" in out.text
    assert "at 'year': 99 is less than the minimum of 1450" in out.text
    assert "'author' is a required property" in out.text
    assert "'colour' was unexpected" in out.text


async def test_a_backend_exception_is_an_observation_not_a_crash():
    compiled = compile_spec("python:tests.fixtures.counter:Counter")
    async with open_client(compiled) as client:
        out = await client.call("divide", {"divisor": 0})
        assert out.is_error and out.text == "divide failed: ZeroDivisionError: division by zero"
        assert not (await client.call("increment", {"by": 2})).is_error  # the server lives on


async def test_annotations_follow_http_methods():
    async with open_client(compile_spec(BOOKSHELF)) as client:
        tools = {t.name: t.annotations for t in await client.list_tools()}
    assert tools["listBooks"]["read_only_hint"] is True
    assert tools["removeBook"]["destructive_hint"] is True and tools["removeBook"]["idempotent_hint"] is True
    assert tools["addBook"]["destructive_hint"] is False


async def test_episodes_on_one_server_are_isolated():
    compiled = compile_spec(BOOKSHELF)
    async with open_client(compiled, episode="a") as a, open_client(compiled, episode="b") as b:
        book = await a.call("addBook", {"title": "Only in A", "author": "x"})
        assert not (await a.call("getBook", {"bookId": book.structured["id"]})).is_error
        seen_by_b = await b.call("listBooks", {"author": "x"})
        assert seen_by_b.structured == {"result": []}


async def test_many_concurrent_episodes_see_only_their_own_writes():
    compiled = compile_spec(BOOKSHELF)

    async def episode(i: int) -> None:
        async with open_client(compiled, episode=f"ep{i}", seed=i) as c:
            await c.call("addBook", {"title": f"book {i}", "author": f"author {i}"})
            await anyio.sleep(0)
            listed = await c.call("listBooks", {"limit": 50})
            mine = [b for b in listed.structured["result"] if b["author"].startswith("author ")]
            assert [b["title"] for b in mine] == [f"book {i}"]

    async with anyio.create_task_group() as tg:
        for i in range(64):
            tg.start_soon(episode, i)


async def trace(seed: int) -> list[str]:
    async with open_client(compile_spec(BOOKSHELF), episode="e", seed=seed) as c:
        calls = [
            ("listBooks", {}),
            ("addBook", {"title": "T", "author": "A"}),
            ("listMembers", {"limit": 2}),
            ("registerMember", {"name": "N", "email": "n@example.com"}),
            ("getBook", {"bookId": "boo_1"}),
        ]
        return [(await c.call(name, args)).text for name, args in calls]


async def test_same_seed_same_calls_replay_byte_for_byte():
    assert await trace(11) == await trace(11)
    assert await trace(11) != await trace(12)


async def test_initial_state_via_meta_and_snapshot():
    suite = load_spec(BOOKSHELF)
    backend = StatefulBackend(suite)
    compiled = CompiledServer(suite, backend)
    initial = {"collections": {"/books": {"b1": {"id": "b1", "title": "Seeded", "author": "Me"}}}, "next_id": 5}
    async with open_client(compiled, episode="x", initial_state=initial) as c:
        got = await c.call("getBook", {"bookId": "b1"})
        assert got.structured["title"] == "Seeded"
        await c.call("removeBook", {"bookId": "b1"})
    assert backend.snapshot(compiled.episode_state("x"))["collections"]["/books"] == {}


async def test_unreachable_servers_are_server_errors():
    with pytest.raises(ServerError, match="cannot connect"):
        async with open_client(StdioCommand("/bin/false")):
            pass
    with pytest.raises(ServerError, match="cannot connect"):
        async with open_client("http://127.0.0.1:9/mcp", timeout=5):
            pass


def test_output_is_valid_json_text():
    async def go() -> str:
        async with open_client(compile_spec(BOOKSHELF)) as c:
            return (await c.call("listBooks", {"limit": 1})).text

    assert isinstance(json.loads(anyio.run(go)), list)
