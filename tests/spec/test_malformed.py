"""Fuzzed and malformed specs: a SpecError or a reported skip, never a traceback or a hang."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inftool_env.errors import SpecError
from inftool_env.spec import compile_document, load_spec
from inftool_env.spec.ir import ToolSuite

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


def test_yaml_alias_bomb_hits_the_node_budget(tmp_path):
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
    suite = load_spec(path)
    assert suite.tools == [] and "node budget" in suite.skipped[0].reason


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
