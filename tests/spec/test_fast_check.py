"""The compiled fast check says "surely valid" only where Draft 2020-12 (the server's validator) agrees,
and says it for most valid values, or the server gains nothing from asking it first."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inftool_env.errors import SpecError
from inftool_env.registration import default_registry
from inftool_env.spec.fast_check import compile_check
from inftool_env.spec.patterns import bounded_validator

_scalar_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.0, 1.0, 2.5, -1.5, float("inf"), float("nan")]),
    st.sampled_from(["", "a", "abc", "hello world"]),
)  # fmt: skip
values = st.recursive(
    _scalar_values,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)),
    max_leaves=8,
)


def _leaf_schema() -> st.SearchStrategy[dict[str, Any]]:
    kinds = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
    return st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(kinds, st.lists(kinds, min_size=1, max_size=2, unique=True)),
            "enum": st.lists(_scalar_values, min_size=1, max_size=3),
            "const": _scalar_values,
            "minimum": st.integers(-3, 3),
            "exclusiveMaximum": st.sampled_from([0, 2, 4.5]),
            "minLength": st.integers(0, 3),
            "maxItems": st.integers(0, 2),
            "pattern": st.sampled_from(["^a", "b", "^[a-z ]+$", "^$", "("]),  # "(": does not compile
            "description": st.just("annotations are ignored"),
            "format": st.just("date-time"),
        },
    )


schemas = st.recursive(
    _leaf_schema(),
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)},
            optional={
                "required": st.lists(st.sampled_from("abcd"), max_size=2, unique=True),
                "additionalProperties": st.one_of(st.booleans(), inner),
            },
        ),
        st.fixed_dictionaries({"type": st.just("array"), "items": inner}, optional={"minItems": st.integers(0, 2)}),
    ),
    max_leaves=5,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas, st.lists(values, min_size=1, max_size=6))
def test_surely_valid_is_never_wrong(schema, candidates):
    check = compile_check(schema)
    assert check is not None, schema  # every generated keyword is in the subset
    validator = bounded_validator(schema)
    for value in candidates:
        if check(value):
            assert validator.is_valid(value), (schema, value)


@pytest.mark.anyio
async def test_it_passes_most_valid_values_of_the_registered_envs():
    """Over every registered env's tools, values the sampler makes: the fast check passes nearly all
    the valid ones (else the server would still pay for jsonschema on every call)."""
    import random

    from inftool_env.registration import make
    from inftool_env.spec.sample import sample

    passed = valid = compiled = tools = 0
    without_corpus = []
    for env_id in default_registry().ids():
        try:
            env = make(env_id)
        except SpecError as exc:  # its spec is in the shared corpus, absent here (see shared_corpus_or_skip)
            if "shared/corpus" not in str(exc):
                raise
            without_corpus.append(env_id)
            continue
        try:
            for server in env.servers.values():
                for tool in server.suite.tools:
                    tools += 1
                    check = compile_check(tool.input_schema)
                    if check is None:
                        continue
                    compiled += 1
                    validator = bounded_validator(tool.input_schema)
                    for seed in range(3):
                        value = sample(tool.input_schema, random.Random(seed))
                        if validator.is_valid(value):
                            valid += 1
                            passed += check(value)
        finally:
            await env.close()
    print(f"{compiled}/{tools} tools compiled; {passed}/{valid} valid samples surely valid; "
          f"left out without the shared corpus: {without_corpus or 'none'}")  # fmt: skip
    assert compiled >= 0.8 * tools, (compiled, tools)
    assert valid and passed >= 0.95 * valid, (passed, valid)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, True),  # a bool is no integer
        ({"enum": [1]}, True),  # nor equal to 1 under jsonschema
        ({"enum": [1.0]}, 1),  # equal under jsonschema: left to it ("not surely")
        ({"maximum": 3}, float("inf")),
        ({"type": "object", "required": ["a"]}, {}),
        ({"type": "object", "additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"type": "array", "items": {"type": "string"}}, ["a", 1]),
        ({"minLength": 2}, "a"),
        ({"pattern": "^[a-z]+$"}, "abc1"),
        ({"pattern": "("}, "abc"),  # no usable pattern: jsonschema's verdict, not ours
    ],
)
def test_not_surely_valid(schema, value):
    assert compile_check(schema)(value) is False


def test_a_pattern_search_keeps_the_servers_time_budget():
    from inftool_env.spec.patterns import PatternTimeout, deadline

    check = compile_check({"type": "string", "pattern": "^(a|a)*$"})
    assert check("aaa") is True
    with pytest.raises(PatternTimeout), deadline(0.05):
        check("a" * 40 + "b")  # backtracks for minutes without the bound


@pytest.mark.parametrize(
    ("schema", "slow"),
    [
        ({"type": "string", "pattern": "^a"}, True),
        ({"properties": {"code": {"anyOf": [{"pattern": "^a"}]}}}, True),
        ({"patternProperties": {"^a": {}}}, True),
        ({"$defs": {"pattern": {"pattern": "^a"}}}, True),
        # Names, not keywords: BFCL's grep takes an argument called "pattern".
        ({"type": "object", "properties": {"file_name": {"type": "string"}, "pattern": {"type": "string"}}}, False),
        ({"properties": {"patternProperties": {"type": "object"}}}, False),
        ({"$defs": {"pattern": {"type": "string"}}}, False),
    ],
)
def test_only_regex_keywords_send_a_check_off_the_event_loop(schema, slow):
    """A tool whose schema has a regex keyword is validated in a worker thread under a time bound
    (mcp/server.py): one whose property is merely named "pattern" need not pay for the thread."""
    from inftool_env.spec.patterns import has_patterns

    assert has_patterns(schema) is slow


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}]},
        {"$ref": "#/$defs/x"},
        {"patternProperties": {"^a": {}}},
        {"type": "array", "items": [{}]},
        {"properties": {"a": {"oneOf": []}}},
    ],
)
def test_what_it_does_not_model_goes_to_the_full_validator(schema):
    assert compile_check(schema) is None
