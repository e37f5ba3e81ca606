"""Tasks: what the user wants, what is offered, where the world starts, and what counts as done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inftool_env.errors import SpecError, first_invalid

Category = Literal[
    "simple", "multiple", "parallel", "parallel_multiple", "multi_step", "multi_turn", "irrelevance", "relevance",
    "missing_param", "missing_function", "long_context",
]  # fmt: skip


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt field is an error, not a dropped value

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class BfclReference(BaseModel):
    """What BFCL's checker needs of an entry: its category as BFCL names it and, for the AST
    categories, the function docs as written and the possible answers (lists of options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    language: Literal["python", "java", "javascript"] = "python"
    docs: list[dict[str, Any]] = Field(default_factory=list)
    possible: list[dict[str, dict[str, list[Any]]]] = Field(default_factory=list)
    tool_names: dict[str, str] = Field(default_factory=dict, description="offered tool name -> BFCL's name")


class Task(BaseModel):
    """One episode's goal. ``turns`` are what a scripted user says, one per user turn (BFCL's
    multi-turn questions are exactly this); ``facts`` are hidden from the assistant and given by a
    goal-driven user only when asked; ``ground_truth`` holds the calls of each user turn."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ("ground_truht") is an error, not an empty one

    id: str
    category: Category = "multi_turn"
    turns: list[str] = Field(min_length=1)
    goal: str = ""
    system_prompt: str = Field(
        default="", description="added to the env's system message (BFCL's live entries have one)"
    )
    facts: dict[str, Any] = Field(default_factory=dict)
    servers: list[str] | None = Field(default=None, description="the env's servers this task uses (None: all)")
    excluded_tools: list[str] = Field(default_factory=list)
    initial_state: dict[str, Any] = Field(default_factory=dict, description="per server name")
    ground_truth: list[list[ToolCall]] = Field(default_factory=list)
    tools_added: dict[int, list[str]] = Field(
        default_factory=dict, description="tools withheld until this user turn (0-based), then offered"
    )
    one_shot: bool = Field(default=False, description="the episode ends after the assistant's first turn")
    bfcl: BfclReference | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    def initial_for(self, server: str) -> dict[str, Any] | None:
        """This task's initial state of one server; none (an empty one too) means the server's own seeding."""
        return self.initial_state.get(server) or None


def load_tasks(path: str | Path) -> list[Task]:
    """Tasks from a JSONL file; a bad line is a SpecError naming the file and the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read tasks: {exc}", source=str(path)) from None
    tasks = []
    seen: dict[str, int] = {}  # id -> line: an env finds a task by its id, so a second one is never reached
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tasks.append(Task.model_validate(json.loads(line)))
            if tasks[-1].id in seen:
                raise SpecError(f"line {number}: task id {tasks[-1].id!r} is also on line {seen[tasks[-1].id]}",
                                source=str(path))  # fmt: skip
            seen[tasks[-1].id] = number
        except json.JSONDecodeError as exc:
            raise SpecError(f"line {number}: invalid JSON ({exc.msg})", source=str(path)) from None
        except ValidationError as exc:
            raise SpecError(f"line {number}: {first_invalid(exc)}", source=str(path)) from None
    if not tasks:
        raise SpecError("no tasks in file", source=str(path))
    return tasks
