"""A user's own class as a ``python:`` backend: its static/class methods, typed arguments and results,
and the one-line errors for mistakes in the user's module."""

from __future__ import annotations

import datetime
import enum
import functools
import importlib
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from inftool_env import compile_spec, load_suite
from inftool_env.backends.bfcl import BFCL_DOMAINS, bfcl_class
from inftool_env.backends.python import argument_adapters, suite_from_class, to_jsonable
from inftool_env.cli import main
from inftool_env.errors import BackendError, SpecError
from inftool_env.mcp import open_client

pytestmark = pytest.mark.anyio
KIT = f"python:{__name__}:Kit"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Tag:
    name: str
    color: str = "red"


class Point(BaseModel):
    x: int
    y: int


@dataclass
class Node:
    name: str
    kids: list[Node]


class Kit:
    """Tools of every shape a user writes."""

    @staticmethod
    def word_count(text: str) -> int:
        """Count words."""
        return len(text.split())

    @classmethod
    def version(cls, major: int = 1) -> str:
        """The version."""
        return f"{major}.0"

    @functools.cache  # noqa: B019 - the shape under test: a callable that is no def
    def cached(self, n: int) -> int:
        return n

    def weekday(self, day: datetime.date) -> str:
        """Weekday of a date."""
        return day.strftime("%A")

    def tag(self, tag: Tag, color: Color | None = None) -> str:
        """Tag something."""
        return f"{tag.name}/{(color or Color(tag.color)).name}"

    def shift(self, point: Point, by: tuple[int, int]) -> Point:
        """Move a point."""
        return Point(x=point.x + by[0], y=point.y + by[1])

    def depth(self, tree: Node) -> int:
        """Depth of a tree."""
        return 1 + max((self.depth(kid) for kid in tree.kids), default=0)

    def plain(self, a: str, b: int, c: list[str], d: dict[str, int | None], e: Literal["x", 1], f: Any = None) -> str:
        """JSON in, as sent."""
        return "ok"

    def keyed(self, scores: dict[int, str]) -> list[str]:
        """Key types as the method sees them."""
        return [type(k).__name__ for k in scores]

    def hook(self, fn: Callable[[], str] | None = None) -> str:
        """A parameter no JSON Schema describes."""
        return repr(fn)


def test_static_and_class_methods_are_tools_with_their_real_parameters():
    suite = suite_from_class(Kit)
    assert suite.tool("word_count").input_schema["required"] == ["text"]
    assert suite.tool("version").input_schema["properties"] == {"major": {"type": "integer", "default": 1}}
    assert [(s.name, s.reason) for s in suite.skipped] == [
        ("cached", "a _lru_cache_wrapper object, not a def, @staticmethod or @classmethod")
    ]


async def test_static_and_class_methods_are_called_on_the_instance():
    async with open_client(compile_spec(KIT), episode="a") as client:
        assert json.loads((await client.call("word_count", {"text": "a b c"})).text) == 3
        assert json.loads((await client.call("version", {"major": 2})).text) == "2.0"


async def test_typed_arguments_reach_the_method_as_their_types():
    async with open_client(compile_spec(KIT), episode="a") as client:
        assert json.loads((await client.call("weekday", {"day": "2024-01-01"})).text) == "Monday"
        assert json.loads((await client.call("tag", {"tag": {"name": "x"}, "color": "blue"})).text) == "x/BLUE"
        moved = await client.call("shift", {"point": {"x": 1, "y": 2}, "by": [3, 4]})
        assert json.loads(moved.text) == {"x": 4, "y": 6}


async def test_an_enum_or_a_recursive_type_is_a_schema_the_server_resolves():
    # pydantic writes each as "$ref": "#/$defs/…" beside its parameter, where no validator looks.
    suite = load_suite(KIT)
    assert suite.tool("tag").input_schema["properties"]["color"]["anyOf"][0]["enum"] == ["red", "blue"]
    depth = suite.tool("depth").input_schema
    [node] = depth["$defs"]  # kept by name, as a spec's recursive ref is
    assert depth["properties"]["tree"]["properties"]["kids"]["items"] == {"$ref": f"#/$defs/{node}"}
    async with open_client(compile_spec(KIT), episode="a") as client:
        tree = {"name": "a", "kids": [{"name": "b", "kids": [{"name": "c", "kids": []}]}]}
        assert json.loads((await client.call("depth", {"tree": tree})).text) == 3
        assert json.loads((await client.call("tag", {"tag": {"name": "x"}, "color": None})).text) == "x/RED"


