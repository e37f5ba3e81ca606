"""What a kept task teaches must be right: no fitting tool in a near miss, no value the request never
states, no empty update, no call asked for twice, no parallel turn that works in one order only, no
trivial multi_turn, and a category given up only for a fact about the source, never one unlucky draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inftool_env.synth import categories, synthesize
from inftool_env.synth.categories import (
    _distinct,
    _near_misses,
    find_chain,
    informative,
    multi_turn,
    near_miss_irrelevance,
    resource,
    same_job,
    takes_its_request,
)
from inftool_env.synth.context import Context, NotApplicable, Skip
from inftool_env.synth.verify import _mentioned, _uninferable, verify_task
from inftool_env.synth.world import open_world, updates_in_place
from inftool_env.tasks import Task, ToolCall
from tests.synth.conftest import BOOKSHELF_ID

pytestmark = pytest.mark.anyio


def _doc(name: str, param: str, kind: str = "string") -> dict:
    schema = {"type": "array", "items": {"type": "string"}} if kind == "array" else {"type": kind}
    return {"name": name, "description": f"{name.replace('_', ' ').capitalize()}.",
            "parameters": {"type": "object", "properties": {param: {**schema, "description": f"The {param}."}},
                           "required": [param]}}  # fmt: skip


def _write(tmp_path: Path, name: str, spec: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


# -- item 4: a near miss never offers a tool that does the job -------------------------------------
def test_resources_are_singular_and_skip_version_prefixes(tmp_path):
    files = open_world(_write(tmp_path, "files.json", [_doc("delete_file", "path"), _doc("delete_files", "paths")]))
    assert {resource(t) for _, t in files.tools} == {"file"}
    yelp = {t.name: resource(t) for _, t in open_world("inftool/YelpFusion-v0").tools}
    assert yelp["businesses_search"] == yelp["businesses_id_reviews"] == "business"  # /v3/businesses/...
    assert yelp["autocomplete"] == "autocomplete" and yelp["transactions_search"] == "transaction"


async def test_a_near_miss_never_offers_a_tool_that_does_the_job(tmp_path):
    """``delete_files`` does ``delete_file``'s job and ``fetch_user_info`` does ``get_user``'s (another
    last word, the same verb on the same noun): neither is offered when the other is asked for."""
    docs = [_doc("delete_file", "path"), _doc("delete_files", "paths", "array"), _doc("get_user", "username"),
            _doc("fetch_user_info", "username"), _doc("send_message", "text")]  # fmt: skip
    world = open_world(_write(tmp_path, "tools.json", docs))
    tools = {t.name: t for _, t in world.tools}
    assert same_job(tools["get_user"], tools["fetch_user_info"])
    assert not same_job(tools["get_user"], tools["send_message"])
    made = 0
    for seed in range(30):
        try:
            miss, *_ = await near_miss_irrelevance(Context.create(world, seed), None)
        except Skip:
            continue
        made += 1
        asked = tools[miss.provenance["near_miss_of"]]
        offered = [tools[n] for n in tools if n not in miss.excluded_tools]
        for tool in offered:
            assert resource(tool) != resource(asked) and not same_job(tool, asked), (asked.name, tool.name)
    assert made >= 10


# -- item 2: a value counts as said only if the solver was told it before the call ------------------
@pytest.mark.parametrize(
    ("leaf", "text", "said"),
    [
        (1, "due 2026-01-19", False), ("boo_1", "book boo_12", False), (1, "(1) list books; (2) get boo_3", False),
        (12, "book boo_12", False), (True, "yesterday", False), (False, "a note for now", False),
        (3.0, "copies 3.", True), (56.1039, "latitude 56.1039", True), (-5, "offset -5", True),
        ("boo_1", "book boo_1.", True), (False, "favorite false", True), (1965, '{"year": 1965}', True),
        ("Ada Kim", "author 'ada kim'", True),
    ],
)  # fmt: skip
def test_a_value_is_said_as_a_whole_word_and_a_number_as_a_number(leaf, text, said):
    assert _mentioned(leaf, text) is said


def _task(category: str, turns: list[str], truth: list[list[ToolCall]], **extra: object) -> Task:
    return Task(id="t", category=category, turns=turns, ground_truth=truth, servers=["bookshelf"], **extra)


def test_a_value_is_told_only_before_its_call():
    tools = {t.name: t for _, t in open_world(BOOKSHELF_ID).tools}
    get = ToolCall(name="getBook", arguments={"bookId": "boo_2"})
    echo = [[json.dumps({"id": "boo_2", "title": "Dune"})]]
    # its own result echoes the id: not a source
    assert _uninferable(_task("simple", ["Please get one book for me."], [[get]], one_shot=True), tools, echo)
    # said only in a later turn
    listing = ToolCall(name="listBooks", arguments={"genre": "poetry"})
    later = _task("multi_turn", ["Get a book.", "List poetry books; the book was boo_2."], [[get], [listing]])
    assert "getBook.bookId" in str(_uninferable(later, tools, [echo[0], ["[]"]]))
    # an earlier call's result is a source: the first listed book, fed on
    first = json.dumps([{"id": "boo_2"}])
    chain = _task("multi_step", ["List poetry books, then get the first one."], [[listing, get]])
    assert _uninferable(chain, tools, [[first, echo[0][0]]]) is None
    # ...but not beside it in a parallel turn, whose calls are emitted together
    both = _task("parallel_multiple", ["List poetry books. Also get a book."], [[listing, get]], one_shot=True)
    assert _uninferable(both, tools, [[first, echo[0][0]]])


# -- item 9: an update says what it changes ---------------------------------------------------------
def test_an_update_must_change_something():
    world = open_world(BOOKSHELF_ID)
    update = world.tool("updateBook")
    assert updates_in_place(update) and not updates_in_place(world.tool("removeBook"))
    assert not informative(update, ToolCall(name="updateBook", arguments={"bookId": "boo_2"}))
    assert informative(update, ToolCall(name="updateBook", arguments={"bookId": "boo_2", "copies": 4}))
    for seed in range(20):  # no optional field drawn, still one to change
        call = Context.create(world, seed).make_call("bookshelf", update, optional=0.0)
        assert set(call.arguments) - {"bookId"}, call


# -- item 10: a parallel task never asks for the same call twice -----------------------------------
def test_a_default_given_or_left_out_is_one_call():
    listing = open_world(BOOKSHELF_ID).tool("listBooks")
    a = ToolCall(name="listBooks", arguments={"genre": "science"})
    assert not _distinct(listing, a, ToolCall(name="listBooks", arguments={"genre": "science", "offset": 0}))
    assert _distinct(listing, a, ToolCall(name="listBooks", arguments={"genre": "science", "offset": 5}))


# -- item 8: a parallel turn works in any order -----------------------------------------------------
async def test_a_parallel_turn_that_fails_in_another_order_is_refused():
    world = open_world(BOOKSHELF_ID)
    initial = Context.create(world, 0).pin(["updateBook", "removeBook", "getBook"])
    update = ToolCall(name="updateBook", arguments={"bookId": "boo_3", "copies": 2})
    remove = ToolCall(name="removeBook", arguments={"bookId": "boo_3"})
    text = ["Set the copies of book boo_3 to 2. Also remove book boo_3."]
    clash = _task("parallel_multiple", text, [[update, remove]], one_shot=True, initial_state=initial)
    assert (await verify_task(clash, world.fresh()) or "").startswith("order")
    other = ToolCall(name="removeBook", arguments={"bookId": "boo_1"})
    apart = clash.model_copy(update={"turns": ["Set the copies of book boo_3 to 2. Also remove book boo_1."],
                                     "ground_truth": [[update, other]]})  # fmt: skip
    assert await verify_task(apart, world.fresh()) is None


# -- item 11: multi_turn without a chain is not a string of empty or repeated calls ------------------
async def test_multi_turn_without_a_chain_asks_informative_different_things(monkeypatch):
    async def no_chain(ctx: Context, focus: str | None) -> None:
        raise Skip("no chain")

    monkeypatch.setattr(categories, "find_chain", no_chain)
    world = open_world(BOOKSHELF_ID)
    made = 0
    for seed in range(40):
        try:
            task = await multi_turn(Context.create(world, seed), None)
        except Skip:
            continue
        made += 1
        calls = [turn[0] for turn in task.ground_truth]
        assert all(informative(world.tool(c.name), c) for c in calls), calls
        assert all(_distinct(world.tool(a.name), a, b) for i, a in enumerate(calls) for b in calls[i + 1 :]), calls
    assert made >= 5


# -- item 7: not applicable only for a fact about the source ---------------------------------------
_GENRE = {"type": "string", "enum": ["fiction", "history", "science", "poetry"]}
_BOOK = {
    "type": "object",
    "required": ["id", "title"],
    "properties": {"id": {"type": "string", "readOnly": True}, "title": {"type": "string"}, "genre": _GENRE},
}
_REF = {"$ref": "#/components/schemas/Book"}


def _op(name: str, summary: str, params: list[dict], returns: dict, body: dict | None = None) -> dict:
    op = {
        "operationId": name,
        "summary": summary,
        "parameters": params,
        "responses": {"200": {"description": "OK.", "content": {"application/json": {"schema": returns}}}},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_LIST = _op(
    "listBooks",
    "List books in the catalogue, optionally filtered by author or genre.",
    [
        {"name": "author", "in": "query", "schema": {"type": "string"}, "description": "Exact author."},
        {"name": "genre", "in": "query", "schema": _GENRE},
    ],
    {"type": "array", "items": _REF},
)
_GET = _op(
    "getBook",
    "Get one book by id.",
    [{"name": "bookId", "in": "path", "required": True, "schema": {"type": "string"}}],
    _REF,
)
_ADD = _op("addBook", "Add a book to the catalogue.", [], _REF, body=_BOOK)


def _shelf(paths: dict) -> dict:
    return {"openapi": "3.0.3", "info": {"title": "MiniShelf", "version": "1.0.0"}, "paths": paths,
            "components": {"schemas": {"Book": _BOOK}}}  # fmt: skip


def test_a_chain_is_not_given_up_after_one_unlucky_draw(tmp_path):
    """listBooks -> getBook(the first one): a filter that matches nothing yields no id, so some draws
    do not chain; the category still fills."""
    spec = _write(tmp_path, "shelf.json", _shelf({"/books": {"get": _LIST}, "/books/{bookId}": {"get": _GET}}))
    for seed in range(3):
        run = synthesize(spec, n=3, seed=seed, categories=["multi_step"])
        assert len(run.tasks) == 3 and not run.not_applicable, (seed, run.dropped, run.not_applicable)


async def test_a_source_with_no_id_to_hand_on_has_no_chain(tmp_path):
    world = open_world(_write(tmp_path, "flat.json", _shelf({"/books": {"get": _LIST, "post": _ADD}})))
    with pytest.raises(NotApplicable):
        await find_chain(Context.create(world, 0), None)


async def test_a_chained_call_whose_arguments_do_not_validate_is_not_called_a_server_failure(monkeypatch):
    """review31_diff #8: the consumer's call was never sent, so find_chain gives up with its own reason."""
    make_call = Context.make_call

    def invalid_consumer(self, server, tool, fixed=None):
        if fixed:  # the chained call, fed the producer's value
            raise Skip("generated arguments do not validate (bad)", tool=tool.name, error="bad")
        return make_call(self, server, tool)

    monkeypatch.setattr(Context, "make_call", invalid_consumer)
    with pytest.raises(Skip, match=r"^generated arguments do not validate \(bad\)$") as caught:
        await find_chain(Context.create(open_world(BOOKSHELF_ID), 0), None)
    assert caught.value.tool and caught.value.error == "bad"


