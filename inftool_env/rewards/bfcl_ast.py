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
from typing import Any

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


@dataclass(frozen=True, init=False)
class Verdict:
    valid: bool
    error_type: str = ""
    errors: list[str] = field(default_factory=list)

    def __init__(self, valid: bool, error_type: str = "", errors: list[str] | None = None) -> None:
        # Set once, here: the generated frozen __init__ costs a setattr call per field, and a checker
        # makes one Verdict per case.
        fields = self.__dict__
        fields["valid"], fields["error_type"], fields["errors"] = valid, error_type, [] if errors is None else errors


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
    return _call_error(doc, output[0], possible[0], underscore_names, language, True) or OK


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
    free = list(range(len(output)))  # outputs not matched yet, in order
    for i, want in enumerate(possible):
        found = _first_passing(_doc(docs, _name(want)), want, output, free, underscore, language)
        if found is None:
            return Verdict(
                False,
                "parallel_function_checker_no_order:cannot_find_match",
                [f"No output among indices {free} matches possible answer {i}."],
            )
        free.remove(found)
    return OK


def calls_matched(
    docs: list[dict[str, Any]],
    output: list[Call],
    possible: list[Call],
    *,
    underscore_names: bool = False,
    language: str = "python",
) -> float:
    """Partial credit for a one-shot answer: the expected calls paired as BFCL's checker pairs them (each in
    turn takes the first output call not yet taken that passes it), but going on past one that finds none,
    over the larger of the two counts, so a missing call and an extra one each cost a share. So it is 1.0
    exactly where ``check_ast`` passes. Not a verdict: a training signal where no answer of a group is whole."""
    if not output or not possible:
        return float(not output and not possible)
    free = list(range(len(output)))
    for want in possible:
        doc = _doc(docs, _name(want)) or (docs[0] if len(docs) == 1 else None)  # "simple" offers one doc
        if (found := _first_passing(doc, want, output, free, underscore_names, language)) is not None:
            free.remove(found)
    return (len(output) - len(free)) / max(len(output), len(possible))


def _first_passing(
    doc: dict[str, Any] | None, want: Call, output: list[Call], free: list[int], underscore: bool, language: str
) -> int | None:
    """BFCL's pairing rule, shared by its verdict and ``calls_matched``: the first output call not yet taken
    (``free``, in order) that passes the expected call ``want``. A candidate's failure is not reported, so it
    is not explained either."""
    return next((j for j in free if _call_error(doc, output[j], want, underscore, language, False) is None), None)


def check_call(
    doc: dict[str, Any] | None, output: Call, possible: Call, underscore: bool = False, language: str = "python"
) -> Verdict:
    """One decoded call against one function doc and its possible answer."""
    return _call_error(doc, output, possible, underscore, language, True) or OK


# The checks below return None for a pass and a failing Verdict otherwise; with ``explain`` False a
# failure may come without its message (the caller only needs to know that it failed).
_UNEXPLAINED = Verdict(False, "unexplained")


def _call_error(
    doc: dict[str, Any] | None, output: Call, possible: Call, underscore: bool, language: str, explain: bool
) -> Verdict | None:
    if doc is None:
        return Verdict(False, "simple_function_checker:wrong_func_name", ["No doc for the expected function."])
    answers = next(iter(possible.values()))
    name = doc["name"].replace(".", "_") if underscore else doc["name"]
    if name not in output:
        return Verdict(False, "simple_function_checker:wrong_func_name", [f"Function {name!r} not in the output."])
    args = output[name]
    parameters = doc["parameters"]
    properties = parameters["properties"]
    for param in parameters.get("required", ()):
        if param not in args:
            return Verdict(False, "simple_function_checker:missing_required", [f"Missing required {param!r}."])
    for param, value in args.items():
        if param not in properties or param not in answers:
            return Verdict(False, "simple_function_checker:unexpected_param", [f"Unexpected parameter {param!r}."])
        error = _param_error(param, value, properties[param], answers[param], language, explain)
        if error is not None:
            return error
    for param, allowed in answers.items():
        if param not in args and "" not in allowed:
            return Verdict(False, "simple_function_checker:missing_optional", [f"{param!r} must be given."])
    return None