async def test_an_argument_its_type_refuses_is_a_tool_error_naming_it():
    compiled = compile_spec(KIT)
    result = await compiled.call("weekday", {"day": "2024-13-01"}, compiled.backend.new_state(seed=0))
    assert result.is_error and result.meta["inftool/error_kind"] == "execution"
    assert result.content[0].text.startswith("Invalid arguments for 'weekday': day: Input should be a valid date")


def test_plain_json_arguments_get_no_validator():
    # BFCL's calls come this way: a validator there would cost every call and change nothing.
    assert argument_adapters(Kit, "plain") == {}
    assert sorted(argument_adapters(Kit, "tag")) == ["color", "tag"]
    for name in BFCL_DOMAINS:
        cls = bfcl_class(name)
        assert all(argument_adapters(cls, m) == {} for m in dir(cls)), name


async def test_a_dict_of_int_keys_reaches_the_method_with_int_keys():
    """JSON keys are text: dict[int, str] counted as plain JSON, and the method got {"1": …}."""
    assert sorted(argument_adapters(Kit, "keyed")) == ["scores"]
    async with open_client(compile_spec(KIT), episode="a") as client:
        assert json.loads((await client.call("keyed", {"scores": {"1": "a", "2": "b"}})).text) == ["int", "int"]


async def test_a_parameter_with_no_json_schema_takes_any_value_as_its_schema_says():
    """The schema said any value ({}), yet a TypeAdapter(Callable) refused every one."""
    assert suite_from_class(Kit).tool("hook").input_schema["properties"] == {"fn": {"default": None}}
    assert argument_adapters(Kit, "hook") == {}
    async with open_client(compile_spec(KIT), episode="a") as client:
        result = await client.call("hook", {"fn": "x"})
        assert not result.is_error and json.loads(result.text) == "'x'"


def test_results_are_json_not_reprs():
    assert to_jsonable(datetime.datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00"
    assert to_jsonable({"d": datetime.date(2024, 1, 2), "t": datetime.time(5, 6)}) == {
        "d": "2024-01-02",
        "t": "05:06:00",
    }
    assert to_jsonable([Color.RED, enum.IntEnum("N", "ONE")(1)]) == ["red", 1]
    assert to_jsonable(Point(x=1, y=2)) == {"x": 1, "y": 2}
    assert to_jsonable(Tag("x")) == {"name": "x", "color": "red"}


MODULES = {
    "r31_syntax": "class Broken:\n    def f(self)\n        return 1\n",
    "r31_raises": "raise RuntimeError('config file missing')\n",
    "r31_needs_dep": "import r31_no_such_dependency\n",
    "r31_classes": textwrap.dedent("""\
        from __future__ import annotations
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from elsewhere import Undefined

        class BadHints:
            def f(self, x: Undefined) -> int:
                return 1

        class NeedsArgs:
            def __init__(self, api_key, region="eu", *, secret):
                pass
            def ping(self) -> str:
                return "pong"

        class InitFails:
            def __init__(self):
                raise RuntimeError("database not reachable")
            def ping(self) -> str:
                return "pong"
    """),
}


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    for name, text in MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


@pytest.mark.parametrize(
    "target, message",
    [
        ("r31_syntax:Broken", "cannot import 'r31_syntax': SyntaxError at {dir}/r31_syntax.py line 2: expected ':'"),
        ("r31_raises:X", "cannot import 'r31_raises': RuntimeError: config file missing "
                         "(at {dir}/r31_raises.py line 1)"),
        ("r31_classes:BadHints", "r31_classes:BadHints.f: the annotation 'Undefined' of 'x' does not resolve "
                                 "(NameError: name 'Undefined' is not defined); import what it names at run time"),
        ("r31_classes:NeedsArgs", "NeedsArgs() cannot be made without arguments (api_key, secret): a python: class "
                                  "must be constructible with no arguments"),
        ("r31_missing:X", "cannot import 'r31_missing': No module named 'r31_missing'; it must be importable: run "
                          "with PYTHONPATH=. from the folder that holds it, or pip install your package"),
    ],
)  # fmt: skip
def test_mistakes_in_the_users_module_are_one_clear_error(user_modules, capsys, target, message):
    with pytest.raises(BackendError) as caught:
        load_suite(f"python:{target}")
    assert str(caught.value).startswith(message.format(dir=user_modules))
    assert main(["inspect", f"python:{target}"]) == 2  # the CLI's contract: one line, no traceback
    assert capsys.readouterr().err.splitlines() == [f"inftool: error: {caught.value}"]


def test_only_the_users_own_module_not_found_gets_the_pythonpath_hint(user_modules):
    with pytest.raises(BackendError) as own:
        load_suite("python:r31_missing:X")
    with pytest.raises(BackendError) as dependency:  # the user's module was found: a hint would mislead
        load_suite("python:r31_needs_dep:X")
    assert "run with PYTHONPATH=." in str(own.value)
    assert str(dependency.value) == "cannot import 'r31_needs_dep': No module named 'r31_no_such_dependency'"


@pytest.mark.parametrize("command", [["inspect"], ["serve"], ["synth", "--n", "2", "--out", "{dir}/out"]])
def test_a_class_that_needs_arguments_is_refused_at_load_in_one_line(user_modules, capsys, command):
    argv = [command[0], "python:r31_classes:NeedsArgs", *(a.format(dir=user_modules) for a in command[1:])]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        "inftool: error: NeedsArgs() cannot be made without arguments (api_key, secret): a python: class must be "
        "constructible with no arguments (one is made for each episode)"
    ]