def test_irrelevance_falls_back_to_near_misses_when_no_off_domain_request_fits(tmp_path):
    words = ("weather forecast translate language recipe cook dish capital country poem write remind reminder call "
             "boil egg podcast recommend fact animal octopus stretch exercise running football sport rule name pet "
             "suggest stain clean laundry sunset time convert distance mile painter art history")  # fmt: skip
    docs = [_doc("get_book", "book_id"), _doc("get_member", "member_id")]
    docs[0]["description"] += " Notes: " + words
    run = synthesize(_write(tmp_path, "vocab.json", docs), n=6, seed=1, categories=["irrelevance"])
    assert sum(t.category == "irrelevance" for t in run.tasks) == 6 and not run.not_applicable, run.dropped


async def test_an_asked_tool_with_no_near_miss_is_an_unlucky_draw(tmp_path):
    """get_item has no near miss (delete_item acts on items, fetch_item_info does its job), but delete_item
    has one: the source allows near misses, this draw did not."""
    docs = [_doc("get_item", "item_id"), _doc("delete_item", "item_id"), _doc("fetch_item_info", "item_id")]
    world = open_world(_write(tmp_path, "items.json", docs))
    with pytest.raises(Skip):
        await near_miss_irrelevance(Context.create(world, 0), "get_item")
    task, *_ = await near_miss_irrelevance(Context.create(world, 0), "delete_item")
    assert [n for n in ("get_item", "delete_item", "fetch_item_info") if n not in task.excluded_tools] == [
        "fetch_item_info"
    ]


