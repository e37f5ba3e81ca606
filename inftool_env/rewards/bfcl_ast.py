"""BFCL's AST match, reimplemented: is a decoded model answer a valid call for a BFCL entry?

Semantics follow the Berkeley Function-Calling Leaderboard's checker (agreement with it is tested
on the real data), in our own code and with no bfcl-eval runtime dependency:

- the function name must match (``underscore_names``: dotted names are expected with ``_``, as BFCL
  expects of models whose APIs forbid dots);
- every required parameter present; no parameter outside both the doc and the possible answer;
  a possible answer listing ``""`` makes its parameter optional, and any other must be given;
- types checked against the doc (``float`` accepts an int, ``tuple`` is compared as a list, one
  level of item types); a value of the possible answer's type where the doc says otherwise is a
  "variable" and compared as is;
- values must be among the possible answers; strings compared after BFCL's normalisation (no
  spaces or ``,./-_*^``, case-folded, ``'`` as ``"``), also inside lists and dicts;
- parallel categories match order-free with equal counts; "multiple" needs exactly one call.

For simple_java and simple_javascript (``language`` "java"/"javascript") every argument is a
source string, turned into a value by the declared type first (``bfcl_lang``); type checks then use
that language's type names, and ints are not accepted for floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

from inftool_env.rewards.bfcl_lang import COLLECTIONS, JAVA_TYPES, JS_TYPES, UnsupportedType, to_python

Call = dict[str, dict[str, Any]]  # {"func_name": {"param": value}}, BFCL's decoded form
_STRIP = re.compile(r"[ ,./\-_*^]")
_PY_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "any": str,
}  # fmt: skip
_NESTED = ("array", "tuple")
TYPES = {"python": _PY_TYPES, "java": JAVA_TYPES, "javascript": JS_TYPES}
LANGUAGES = tuple(TYPES)
_NOT_GIVEN = object()


@dataclass(frozen=True)
class Verdict:
    valid: bool
    error_type: str = ""
    errors: list[str] = field(default_factory=list)


OK = Verdict(True)


def check_ast(
    docs: list[dict[str, Any]],
    output: list[Call],
    possible: list[Call],
    category: str,
    *,
    underscore_names: bool = False,
    language: str = "python",
) -> Verdict:
    """The verdict for one AST-category entry (``category`` as BFCL names it, e.g. "parallel")."""
    if language not in TYPES:
        raise ValueError(f"unknown BFCL language {language!r}; known: {', '.join(LANGUAGES)}")
    if "parallel" in category:
        return _parallel(docs, output, possible, underscore_names, language)
    multiple = "multiple" in category
    if len(output) != (len(possible) if multiple else 1):
        kind = "multiple_function_checker" if multiple else "simple_function_checker"
        return Verdict(False, f"{kind}:wrong_count", ["Wrong number of functions."])
    # "multiple" offers several docs: the expected one is the possible answer's; "simple" has one.
    doc = _doc(docs, _name(possible[0])) if multiple else docs[0]
    return check_call(doc, output[0], possible[0], underscore_names, language)


def check_relevance(output: list[Call] | None, category: str) -> Verdict:
    """irrelevance: a well-formed answer with no call; relevance: at least one decoded call.

    ``output`` is None when the answer could not be decoded at all: that is never correct (a
    checker that counts decode failures as correct irrelevance answers can be won by garbage).
    """
    if output is None:
        return Verdict(False, "decode_error", ["The answer could not be decoded."])
    if "irrelevance" in category:
        return OK if not output else Verdict(False, "irrelevance:called", ["A function was called."])
    return OK if output else Verdict(False, "relevance:no_call", ["No function was called."])


def _parallel(
    docs: list[dict[str, Any]], output: list[Call], possible: list[Call], underscore: bool, language: str
) -> Verdict:
    if len(output) != len(possible):
        return Verdict(False, "parallel_function_checker_no_order:wrong_count", ["Wrong number of functions."])
    used: set[int] = set()
    for i, want in enumerate(possible):
        doc = _doc(docs, _name(want))
        matches = (
            j
            for j, got in enumerate(output)
            if j not in used and check_call(doc, got, want, underscore, language).valid
        )
        found = next(matches, None)
        if found is None:
            left = [j for j in range(len(output)) if j not in used]
            return Verdict(
                False,
                "parallel_function_checker_no_order:cannot_find_match",
                [f"No output among indices {left} matches possible answer {i}."],
            )
        used.add(found)
    return OK


def check_call(
    doc: dict[str, Any] | None, output: Call, possible: Call, underscore: bool = False, language: str = "python"
) -> Verdict:
    """One decoded call against one function doc and its possible answer."""
    if doc is None:
        return Verdict(False, "simple_function_checker:wrong_func_name", ["No doc for the expected function."])
    answers = next(iter(possible.values()))
    name = doc["name"].replace(".", "_") if underscore else doc["name"]
    if name not in output:
        return Verdict(False, "simple_function_checker:wrong_func_name", [f"Function {name!r} not in the output."])
    args = output[name]
    properties = doc["parameters"]["properties"]
    for param in doc["parameters"].get("required", []):
        if param not in args:
            return Verdict(False, "simple_function_checker:missing_required", [f"Missing required {param!r}."])
    for param, value in args.items():
        if param not in properties or param not in answers:
            return Verdict(False, "simple_function_checker:unexpected_param", [f"Unexpected parameter {param!r}."])
        verdict = _check_param(param, value, properties[param], answers[param], language)
        if not verdict.valid:
            return verdict
    for param, allowed in answers.items():
        if param not in args and "" not in allowed:
            return Verdict(False, "simple_function_checker:missing_optional", [f"{param!r} must be given."])
    return OK


def _check_param(param: str, value: Any, details: dict[str, Any], allowed: list[Any], language: str) -> Verdict:
    types = TYPES[language]
    type_name = details["type"]
    expected = types.get(type_name)
    if expected is None:  # BFCL's checker has no mapping for it and fails the entry
        return Verdict(False, "type_error:unknown_type", [f"{param!r}: no {language} type for {type_name!r}."])
    has_items = type_name in (_NESTED if language == "python" else COLLECTIONS)
    item_type = details.get("items", {}).get("type", "") if has_items else None
    nested = types.get(item_type) if item_type is not None else None
    if has_items and nested is None:
        return Verdict(False, "type_error:unknown_type", [f"{param!r}: no {language} type for its items."])
    if language != "python":
        if type(value) is not str:
            kind = "java" if language == "java" else "js"
            return Verdict(False, f"type_error:{kind}", [f"{param!r}: expected a {language} source string."])
        try:
            value = to_python(language, value, type_name, item_type)
        except UnsupportedType as exc:
            return Verdict(False, "type_error:unknown_type", [f"{param!r}: {exc}."])
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)
    if language == "python" and type_name == "float" and type(value) is int:
        value = float(value)

    verdict, is_variable = _check_type(param, value, allowed, type_name, expected, nested)
    if not verdict.valid:
        return verdict
    if not is_variable:
        if expected is dict:
            return _dict_in(param, value, allowed)
        if expected is list and nested is dict:
            return _dict_list_in(param, value, allowed)
        if expected is str:
            ok = _norm(value) in [_norm(a) for a in allowed if type(a) is str]
            return OK if ok else Verdict(False, "value_error:string", [f"{param!r}: {value!r} not allowed."])
        if expected is list:
            # BFCL walks every option as a sequence: the optional marker "" becomes [], so [] matches it.
            candidates = [[_norm_if_str(x) for x in a] for a in allowed if isinstance(a, list | str)]
            ok = [_norm_if_str(x) for x in value] in candidates
            return OK if ok else Verdict(False, "value_error:list/tuple", [f"{param!r}: {value!r} not allowed."])
    if value not in allowed:
        return Verdict(False, "value_error:others", [f"{param!r}: {value!r} not among {allowed!r}."])
    return OK


def _check_type(
    param: str, value: Any, allowed: list[Any], type_name: str, expected: type, nested: type | None
) -> tuple[Verdict, bool]:
    """(verdict, is_variable). A "variable" is a value of the possible answer's type, not the doc's."""
    answer_type = next((type(a) for a in allowed if a != ""), None)
    is_variable = answer_type is not None and answer_type is not expected
    items_failed = False
    if type(value) is expected:
        if nested is None:
            return OK, is_variable
        items = cast(list[Any], value)  # expected is list whenever item types are checked
        for option in allowed:
            if type(option) is not list or all(
                _check_type(param, item, option, str(nested), nested, None)[0].valid for item in items
            ):
                return OK, is_variable
        items_failed = True
    if answer_type is not None and type(value) is answer_type:
        # BFCL: a variable, but item types that already failed stay failed
        if items_failed:
            return Verdict(False, "type_error:nested", [f"{param!r}: item types do not match."]), True
        return OK, True
    return Verdict(False, "type_error:simple", [f"{param!r}: expected {type_name}, got {type(value).__name__}."]), False


def _dict_in(param: str, value: dict[str, Any], allowed: list[Any]) -> Verdict:
    last = Verdict(False, "dict_checker:unclear", [f"{param!r}: no possible dict."])
    for option in allowed:
        if option == "":
            continue
        last = _dict_matches(value, option)
        if last.valid:
            return OK
    return last


def _dict_matches(value: dict[str, Any], option: dict[str, list[Any]]) -> Verdict:
    for key, item in value.items():
        if key not in option:
            return Verdict(False, "value_error:dict_key", [f"Unexpected dict key {key!r}."])
        if _norm_if_str(item) not in [_norm_if_str(a) for a in option[key]]:
            return Verdict(False, "value_error:dict_value", [f"Dict value {key!r}: {item!r} not allowed."])
    for key, options in option.items():
        if key not in value and "" not in options:
            return Verdict(False, "value_error:dict_key", [f"Missing dict key {key!r}."])
    return OK


def _dict_list_in(param: str, value: list[Any], allowed: list[Any]) -> Verdict:
    last = Verdict(False, "list_dict_checker:unclear", [f"{param!r}: no possible list of dicts."])
    for option in allowed:
        if len(value) != len(option):
            last = Verdict(False, "value_error:list_dict_count", ["Wrong number of dicts in the list."])
            continue
        results = [_dict_in(param, v, [o]) for v, o in zip(value, option, strict=True)]
        failed = next((r for r in results if not r.valid), None)
        if failed is None:
            return OK
        last = failed
    return last


def _norm(text: str) -> str:
    return _STRIP.sub("", text).lower().replace("'", '"')


def _norm_if_str(value: Any) -> Any:
    return _norm(value) if type(value) is str else value


def _name(call: Call) -> str:
    return next(iter(call))


def _doc(docs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["name"] == name), None)
