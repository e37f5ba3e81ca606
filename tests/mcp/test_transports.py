"""Every corpus spec, compiled and served, answers tools/list and schema-valid tools/call."""

from __future__ import annotations

import random

import pytest

from inftool_env import load_spec
from inftool_env.spec.sample import sample
from tests.conftest import BOOKSHELF
from tests.mcp.conftest import connect

pytestmark = pytest.mark.anyio
# What a schema-valid call may legitimately answer with on a simulated API: an unknown id.
EXPECTED_ERRORS = ("No ",)


async def test_corpus_spec_over_every_transport(corpus_spec, transport):
    suite = load_spec(corpus_spec)
    async with connect(transport, corpus_spec) as client:
        listed = await client.list_tools()
        assert [t.name for t in listed] == suite.tool_names
        assert listed[0].input_schema == suite.tools[0].input_schema
        ok = 0
        for tool in suite.tools:
            args = sample(tool.input_schema, random.Random(tool.name), optional=0.5)
            outcome = await client.call(tool.name, args)
            if outcome.is_error:
                assert outcome.text.startswith(EXPECTED_ERRORS), (tool.name, outcome.text)
            else:
                ok += 1
                if tool.output_schema is not None:
                    assert outcome.structured is not None
        assert ok > 0


async def test_bookshelf_round_trip_over_every_transport(transport):
    async with connect(transport, BOOKSHELF, seed=3) as client:
        added = await client.call("addBook", {"title": "Kafka am Strand — 海辺のカフカ", "author": "Murakami"})
        assert not added.is_error
        got = await client.call("getBook", {"bookId": added.structured["id"]})
        assert got.structured["title"] == "Kafka am Strand — 海辺のカフカ"
        bad = await client.call("addBook", {"title": ""})
        assert bad.is_error and "Invalid arguments for 'addBook'" in bad.text and "'author' is a required" in bad.text
