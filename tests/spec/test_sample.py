"""The schema sampler against independent oracles: jsonschema's validator on every schema of the
corpus, and on numeric schemas Hypothesis draws (the bounds and steps real specs combine)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from inftool_env.spec.loader import load_spec
from inftool_env.spec.sample import sample


def _unsatisfiable_one_of(error: object, value: object) -> bool:
    """A ``oneOf`` whose branches all accept the same values has no instance at all (specs do this)."""
    return getattr(error, "validator", None) == "oneOf" and "is valid under each of" in getattr(error, "message", "")


def test_every_corpus_schema_samples_valid(corpus_spec):
    suite = load_spec(corpus_spec)
    checked = 0
    for tool in suite.tools:
        for schema in (tool.input_schema, tool.output_schema):
            if not schema:
                continue
            validator = Draft202012Validator(schema)
            for seed in range(3):
                for optional in (1.0, 0.3):
                    value = sample(schema, random.Random(seed), optional=optional)
                    errors = [e for e in validator.iter_errors(value) if not _unsatisfiable_one_of(e, value)]
                    assert not errors, f"{tool.name}: {errors[0].message} at {list(errors[0].absolute_path)}"
                    checked += 1
    assert checked > 0


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.1},
        {"type": "number", "minimum": 0.25, "maximum": 100, "multipleOf": 0.25},
        {"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 5},
        {"type": "integer", "minimum": 3, "maximum": 4},
        {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 2},
        {"type": "number", "exclusiveMinimum": 0.5, "maximum": 0.6, "multipleOf": 0.05},
        {"type": "integer", "maximum": -5},
        {"type": "string", "pattern": "^[0-9]{4}$", "minLength": 4},
    ],
)
def test_known_invalid_outputs_are_fixed(schema):
    validator = Draft202012Validator(schema)
    for seed in range(50):
        value = sample(schema, random.Random(seed))
        assert validator.is_valid(value), (schema, value)


_bound = st.one_of(st.integers(-1000, 1000), st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 3)))


@st.composite
def numeric_schemas(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict = {"type": kind}
    lo, hi = draw(_bound), draw(_bound)
    lo, hi = min(lo, hi), max(lo, hi)
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = lo
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = hi + draw(st.sampled_from([0, 0.5, 3, 50]))
    if draw(st.booleans()):
        schema["multipleOf"] = draw(st.sampled_from([1, 2, 5, 7, 0.5, 0.25, 0.1, 0.01, 2.5]))
    return schema


def _satisfiable(schema: dict) -> bool:
    """Brute force over a fine grid: is there any instance at all? (Hypothesis may draw empty ranges.)"""
    validator = Draft202012Validator(schema)
    lo = schema.get("minimum", schema.get("exclusiveMinimum", -1100))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", 1100))
    step = 1 if schema["type"] == "integer" else 0.01
    n = int((hi - lo) / step) + 2
    candidates = (round(lo + i * step, 2) for i in range(min(n, 300_000)))
    return any(validator.is_valid(int(c) if schema["type"] == "integer" and float(c).is_integer() else c)
               for c in candidates)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(numeric_schemas(), st.integers(0, 2**16))
def test_numeric_schemas_from_hypothesis(schema, seed):
    value = sample(schema, random.Random(seed))
    if not Draft202012Validator(schema).is_valid(value):
        assert not _satisfiable(schema), (schema, value)


def test_written_values_read_back_as_written():
    assert sample({"type": "integer"}, random.Random(0), hint=2000.0) == 2000.0
    assert sample({"type": "object"}, random.Random(0), hint={"k": "v"}) == {"k": "v"}
    assert sample({}, random.Random(0), hint=42) == 42
    assert sample({"description": "untyped"}, random.Random(0), hint="x y") == "x y"
    assert sample({"type": "object", "properties": {"a": {}}}, random.Random(0), hint={"a": [1, 2]}) == {"a": [1, 2]}


# -- the fast draws are the draws rng.choice and rng.randrange make (outputs replay byte for byte) --
def test_letters_and_below_draw_what_choice_and_randrange_draw():
    from inftool_env.spec.sample import _below, _letters

    for seed in range(300):
        fast, slow = random.Random(seed), random.Random(seed)
        assert _letters(fast, "abcdefghijklmnopqrstuvwxyz", 8) == "".join(slow.choice("abcdefghijklmnopqrstuvwxyz")
                                                                         for _ in range(8))  # fmt: skip
        assert _below(fast, 9_999) == slow.randrange(9_999)
        assert _letters(fast, "xyz", 3) == "".join(slow.choice("xyz") for _ in range(3))
        assert fast.getstate() == slow.getstate()


def test_a_random_subclass_keeps_its_own_draws():
    from inftool_env.spec.sample import _below, _letters

    class Counting(random.Random):
        calls = 0

        def random(self) -> float:
            Counting.calls += 1
            return super().random()

    fast, slow = Counting(4), Counting(4)
    assert _letters(fast, "ab", 5) == "".join(slow.choice("ab") for _ in range(5))
    assert _below(fast, 7) == slow.randrange(7)
