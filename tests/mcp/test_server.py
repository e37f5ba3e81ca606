from __future__ import annotations

import json
import logging

import anyio
import pytest

from inftool_env import compile_spec, load_spec
from inftool_env.backends import StatefulBackend
from inftool_env.backends.python import PythonBackend, suite_from_class
from inftool_env.errors import ServerError
from inftool_env.mcp import CompiledServer, ServerLimits, StdioCommand, new_episode_id, open_client, running_http
from inftool_env.mcp import server as server_module
from tests.conftest import BOOKSHELF
from tests.mcp._backends import FAULTY_SUITE, Faulty

COUNTER = "python:tests.fixtures.counter:Counter"

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


async def test_a_refusal_is_what_the_call_answers_and_the_state_is_untouched():
    """``check`` tells a call the server refuses before running it (a checker lines such calls up
    without a state) by the very result ``call`` gives; a call that would run gets a ``Checked``, and one
    whose checks would run in a thread None."""
    server = compile_spec(BOOKSHELF)
    state = server.backend.new_state(seed=0)
    before = server.backend.snapshot(state)
    deep: dict = {}
    for _ in range(80):
        deep = {"x": deep}
    for name, arguments in (
        ("getBok", {"bookId": "x"}),  # unknown
        ("addBook", {"title": 3, "year": 99}),  # invalid
        ("addBook", "a title"),  # not an object
        ("addBook", {"title": "t", "author": "a", "meta": deep}),  # refused: too deep
    ):
        refused = server.check(name, arguments)
        assert refused is not None and not isinstance(refused, server_module.Checked), (name, arguments)
        assert refused.is_error, (name, arguments)
        assert refused == await server.call(name, arguments, state), (name, arguments)
    assert server.backend.snapshot(state) == before
    assert isinstance(server.check("getBook", {"bookId": "b1"}), server_module.Checked)
    slow = CompiledServer(FAULTY_SUITE, Faulty())
    assert slow.check("match", {"code": "b"}) is None  # a pattern's check runs in a thread: not told here
    assert slow.check("match", {}) is None


async def test_a_call_check_passed_runs_without_its_checks_and_answers_as_call_does(monkeypatch):
    """A ``Checked`` (``check``'s answer where the checks ran here and passed), handed back to ``call_text``
    with the same arguments, runs that call with no second check, and it answers as ``call``."""
    server = compile_spec(BOOKSHELF)
    checks: list[str] = []
    argument_errors = server._argument_errors
    monkeypatch.setattr(server, "_argument_errors", lambda t, a: checks.append(t.name) or argument_errors(t, a))
    arguments = {"title": "Dune", "author": "Frank Herbert", "year": 1965}
    checked = server.check("addBook", arguments)
    assert isinstance(checked, server_module.Checked) and checked.tool.name == "addBook"
    assert checks == ["addBook"]
    state, twin = server.backend.new_state(seed=0), server.backend.new_state(seed=0)
    text = await server.call_text("addBook", arguments, state, checked=checked)
    assert checks == ["addBook"]  # not checked again
    assert text == server_module.result_text(await server.call("addBook", arguments, twin))
    assert server.backend.snapshot(state) == server.backend.snapshot(twin)
    assert checks == ["addBook", "addBook"]  # a call without one is checked


async def test_a_call_the_backend_refuses_reads_alike_as_text_and_as_an_mcp_result():
    """``call_text`` reads a backend's refusal (``ToolCallError``) without building the MCP result: the same
    text ``call`` gives, and ``call`` still gives an ``isError`` result of kind ``execution``."""
    server = compile_spec("python:tests.fixtures.counter:Counter")
    state = server.backend.new_state(seed=0)
    failed = await server.call("divide", {"divisor": 0}, state)
    assert failed.is_error and failed.meta == {server_module.META_ERROR_KIND: "execution"}
    assert await server.call_text("divide", {"divisor": 0}, state) == server_module.result_text(failed)
    assert server_module.result_text(failed) == "divide failed: ZeroDivisionError: division by zero"


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


@pytest.mark.parametrize("c_encoder", [True, False], ids=["c-encoder", "json.dumps"])
def test_a_results_text_is_json_dumps_own_and_so_are_its_errors(monkeypatch, c_encoder):
    """Results are written by one C encoder made once (json_text), or json.dumps where Python has none:
    the same text, and the same errors for what JSON cannot hold."""
    if not c_encoder:
        monkeypatch.setattr(server_module, "_C_ENCODE", None)
    keys = {1: "int key", False: "bool key", None: "none", 2.5: "float key"}
    values = [{"a": 1.5, "b": [True, None, "é\u2028\ud800", 10**30, -0.0, 1e-7, 1e300]}, "text", 3, 2.5, None, [],
              {}, keys, [[[]], [{"x": {"y": [1]}}]]]  # fmt: skip
    for value in values:
        assert server_module.json_text(value) == json.dumps(value, ensure_ascii=False, allow_nan=False)
    for bad in (float("nan"), {"a": float("inf")}, {"a": object()}, {(1, 2): "tuple key"}):
        with pytest.raises((TypeError, ValueError)) as official:
            json.dumps(bad, ensure_ascii=False, allow_nan=False)
        with pytest.raises(official.type, match=str(official.value)):
            server_module.json_text(bad)
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises((RecursionError, ValueError)):  # RecursionError from the C encoder: no cycle check
        server_module.json_text(cycle)


def test_output_is_valid_json_text():
    async def go() -> str:
        async with open_client(compile_spec(BOOKSHELF)) as c:
            return (await c.call("listBooks", {"limit": 1})).text

    assert isinstance(json.loads(anyio.run(go)), list)