def test_function_docs_over_a_class_that_needs_arguments_are_refused_at_load(user_modules):
    docs = user_modules / "f.json"
    docs.write_text('[{"name": "ping", "parameters": {"type": "object", "properties": {}}}]')
    with pytest.raises(BackendError, match=r"NeedsArgs\(\) cannot be made without arguments"):
        compile_spec(docs, backend="python:r31_classes:NeedsArgs")


def test_an_init_that_fails_is_one_line_not_a_traceback(user_modules, capsys):
    assert main(["synth", "python:r31_classes:InitFails", "--n", "2", "--out", str(user_modules / "out")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert last == "inftool: error: InitFails() failed: RuntimeError: database not reachable"


class Notebook:
    """The class a user's function docs are served with."""

    def add_note(self, title: str, body: str = "") -> dict[str, str]:
        return {"title": title, "body": body}

    def list_notes(self, limit: int = 10) -> list[str]:
        return []

    def get_note(self, note_id: str) -> dict[str, str]:
        return {"id": note_id}

    def search(self, text: str, **filters: Any) -> list[str]:
        return [text, *filters]

    @staticmethod
    def word_count(text: str) -> int:
        return len(text.split())


def _doc(name: str, *params: str) -> dict[str, Any]:
    props = {p: {"type": "string"} for p in params}
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": props}}}


NOTEBOOK_DOCS = [
    _doc("add_note", "title"),  # an optional parameter left out: fine
    _doc("archive_note", "note_id"),  # no such method
    _doc("list_notes", "max"),  # the method takes `limit`
    _doc("get_note"),  # its required `note_id` undocumented
    _doc("search", "text", "tag"),  # `tag` lands in **filters
    _doc("word_count", "text"),  # a staticmethod
]


async def test_function_docs_are_matched_against_the_class_at_load(tmp_path):
    # Served as they were, a doc naming a method the class lacks, or arguments it does not take, failed
    # only when a model called it.
    docs = tmp_path / "functions.json"
    docs.write_text(json.dumps(NOTEBOOK_DOCS))
    compiled = compile_spec(docs, backend=f"python:{__name__}:Notebook")
    assert compiled.suite.tool_names == ["add_note", "search", "word_count"]
    assert [(s.name, s.pointer, s.reason) for s in compiled.suite.skipped] == [
        ("archive_note", "/1/function", "Notebook has no method 'archive_note'"),
        ("list_notes", "/2/function", "Notebook.list_notes takes no argument 'max' (its parameters: limit)"),
        ("get_note", "/3/function", "Notebook.get_note requires 'note_id', which the doc does not give as an argument"),
    ]  # fmt: skip
    async with open_client(compiled) as client:  # the tools kept run as before
        assert json.loads((await client.call("search", {"text": "a", "tag": "b"})).text) == ["a", "tag"]
    with pytest.raises(SpecError, match=r"functions\.json#/1/function: Notebook has no method 'archive_note'"):
        compile_spec(docs, backend=f"python:{__name__}:Notebook", strict=True)
