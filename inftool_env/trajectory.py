"""What an episode leaves behind: every turn, every call with its result, and the reward breakdown."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ErrorKind = Literal["unknown_tool", "schema", "execution", "timeout", "infrastructure"]


class CallRecord(BaseModel):
    name: str
    arguments: dict[str, Any]
    server: str | None = None
    result: str = ""
    is_error: bool = False
    error_kind: ErrorKind | None = None


class TurnRecord(BaseModel):
    """One assistant turn as parsed, and what it caused."""

    step: int
    content: str = ""
    parse_error: str | None = None
    calls: list[CallRecord] = Field(default_factory=list)
    user_reply: str | None = None


class RewardBreakdown(BaseModel):
    """Each gate's pass/fail and each correctness component, logged even when it does not count."""

    gates: dict[str, bool] = Field(default_factory=dict)
    components: dict[str, float | None] = Field(default_factory=dict)
    reward: float = 0.0
    correct: bool | None = Field(
        default=None, description="the task's own verdict (BFCL's where it applies), gates aside"
    )
    error_type: str | None = Field(default=None, description="the failing check, in BFCL's error-type terms")
    notes: list[str] = Field(default_factory=list)


class Trajectory(BaseModel):
    env_id: str
    task_id: str
    seed: int
    messages: list[dict[str, Any]] = Field(default_factory=list)
    turns: list[TurnRecord] = Field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    truncation_reason: str | None = None
    reward: RewardBreakdown | None = None
    error: str | None = Field(default=None, description="broken infrastructure, recorded once")
    user_usage: dict[str, int] = Field(default_factory=dict, description="a model-backed user's tokens, summed")
    # Filled by policies that can give them; never re-rendered from text.
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    assistant_mask: list[int] | None = None
    tokens_unavailable: str | None = Field(default=None, description="why a local policy kept no token record")
