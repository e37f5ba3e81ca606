"""Agreement cases from the real BFCL data: each entry's ground truth and systematic mutations of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from inftool_env.backends.bfcl import bfcl_entries
from inftool_env.eval.bfcl_data import as_source, ground_truth_call

AST_CATEGORIES = (
    "simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
)  # fmt: skip
EXACT_MODEL = "gorilla-openfunctions-v2"  # expects dotted names as written
UNDERSCORE_MODEL = "DeepSeek-V3.2-Exp-FC"  # BFCL expects "." written as "_" of this model


def other_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7919
    if isinstance(value, str):
        return value + " mutated"
    if isinstance(value, list):
        return [*value, value[0]] if value else ["extra"]
    if isinstance(value, dict):
        return {**value, "mutated_key": 1}
    return "mutated"


def _other_type(value: Any) -> Any:
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool | int | float):
        return str(value)
    return "not a container"


def language_of(category: str) -> str:
    return {"simple_java": "java", "simple_javascript": "javascript"}.get(category, "python")


def mutations(
    output: list[dict[str, dict[str, Any]]], docs: list[dict[str, Any]], truth: list[dict[str, dict[str, Any]]]
) -> Iterator[tuple[str, list[Any]]]:
    yield "ground_truth", output
    first_name, first_args = next(iter(output[0].items()))
    doc = next((d for d in docs if d["name"] == first_name), docs[0])
    required = doc["parameters"].get("required", [])
    for param, value in first_args.items():
        for label, new in (("wrong_value", other_value(value)), ("wrong_type", _other_type(value))):
            mutated = copy.deepcopy(output)
            mutated[0][first_name][param] = new
            yield f"{label}:{param}", mutated
        if value != next(iter(truth[0].values()))[param]:  # written as source: try the Python literal
            mutated = copy.deepcopy(output)
            mutated[0][first_name][param] = repr(next(iter(truth[0].values()))[param])
            yield f"python_literal:{param}", mutated
        if param in required:
            mutated = copy.deepcopy(output)
            del mutated[0][first_name][param]
            yield f"missing_required:{param}", mutated
    mutated = copy.deepcopy(output)
    mutated[0][first_name]["unexpected_extra_param"] = 1
    yield "extra_param", mutated
    other = next((d["name"] for d in docs if d["name"] != first_name), first_name + "_other")
    yield "wrong_function", [{other: first_args}, *output[1:]]
    if len(output) > 1:
        yield "dropped_call", output[:-1]
        yield "swapped_order", list(reversed(output))
    yield "duplicated_call", [*output, output[0]]
    if "." in first_name:
        yield "dotted_as_underscore", [{first_name.replace(".", "_"): first_args}, *output[1:]]


def agreement_cases(limit_per_category: int | None = None) -> Iterator[dict[str, Any]]:
    for category in AST_CATEGORIES:
        for n, (entry, possible) in enumerate(bfcl_entries(category)):
            if limit_per_category is not None and n >= limit_per_category:
                break
            docs, language = entry["function"], language_of(category)
            truth = [ground_truth_call(p) for p in possible]
            output = truth if language == "python" else [as_source(c, docs, language) for c in truth]
            for label, mutated in mutations(output, docs, truth):
                for model in (
                    (EXACT_MODEL, UNDERSCORE_MODEL) if label.startswith(("dotted", "ground")) else (EXACT_MODEL,)
                ):
                    yield {"id": f"{entry['id']}|{label}|{model}", "category": category, "docs": docs,
                           "output": mutated, "possible": possible, "model": model,
                           "language": language}  # fmt: skip
