from __future__ import annotations

import re

import pytest

from inftool_env.backends.bfcl import bfcl_entries
from inftool_env.eval.bfcl_known import UNPASSABLE
from inftool_env.rewards.bfcl_ast import calls_matched, check_ast, check_call, check_relevance
from inftool_env.rewards.bfcl_lang import to_python
from tests.rewards.cases import (
    AST_CATEGORIES,
    UNDERSCORE_MODEL,
    agreement_cases,
    as_source,
    ground_truth_call,
    language_of,
)

DOC = {"name": "math.hypot", "parameters": {"type": "dict", "required": ["x"], "properties": {
    "x": {"type": "float"}, "unit": {"type": "string"}, "pts": {"type": "array", "items": {"type": "integer"}},
    "opts": {"type": "dict", "properties": {}}}}}  # fmt: skip
POSSIBLE = {"math.hypot": {"x": [3.0], "unit": ["cm", ""], "pts": [[1, 2], ""], "opts": [{"deep": [True]}, ""]}}


@pytest.mark.parametrize("category", AST_CATEGORIES)
def test_the_ground_truth_of_every_entry_is_valid(category):
    failed = {}
    for entry, possible in bfcl_entries(category):
        output = [ground_truth_call(p) for p in possible]
        language = language_of(category)
        if language != "python":
            output = [as_source(c, entry["function"], language) for c in output]
        verdict = check_ast(entry["function"], output, possible, category, language=language)
        if not verdict.valid:
            failed[entry["id"]] = verdict.error_type
    assert failed == {k: v for k, v in UNPASSABLE.items() if re.match(rf"{category}_\d", k)}


@pytest.mark.parametrize(
    "args, valid, error",
    [
        ({"x": 3}, True, ""),  # int accepted for float
        ({"x": 3.0, "unit": "C.M"}, True, ""),  # strings normalised as BFCL does
        ({"x": 3.0, "pts": (1, 2)}, False, "type_error:simple"),  # a tuple only passes where the doc says tuple
        # BFCL quirk: the optional marker "" passes the item-type check, so the value check decides
        ({"x": 3.0, "pts": [1, "2"]}, False, "value_error:list/tuple"),
        ({"x": 3.0, "opts": {"deep": True}}, True, ""),
        ({"x": 3.0, "opts": {"other": True}}, False, "value_error:dict_key"),
        ({"unit": "cm"}, False, "simple_function_checker:missing_required"),
        ({"x": 3.0, "colour": "red"}, False, "simple_function_checker:unexpected_param"),
        ({"x": 4.0}, False, "value_error:others"),
        ({"x": "3.0"}, False, "type_error:simple"),
    ],
)
def test_parameter_rules(args, valid, error):
    verdict = check_call(DOC, {"math.hypot": args}, POSSIBLE)
    assert (verdict.valid, verdict.error_type) == (valid, error)


def test_item_types_when_no_option_is_optional():
    verdict = check_call(
        DOC, {"math.hypot": {"x": 3.0, "pts": [1, "2"]}}, {"math.hypot": {"x": [3.0], "pts": [[1, 2]]}}
    )
    assert (verdict.valid, verdict.error_type) == (False, "type_error:nested")


def test_dotted_names_follow_the_model_convention():
    assert check_call(DOC, {"math_hypot": {"x": 3}}, POSSIBLE, underscore=True).valid
    assert not check_call(DOC, {"math_hypot": {"x": 3}}, POSSIBLE).valid
    assert not check_call(DOC, {"math.hypot": {"x": 3}}, POSSIBLE, underscore=True).valid


def test_parallel_is_order_free_with_equal_counts():
    docs = [DOC]
    possible = [{"math.hypot": {"x": [1.0]}}, {"math.hypot": {"x": [2.0]}}]
    swapped = [{"math.hypot": {"x": 2.0}}, {"math.hypot": {"x": 1.0}}]
    assert check_ast(docs, swapped, possible, "parallel").valid
    assert not check_ast(docs, swapped[:1], possible, "parallel").valid
    assert not check_ast(docs, [swapped[0], swapped[0]], possible, "parallel").valid


