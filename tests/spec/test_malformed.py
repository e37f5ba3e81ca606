"""Fuzzed and malformed specs: a SpecError or a reported skip, never a traceback or a hang."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inftool_env.errors import SpecError
from inftool_env.spec import compile_document, load_spec, parse_text
from inftool_env.spec.ir import ToolSuite
from inftool_env.spec.sample import sample

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
refs = st.sampled_from(["#/components/schemas/A", "#/components/schemas/B", "#/nope", "#", "http://x/y", "#/paths"])
keys = st.sampled_from(
    [
        "type",
        "properties",
        "items",
        "$ref",
        "allOf",
        "oneOf",
        "required",
        "enum",
        "schema",
        "parameters",
        "in",
        "name",
        "requestBody",
        "content",
        "responses",
        "nullable",
        "pattern",
    ]
)
json_tree = st.recursive(
    json_leaf | refs,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys | st.text(max_size=5), children, max_size=5),
    max_leaves=30,
)


def check(document):
    try:
        suite = compile_document(document, source="fuzz")
    except SpecError as err:
        assert err.source == "fuzz"
        return
    assert isinstance(suite, ToolSuite)
    json.dumps(suite.model_dump())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths=st.dictionaries(st.text(max_size=6), json_tree, max_size=4), schemas=json_tree)
def test_fuzzed_openapi_documents(paths, schemas):
    check(
        {
            "openapi": "3.0.0",
            "info": {"title": "f"},
            "paths": paths,
            "components": {"schemas": {"A": schemas, "B": {"$ref": "#/components/schemas/A"}}},
        }
    )


@settings(max_examples=200, deadline=None)
@given(functions=st.lists(json_tree, max_size=4))
def test_fuzzed_function_lists(functions):
    check([{"name": "f", "parameters": f} for f in functions])


@settings(max_examples=200, deadline=None)
@given(document=json_tree)
def test_fuzzed_top_levels(document):
    check(document)


def test_truncated_corpus_files(corpus_spec, tmp_path):
    text = corpus_spec.read_text(encoding="utf-8")
    for fraction in (0.05, 0.3, 0.5, 0.77, 0.99):
        cut = tmp_path / corpus_spec.name
        cut.write_text(text[: int(len(text) * fraction)], encoding="utf-8")
        try:
            suite = load_spec(cut)
        except SpecError as err:
            assert str(cut) in str(err)
        else:
            assert isinstance(suite, ToolSuite)


def test_ref_only_cycles_are_errors_not_recursion():
    doc = {
        "openapi": "3.0.0",
        "paths": {"/a": {"get": {"operationId": "a", "parameters": [{"$ref": "#/components/parameters/P"}]}}},
        "components": {
            "parameters": {"P": {"$ref": "#/components/parameters/Q"}, "Q": {"$ref": "#/components/parameters/P"}},
            "schemas": {"S": {"$ref": "#/components/schemas/S"}},
        },
    }
    suite = compile_document(doc, source="cyc")
    assert "cycle" in suite.skipped[0].reason
    doc["paths"]["/b"] = {
        "post": {
            "operationId": "b",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}},
        }
    }
    suite = compile_document(doc, source="cyc")
    assert "b" in suite.tool_names  # a pure self-ref schema terminates as a $defs reference


def test_yaml_alias_bomb_is_refused(tmp_path):
    lines = [
        "openapi: 3.0.0",
        "info: {title: bomb}",
        "components:",
        "  schemas:",
        "    L0: &l0 {type: object, properties: {a: {type: string}}}",
    ]
    lines += [
        f"    L{i}: &l{i} {{type: object, properties: {{a: *l{i - 1}, b: *l{i - 1}, c: *l{i - 1}}}}}"
        for i in range(1, 25)
    ]
    lines += [
        "paths:",
        "  /x:",
        "    post:",
        "      operationId: boom",
        "      requestBody: {content: {application/json: {schema: *l24}}}",
    ]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    with pytest.raises(SpecError, match="alias bomb"):  # 3**24 nodes written out: refused before any walk
        load_spec(path)


def test_deep_nesting(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"
    path.write_text(deep)
    with pytest.raises(SpecError, match="deep"):
        load_spec(path)
    schema: dict = {"type": "string"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"x": schema}}
    suite = compile_document([{"name": "f", "parameters": schema}], source="deep")
    assert "deeper" in suite.skipped[0].reason


def test_a_50_mb_spec_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("w") as f:
        f.write('{"openapi": "3.0.0", "paths": {')
        op = json.dumps({"get": {"description": "x" * 1000}})
        n = 50 * 1024 * 1024 // len(op) + 1
        f.write(",".join(f'"/p{i}": {op}' for i in range(n)))
        f.write("}}")
    assert path.stat().st_size > 50 * 1024 * 1024
    with pytest.raises(SpecError, match=r"over the 32 MiB limit"):
        load_spec(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("just a string", "not an object"),
        ("{oops", "invalid"),
        ("openapi: [", "invalid YAML"),
        ("- 1\n- 2", "not an OpenAPI document"),
        ('{"openapi": "9.9"}', "unsupported openapi version"),
        ('{"swagger": "2.0", "paths": []}', "'paths' must be an object"),
    ],
)
def test_malformed_text(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message) as err:
        load_spec(path)
    assert str(path) in str(err.value)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("openapi: 3.0.0\ninfo: {title: caf\xe9}".encode("latin-1"))
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec(path)


def alias_bomb(where: str, levels: int = 9) -> str:
    """Ten aliases a level: ``levels`` levels are 10**levels nodes once written out, in ~1 KB."""
    lines = [
        "openapi: 3.0.0",
        "info: {title: bomb}",
        "x-bomb:",
        "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    schema = f"{{type: array, {where}: *l{levels - 1}}}" if where != "enum" else f"{{enum: [*l{levels - 1}]}}"
    lines += ["paths:", "  /x:", "    post:", "      operationId: boom",
              f"      requestBody: {{content: {{application/json: {{schema: {schema}}}}}}}"]  # fmt: skip
    return "\n".join(lines)


@pytest.mark.parametrize("where", ["default", "enum", "example", "examples"])
def test_an_alias_bomb_in_a_value_is_a_spec_error(tmp_path, where):
    """Values were not charged to the node budget: the bomb compiled, then tools/list wrote it out."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(where))
    with pytest.raises(SpecError, match="alias bomb"):
        load_spec(path)


