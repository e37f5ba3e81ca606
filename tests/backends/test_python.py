from __future__ import annotations

import dataclasses

import anyio
import pytest

from inftool_env import compile_spec, load_suite
from inftool_env.errors import BackendError
from inftool_env.mcp import open_client

pytestmark = pytest.mark.anyio
COUNTER = "python:tests.fixtures.counter:Counter"


def test_tool_docs_from_signatures_and_docstrings():
    suite = load_suite(COUNTER)
    assert suite.tool_names == ["divide", "increment", "label"]
    inc = suite.tool("increment")
    assert inc.description == "Add `by` to the counter."
    assert inc.input_schema["properties"]["by"] == {"type": "integer", "default": 1}
    assert "required" not in inc.input_schema
    label = suite.tool("label").input_schema
    assert label["required"] == ["name"]
    assert label["properties"]["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}


async def test_fresh_instance_per_episode():
    compiled = compile_spec(COUNTER)
    async with open_client(compiled, episode="a") as a, open_client(compiled, episode="b") as b:
        await a.call("increment", {"by": 5})
        assert (await a.call("increment", {})).structured == {"value": 6}
        assert (await b.call("increment", {})).structured == {"value": 1}
    assert compiled.backend.snapshot(compiled.episode_state("a")) == {"history": [5, 1], "value": 6}


@pytest.mark.parametrize(
    "target, message",
    [
        ("python:nope.module:X", "cannot import 'nope.module'"),
        ("python:tests.fixtures.counter:Nope", "has no attribute 'Nope'"),
        ("python:justamodule", "expected MODULE:CLASS"),
    ],
)
def test_bad_python_targets(target, message):
    with pytest.raises(BackendError, match=message):
        compile_spec(target)


def test_only_a_class_with_async_methods_may_suspend():
    assert compile_spec("python:tests.fixtures.sleeper:Sleeper").backend.suspends
    assert not compile_spec(COUNTER).backend.suspends  # its calls run without a cancel scope


async def test_a_plain_def_returning_an_awaitable_is_the_servers_error_not_a_hang():
    # Run without a cancel scope (no async method), its coroutine could not be cut at the call timeout:
    # it is closed, not awaited, and the call is answered at once as the backend's fault.
    compiled = compile_spec("python:tests.fixtures.sleeper:PlainNapper")
    compiled.limits = dataclasses.replace(compiled.limits, call_timeout_s=0.2)
    with anyio.fail_after(5):
        result = await compiled.call("nap", {"seconds": 3600}, compiled.backend.new_state(seed=0))
    assert result.is_error and result.meta["inftool/error_kind"] == "backend"
    assert "PlainNapper.nap is a plain def that returned an awaitable; declare it async def" in result.content[0].text