def test_calls_matched_is_the_share_of_asked_calls_an_answer_makes_right():
    docs = [DOC]
    possible = [{"math.hypot": {"x": [v]}} for v in (1.0, 2.0, 3.0)]
    made = [{"math.hypot": {"x": v}} for v in (3.0, 1.0, 2.0)]
    assert calls_matched(docs, made, possible) == 1.0  # in any order
    assert calls_matched(docs, made[:2], possible) == pytest.approx(2 / 3)  # one call missing
    assert calls_matched(docs, [*made, made[0]], possible) == 0.75  # one call too many
    assert calls_matched(docs, [made[0], made[0]], possible) == pytest.approx(1 / 3)  # a call stands for one only
    assert calls_matched(docs, [made[0], {"math.hypot": {"x": 9.0}}], possible) == pytest.approx(1 / 3)
    assert calls_matched(docs, [], possible) == 0.0
    assert calls_matched(docs, [{"math_hypot": {"x": 1.0}}], possible[:1], underscore_names=True) == 1.0


def test_calls_matched_is_whole_exactly_where_bfcls_verdict_passes_on_every_ast_case():
    """On the agreement cases built from BFCL's real entries (ground truth and mutations): partial credit
    never calls an answer whole that the verdict fails, nor the reverse."""
    seen = 0
    for case in agreement_cases(limit_per_category=60):
        if "relevance" in case["category"]:
            continue
        args = (case["docs"], case["output"], case["possible"])
        underscore, language = case["model"] == UNDERSCORE_MODEL, case["language"]
        valid = check_ast(*args, case["category"], underscore_names=underscore, language=language).valid
        share = calls_matched(*args, underscore_names=underscore, language=language)
        assert (share == 1.0) == valid and 0.0 <= share <= 1.0, case["id"]
        if case["id"].split("|")[1] == "dropped_call":
            assert 0.0 < share < 1.0, case["id"]
        seen += 1
    assert seen > 5000


def test_relevance_rules_cannot_be_won_by_garbage():
    assert check_relevance([], "irrelevance").valid
    assert not check_relevance(None, "irrelevance").valid  # undecodable is never a correct refusal
    assert not check_relevance([{"f": {}}], "irrelevance").valid
    assert check_relevance([{"f": {}}], "live_relevance").valid
    assert not check_relevance([], "live_relevance").valid


@pytest.mark.parametrize(
    ("language", "text", "type_name", "items", "value"),
    [
        ("java", "42", "integer", None, 42),
        ("java", "42L", "long", None, 42),
        ("java", "42", "long", None, "42"),  # no L: not a long, stays text and fails the type check
        ("java", "2.5f", "float", None, 2.5),
        ("java", "1e3", "double", None, 1000.0),
        ("java", "true", "boolean", None, True),
        ("java", "True", "boolean", None, "True"),
        ("java", 'new ArrayList<>(Arrays.asList("a", "b"))', "ArrayList", "String", ["a", "b"]),
        ("java", "new ArrayList<String>() {{ add(\"a\"); add(\"b\"); }}", "ArrayList", "String", ["a", "b"]),
        ("java", 'new String[]{"a", "b"}', "Array", "String", ['"a"', '"b"']),  # BFCL keeps an Array's quotes
        ("java", "new int[]{1, 2}", "Array", "integer", [1, 2]),
        ("java", 'new HashMap<String, Object>() {{ put("k", 5L); put("s", "v"); }}', "HashMap", None,
         {"k": 5, "s": "v"}),
        ("java", "new HashMap<>()", "HashMap", None, {}),
        ("javascript", "'abc'", "String", None, "abc"),
        ("javascript", "12n", "Bigint", None, 12),
        ("javascript", "1.5", "float", None, 1.5),
        ("javascript", "1e3", "float", None, "1e3"),
        ("javascript", '["a", "b"]', "array", "String", ["a", "b"]),
        ("javascript", "[[1, 2], [3]]", "array", "integer", [[1, 2], [3]]),
        ("javascript", "{a: 1, b: 'x'}", "dict", None, {"a": 1, "b": "x"}),
        ("javascript", "{}", "dict", None, {}),
    ],
)  # fmt: skip
def test_source_strings_convert_by_the_declared_type(language, text, type_name, items, value):
    assert to_python(language, text, type_name, items) == value


def test_java_and_javascript_arguments_must_be_source_strings():
    doc = {"name": "f", "parameters": {"type": "dict", "required": ["n"], "properties": {"n": {"type": "long"}}}}
    possible = [{"f": {"n": [5]}}]
    assert check_ast([doc], [{"f": {"n": "5L"}}], possible, "simple_java", language="java").valid
    assert check_ast([doc], [{"f": {"n": 5}}], possible, "simple_java", language="java").error_type == "type_error:java"
    assert not check_ast([doc], [{"f": {"n": "5"}}], possible, "simple_java", language="java").valid
    with pytest.raises(ValueError, match="unknown BFCL language"):
        check_ast([doc], [{"f": {"n": "5L"}}], possible, "simple_java", language="kotlin")
