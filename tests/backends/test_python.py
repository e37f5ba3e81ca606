from __future__ import annotations

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