@pytest.mark.parametrize("where", ["default", "enum", "example", "examples"])
def test_a_smaller_bomb_in_one_schema_hits_that_tools_node_budget(tmp_path, where):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(where, levels=6))  # a million nodes: under the document's limit
    suite = load_spec(path)
    assert suite.tools == [] and "node budget" in suite.skipped[0].reason


def test_a_recursive_alias_is_a_spec_error(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("openapi: 3.0.0\ninfo: {title: loop}\nx-loop: &a [1, *a]\npaths: {}\n")
    with pytest.raises(SpecError, match="contains itself"):
        load_spec(path)


def test_inftool_serve_refuses_a_bomb_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb("default"))
    done = subprocess.run([sys.executable, "-m", "inftool_env.cli", "serve", str(path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "alias bomb" in done.stderr


def test_the_sampler_survives_a_backtracking_pattern():
    """``re`` on "aaaa…!" against ^(a|a)*$ backtracks 2**40 times: the default was checked that way."""
    schema = {"type": "string", "pattern": "^(a|a)*$", "default": "a" * 40 + "!", "examples": ["a" * 40 + "?"]}
    value = sample(schema, random.Random(0))
    assert isinstance(value, str) and set(value) <= {"a"}
    one_of = {"oneOf": [{"type": "string", "pattern": "^(a|a)*$"}, {"type": "integer"}], "default": "a" * 40 + "!"}
    assert sample(one_of, random.Random(1)) is not None


@pytest.mark.parametrize(
    "text, message",
    [
        ("paths:\n  /a:\n    get: {}\n  /a:\n    post: {}\n", "line 4 column 3: duplicate key '/a' (first at line 2)"),
        ("r: {200: a, '200': b}\n", "line 1 column 13: duplicate key '200' (first at line 1)"),  # one JSON key
    ],
)
def test_a_key_written_twice_is_refused_with_its_line(tmp_path, text, message):
    """PyYAML keeps the last of two equal keys: a path written twice lost the first one's operations unseen."""
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: invalid YAML at {message}"


def test_keys_a_merge_brings_may_be_overridden_but_not_written_twice():
    text = "x-base: &b {a: 1, c: 2}\nx-more: &m {<<: *b, a: 5}\nx-last: {<<: [*m, *b], c: 9}\n"
    assert parse_text(text, source="merge.yaml")["x-last"] == {"a": 5, "c": 9}
    with pytest.raises(SpecError, match=r"line 4 column 25: duplicate key 'c' \(first at line 4\)"):
        parse_text(text + "x-again: {<<: *b, c: 3, c: 4}\n", source="merge.yaml")


def test_a_yaml_error_says_where_the_unclosed_thing_began(tmp_path):
    """An unclosed quote on line 3 was reported at the end of the file only ("line 6 column 1")."""
    path = tmp_path / "typo.yaml"
    path.write_text('openapi: 3.0.3\ninfo:\n  title: "Typo\n  version: 1.0.0\npaths: {}\n')
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == (
        f"{path}: invalid YAML: while scanning a quoted scalar at line 3 column 10, "
        "found unexpected end of stream at line 6 column 1"
    )


def test_a_yaml_date_is_its_text_even_one_no_calendar_has(tmp_path):
    """PyYAML builds 2023-02-30 as a date and fails: a bare ValueError escaped load_spec."""
    path = tmp_path / "dates.yaml"
    path.write_text(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\nx-days: {2023-02-30: a, 2024-01-02: b}\npaths:\n"
        "  /a:\n    get:\n      operationId: a\n      responses:\n"
        "        '200': {description: ok, content: {application/json: {example: 2023-02-30}}}\n"
    )
    load_spec(path)
    document = parse_text(path.read_text(), source=str(path))
    assert document["x-days"] == {"2023-02-30": "a", "2024-01-02": "b"}  # a real one as before: its isoformat
    assert document["paths"]["/a"]["get"]["responses"]["200"]["content"]["application/json"]["example"] == "2023-02-30"


def test_a_value_its_yaml_tag_refuses_is_a_spec_error_naming_its_line():
    with pytest.raises(SpecError) as err:
        parse_text("a: 1\nb: [2, !!int abc]\n", source="tag.yaml")
    assert str(err.value) == (
        "tag.yaml: invalid YAML at line 2 column 8: cannot read 'abc' as !!int: invalid literal for int() with "
        "base 10: 'abc'"
    )


def test_a_json_number_past_pythons_digit_limit_is_a_spec_error():
    with pytest.raises(SpecError, match=r"^big.json: invalid JSON: Exceeds the limit"):
        parse_text('{"a": ' + "9" * 5000 + "}", source="big.json")


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"paths": {"/a": {"get": {}}, "/a": {"post": {}}}}', "duplicate key '/a' in the object at /paths"),
        ('{"a": 1, "a": 2}', "duplicate key 'a' in the object at the top level"),
        ('[{"name": "f"}, {"name": "g", "parameters": {"x~/y": {"t": 1, "t": 2}}}]',
         "duplicate key 't' in the object at /1/parameters/x~0~1y"),
    ],
)  # fmt: skip
def test_a_json_key_written_twice_is_refused_with_where(tmp_path, text, message):
    """``json`` keeps the last of two equal keys, as PyYAML did: the first path's operations were lost unseen."""
    path = tmp_path / "dup.json"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: invalid JSON: {message}"


def test_a_jsonl_line_with_a_key_written_twice_names_its_line():
    text = '{"name": "f", "parameters": {}}\n{"name": "g", "name": "h", "parameters": {}}\n'
    with pytest.raises(SpecError, match=r"^tools.jsonl line 2: invalid JSON: duplicate key 'name'"):
        parse_text(text, source="tools.jsonl")