def _param_error(
    param: str, value: Any, details: dict[str, Any], allowed: list[Any], language: str, explain: bool
) -> Verdict | None:
    types = TYPES[language]
    type_name = details["type"]
    expected = types.get(type_name)
    if expected is None:  # BFCL's checker has no mapping for it and fails the entry
        return Verdict(False, "type_error:unknown_type", [f"{param!r}: no {language} type for {type_name!r}."])
    nested: type | None = None
    if type_name in (_NESTED if language == "python" else COLLECTIONS):
        item_type = details.get("items", {}).get("type", "")
        nested = types.get(item_type)
        if nested is None:
            return Verdict(False, "type_error:unknown_type", [f"{param!r}: no {language} type for its items."])
    else:
        item_type = None
    if language != "python":
        if type(value) is not str:
            short = "java" if language == "java" else "js"
            return Verdict(False, f"type_error:{short}", [f"{param!r}: expected a {language} source string."])
        try:
            value = to_python(language, value, type_name, item_type)
        except UnsupportedType as exc:
            return Verdict(False, "type_error:unknown_type", [f"{param!r}: {exc}."])
    elif type_name == "float" and type(value) is int:
        value = float(value)
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)

    # The type check; a "variable" is a value of the possible answer's type, not the doc's.
    answer_type = type(allowed[0]) if allowed and allowed[0] != "" else _answer_type(allowed)
    is_variable = answer_type is not None and answer_type is not expected
    kind = type(value)
    if kind is not expected or (nested is not None and not _items_typed(value, allowed, nested)):
        if answer_type is None or kind is not answer_type:
            if not explain:
                return _UNEXPLAINED
            got = f"expected {type_name}, got {kind.__name__}."
            return Verdict(False, "type_error:simple", [f"{param!r}: {got}"])
        if kind is expected:  # BFCL: a variable, but item types that already failed stay failed
            return Verdict(False, "type_error:nested", [f"{param!r}: item types do not match."])
        is_variable = True

    if not is_variable:
        if expected is dict:
            return _dict_error(param, value, allowed, explain)
        if expected is list and nested is dict:
            return _dict_list_error(param, value, allowed, explain)
        if expected is str:
            wanted = _norm(value)
            for a in allowed:
                if type(a) is str and _norm(a) == wanted:
                    return None
            if not explain:
                return _UNEXPLAINED
            return Verdict(False, "value_error:string", [f"{param!r}: {value!r} not allowed."])
        if expected is list:
            # BFCL walks every option as a sequence: the optional marker "" becomes [], so [] matches it.
            given = [_norm(x) if type(x) is str else x for x in value]
            for a in allowed:
                if isinstance(a, list | str) and [_norm(x) if type(x) is str else x for x in a] == given:
                    return None
            if not explain:
                return _UNEXPLAINED
            return Verdict(False, "value_error:list/tuple", [f"{param!r}: {value!r} not allowed."])
    if value not in allowed:
        if not explain:
            return _UNEXPLAINED
        return Verdict(False, "value_error:others", [f"{param!r}: {value!r} not among {allowed!r}."])
    return None


def _answer_type(allowed: list[Any]) -> type | None:
    """The type of the first possible answer that is not the optional marker."""
    for a in allowed:
        if a != "":
            return type(a)
    return None


def _items_typed(items: list[Any], allowed: list[Any], nested: type) -> bool:
    """BFCL's one level of item types: some option that is not a list, or every item of ``nested``
    type (or of that option's own item type)."""
    for option in allowed:
        if type(option) is not list:
            return True
        option_type = _answer_type(option)
        if all(type(item) is nested or type(item) is option_type for item in items):
            return True
    return False


def _dict_error(param: str, value: dict[str, Any], allowed: list[Any], explain: bool) -> Verdict | None:
    last = Verdict(False, "dict_checker:unclear", [f"{param!r}: no possible dict."])
    for option in allowed:
        if option == "":
            continue
        error = _dict_mismatch(value, option)
        if error is None:
            return None
        last = error
    return last


def _dict_mismatch(value: dict[str, Any], option: dict[str, list[Any]]) -> Verdict | None:
    for key, item in value.items():
        if key not in option:
            return Verdict(False, "value_error:dict_key", [f"Unexpected dict key {key!r}."])
        if _norm_if_str(item) not in [_norm_if_str(a) for a in option[key]]:
            return Verdict(False, "value_error:dict_value", [f"Dict value {key!r}: {item!r} not allowed."])
    for key, options in option.items():
        if key not in value and "" not in options:
            return Verdict(False, "value_error:dict_key", [f"Missing dict key {key!r}."])
    return None


def _dict_list_error(param: str, value: list[Any], allowed: list[Any], explain: bool) -> Verdict | None:
    last = Verdict(False, "list_dict_checker:unclear", [f"{param!r}: no possible list of dicts."])
    for option in allowed:
        if len(value) != len(option):
            last = Verdict(False, "value_error:list_dict_count", ["Wrong number of dicts in the list."])
            continue
        failed = next(
            (e for v, o in zip(value, option, strict=True) if (e := _dict_error(param, v, [o], explain)) is not None),
            None,
        )
        if failed is None:
            return None
        last = failed
    return last


# BFCL's string normalisation, remembered: the same few possible answers are normalised again and again.
_normalised: dict[str, str] = {}
_NORMALISED_MAX = 100_000


def _norm(text: str) -> str:
    out = _normalised.get(text)
    if out is None:
        if len(_normalised) >= _NORMALISED_MAX:
            _normalised.clear()
        out = _normalised[text] = _STRIP.sub("", text).lower().replace("'", '"')
    return out


def _norm_if_str(value: Any) -> Any:
    return _norm(value) if type(value) is str else value


def _name(call: Call) -> str:
    return next(iter(call))


def _doc(docs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for d in docs:
        if d["name"] == name:
            return d
    return None
