from __future__ import annotations

import pytest

from inftool_env import compile_spec, load_spec
from inftool_env.backends import StatefulBackend
from inftool_env.mcp import open_client
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.anyio


async def test_crud_lifecycle_and_nested_collections():
    async with open_client(compile_spec(BOOKSHELF, seed=1)) as c:
        seeded = (await c.call("listBooks", {})).structured["result"]
        assert len(seeded) == 3  # collections start seeded, from the episode's rng
        book = (await c.call("addBook", {"title": "Dune", "author": "Herbert", "genre": "fiction"})).structured
        assert book["copies"] == 1  # the schema's default, applied as a server would
        updated = await c.call("updateBook", {"bookId": book["id"], "copies": 4})
        assert updated.structured["copies"] == 4 and updated.structured["title"] == "Dune"
        again = await c.call("getBook", {"bookId": book["id"]})
        assert again.structured == updated.structured  # reads are stable

        member = (await c.call("registerMember", {"name": "Ann", "email": "ann@example.com"})).structured
        loan = await c.call("borrowBook", {"memberId": member["id"], "bookId": book["id"], "due": "2025-01-31"})
        assert loan.structured["due"] == "2025-01-31"
        loans = await c.call("listLoans", {"memberId": member["id"]})
        assert [x["id"] for x in loans.structured["result"]] == [loan.structured["id"]]
        orphan = await c.call("listLoans", {"memberId": "mem_999"})
        assert orphan.is_error and orphan.text == "No members with memberId='mem_999'."

        await c.call("removeBook", {"bookId": book["id"]})
        gone = await c.call("getBook", {"bookId": book["id"]})
        assert gone.is_error and gone.text.startswith(f"No books with bookId='{book['id']}'.")


async def test_filters_and_paging():
    async with open_client(compile_spec(BOOKSHELF)) as c:
        for i in range(5):
            await c.call("addBook", {"title": f"T{i}", "author": "Same", "genre": "poetry"})
        page = await c.call("listBooks", {"author": "Same", "limit": 2, "offset": 1})
        assert [b["title"] for b in page.structured["result"]] == ["T1", "T2"]
        none = await c.call("listBooks", {"author": "Nobody"})
        assert none.structured == {"result": []}


def test_state_is_json_and_seeded():
    suite = load_spec(BOOKSHELF)
    backend = StatefulBackend(suite)
    a, b = backend.new_state(seed=5), backend.new_state(seed=5)
    assert backend.snapshot(a) == backend.snapshot(b)
    assert backend.snapshot(a) != backend.snapshot(backend.new_state(seed=6))
    assert set(backend.snapshot(a)["collections"]) == {"/books", "/members"}


async def test_integer_ids_follow_the_record_schema():
    spec = {
        "openapi": "3.0.0",
        "info": {"title": "Pets", "version": "1"},
        "paths": {
            "/pets": {
                "post": {
                    "operationId": "addPet",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}},
                    "responses": {
                        "200": {
                            "description": "",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                        }
                    },
                }
            },
            "/pets/{petId}": {
                "get": {
                    "operationId": "getPet",
                    "parameters": [{"name": "petId", "in": "path", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "description": "",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "properties": {"id": {"type": "integer", "readOnly": True}, "name": {"type": "string"}},
                }
            }
        },
    }
    from inftool_env.backends.stateful import StatefulBackend as SB
    from inftool_env.mcp import CompiledServer

    suite = load_spec(spec)
    async with open_client(CompiledServer(suite, SB(suite))) as c:
        pet = (await c.call("addPet", {"name": "Rex"})).structured
        assert isinstance(pet["id"], int)
        assert (await c.call("getPet", {"petId": pet["id"]})).structured["name"] == "Rex"