def test_a_tool_doing_the_same_on_the_asked_ones_arguments_is_no_near_miss():
    """Yelp's delivery search (latitude, longitude) is a business search (term, latitude, longitude) with
    the term left out: a model that calls the one for the other has not called a tool where none fits."""
    tools = {t.name: t for _, t in open_world("inftool/YelpFusion-v0").tools}
    assert takes_its_request(tools["businesses_search"], tools["transactions_search"])
    assert not takes_its_request(tools["transactions_search"], tools["businesses_search"])  # it has no term
    assert not takes_its_request(tools["businesses_search"], tools["businesses_id"])  # credentials only: no job
    ctx = Context.create(open_world("inftool/YelpFusion-v0"), 0)
    (server,) = {s for s, _ in ctx.tools()}
    offered = {t.name for t in _near_misses(ctx, server, tools["transactions_search"])}
    assert "businesses_search" not in offered and "businesses_search_phone" in offered


# -- one user, one credential ---------------------------------------------------------------------
def test_a_task_sends_one_token_on_every_call_and_the_next_task_its_own():
    """Yelp's tools take an ``Authorization``: a request for several searches gives the one token the
    user holds, not a token per call (which only made the parallel tasks harder to copy out right)."""
    run = synthesize("inftool/YelpFusion-v0", n=18, seed=3, categories=["parallel", "parallel_multiple", "multi_turn"])
    firsts, several = [], 0
    for task in run.tasks:
        tokens = [
            c.arguments["Authorization"] for turn in task.ground_truth for c in turn if "Authorization" in c.arguments
        ]
        if len(tokens) > 1:
            several += 1
            assert set(tokens) == {tokens[0]}, (task.id, tokens)
        firsts += tokens[:1]
    assert several >= 8  # parallel and parallel_multiple tasks, several calls each
    assert len(set(firsts)) == len(firsts)  # a fresh token per task
