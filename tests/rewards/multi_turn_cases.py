"""Multi-turn agreement cases from the real BFCL data: each entry's ground truth as the model's
answer, and systematic mutations of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator

from inftool_env.backends.bfcl import MULTI_TURN_CATEGORIES, bfcl_multi_turn_tasks
from inftool_env.tasks import Task, ToolCall
from tests.rewards.cases import other_value

Steps = list[list[ToolCall]]


def _first_busy_turn(truth: list[list[ToolCall]]) -> int:
    return next(k for k, turn in enumerate(truth) if turn)


def mutations(task: Task) -> Iterator[tuple[str, list[Steps]]]:
    truth = [list(turn) for turn in task.ground_truth]
    as_one_step = [[turn] if turn else [] for turn in truth]
    yield "ground_truth", as_one_step
    yield "one_call_per_step", [[[c] for c in turn] for turn in truth]
    k = _first_busy_turn(truth)
    first = truth[k][0]

    def with_turn(calls: list[ToolCall]) -> list[Steps]:
        out = copy.deepcopy(as_one_step)
        out[k] = [calls] if calls else []
        return out

    yield "empty_turn", with_turn([])
    yield "dropped_last_call", with_turn(truth[k][:-1])
    yield "duplicated_first_call", with_turn([first, *truth[k]])
    if len(truth[k]) > 1:
        yield "swapped_order", with_turn(list(reversed(truth[k])))
    for param, value in first.arguments.items():
        wrong = ToolCall(name=first.name, arguments={**first.arguments, param: other_value(value)})
        yield f"wrong_value:{param}", with_turn([wrong, *truth[k][1:]])
        retyped = ToolCall(
            name=first.name, arguments={**first.arguments, param: 12345 if isinstance(value, str) else "x"}
        )
        yield f"wrong_type:{param}", with_turn([retyped, *truth[k][1:]])
        break
    yield "unknown_function", with_turn([ToolCall(name="no_such_function", arguments={}), *truth[k]])
    if len(truth) > 1:
        yield "missing_last_turn", [*as_one_step[:-1], []]


def multi_turn_cases(limit_per_category: int | None = None) -> Iterator[tuple[Task, str, list[Steps]]]:
    for category in MULTI_TURN_CATEGORIES:
        for task in bfcl_multi_turn_tasks(category, limit=limit_per_category):
            for label, steps in mutations(task):
                yield task, label, steps


def as_python(call: ToolCall) -> str:
    """A call in BFCL's execution syntax."""
    return f"{call.name}({', '.join(f'{k}={v!r}' for k, v in call.arguments.items())})"