# -- episodes ------------------------------------------------------------------------------------
async def test_end_episode_over_every_transport(connector, transport):
    episode = new_episode_id()
    async with connector(transport, BOOKSHELF, episode=episode) as client:
        before = (await client.call("listBooks", {"limit": 50})).structured["result"]
        await client.call("addBook", {"title": "Mine", "author": "Me"})
        assert await client.end_episode() is True
        assert await client.end_episode() is False  # nothing left to end
        after = (await client.call("listBooks", {"limit": 50})).structured["result"]
        assert after == before  # a fresh episode: the seed state again


def test_episode_ids_are_unguessable_and_unique():
    ids = {new_episode_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_at_capacity_a_new_episode_is_refused_and_no_live_one_is_evicted():
    compiled = CompiledServer(FAULTY_SUITE, Faulty(), limits=ServerLimits(max_episodes=2))
    async with open_client(compiled) as c:
        a, b, extra = (c.for_episode(k) for k in ("a", "b", "c"))
        await a.call("store", {"value": "kept"})
        await b.call("store", {"value": "b"})
        refused = await extra.call("store", {"value": "c"})
        assert refused.is_error and refused.error_kind == "capacity" and "end one" in refused.text
        assert (await a.call("store", {"value": "again"})).structured == {"stored": 2}  # a lives on
        assert await b.end_episode()
        assert (await extra.call("store", {"value": "c"})).structured == {"stored": 1}
    with pytest.raises(ServerError, match="live episodes"):
        compiled.episode_state("d")
    assert compiled.end_episode("a") and compiled.live_episodes == 1


async def test_idle_episodes_expire_and_say_so(caplog):
    compiled = CompiledServer(FAULTY_SUITE, Faulty(), limits=ServerLimits(episode_ttl_s=0.0))
    async with open_client(compiled, episode="old") as c:
        await c.call("store", {"value": "x"})
        with caplog.at_level(logging.INFO, logger="inftool_env.mcp.server"):
            await c.for_episode("new").call("store", {"value": "y"})
    assert compiled.live_episodes == 1
    assert any("episode old released after" in r.getMessage() for r in caplog.records)


async def test_an_episodes_state_is_bounded():
    limits = ServerLimits(max_state_bytes=5_000)
    compiled = CompiledServer(FAULTY_SUITE, Faulty(), limits=limits)
    async with open_client(compiled, episode="grows") as c:
        outcomes = [await c.call("store", {"value": "x" * 1000}) for _ in range(8)]
        kinds = [o.error_kind for o in outcomes]
        assert kinds[:4] == [None] * 4 and kinds[-1] == "too_large", kinds
        assert "over the server's 5,000-byte limit" in outcomes[-1].text
        assert await c.end_episode() and not (await c.call("store", {"value": "x"})).is_error  # a fresh start
        other = await c.for_episode("small").call("store", {"value": "fine"})
        assert not other.is_error
        huge = c.for_episode("huge", initial_state={"values": ["y" * 10_000]})
        assert (await huge.call("store", {"value": "z"})).error_kind == "too_large"


async def test_a_call_naming_no_episode_shares_the_default_only_off_http():
    compiled = compile_spec(COUNTER)
    async with open_client(compiled) as c:
        await c.call("increment", {"by": 5})
        assert (await c.call("increment", {})).structured == {"value": 6}  # one default episode
    async with running_http(compiled) as url, open_client(url) as c:
        await c.call("increment", {"by": 5})
        assert (await c.call("increment", {})).structured == {"value": 1}  # each call a throwaway state
    assert compiled.live_episodes == 0


# -- results -------------------------------------------------------------------------------------
class Series:
    """A lookup whose result is large (a thousand floats), as BFCL's long-context stock lookup's is."""

    def series(self, start: float, as_ints: bool = False) -> dict[str, list[float] | list[int]]:
        """Prices from ``start``, a unit apart: whole numbers, as floats or (``as_ints``) as ints."""
        values = [start + i for i in range(1000)]
        return {"values": [int(v) for v in values] if as_ints else values}


async def test_a_large_result_is_written_once_and_only_the_same_values_share_its_text(monkeypatch):
    server = CompiledServer(suite_from_class(Series), PythonBackend(Series))
    state = server.backend.new_state(seed=0)
    written: list[str] = []
    real = server_module.json_text

    def counted(value: object) -> str:
        written.append(text := real(value))
        return text

    monkeypatch.setattr(server_module, "json_text", counted)

    async def text(**arguments: object) -> str:
        result = await server.call("series", arguments, state)
        assert not result.is_error
        return result.content[0].text

    calls = [{"start": 1.0}, {"start": 1.0}, {"start": 1.0}, {"start": 2.0}, {"start": 1.0, "as_ints": True}]
    texts = [await text(**arguments) for arguments in calls]
    assert texts[0] == texts[1] == texts[2] == json.dumps(Series().series(1.0), ensure_ascii=False)
    assert len(written) == 4  # the first two (the tool seen large at the first), then each other value once
    assert texts[3] != texts[0] and json.loads(texts[3])["values"][0] == 2.0
    # Equal by == to the floats' result (1 == 1.0), yet another JSON text: not the floats' kept one.
    assert texts[4] == json.dumps(Series().series(1.0, as_ints=True), ensure_ascii=False) != texts[0]
    server.forget_results()
    await text(start=1.0)
    assert len(written) == 5
    monkeypatch.setattr(server_module, "KEPT_RESULT_BYTES", 200_000)  # room for about a dozen
    for start in range(40):
        await text(start=float(start))
    assert 0 < server._texts_bytes <= 200_000 and 5 < len(server._texts) < 15
