"""What an episode leaves behind: every turn, every call with its result, and the reward breakdown.

A trajectory is always writable as JSON, whatever a model emitted: a lone surrogate (half of a UTF-16
pair, e.g. from a ``"\\ud800"`` escape in an endpoint's JSON) cannot be encoded as UTF-8, so it is
replaced by U+FFFD. The env does so as text enters an episode and notes it on the turn;
``Trajectory``'s JSON serialiser does it again as a last guard.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from inftool_env.errors import RolloutError

ErrorKind = Literal["unknown_tool", "schema", "execution", "timeout", "infrastructure"]
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> tuple[str, int]:
    """``text`` with each lone surrogate replaced by U+FFFD (well-formed pairs are joined), and how many."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return fixed, fixed.count(REPLACEMENT) - text.count(REPLACEMENT)
    return text, 0  # the same object: callers may test ``is``


def failure(exc: BaseException, kind: type[Exception]) -> str:
    """``Kind: message`` for a trajectory's ``error``: the exception's own name if it is one of ours
    (a ``RolloutError``), else ``kind`` naming the boundary, then the foreign exception's name."""
    text = clean_text(str(exc))[0][:2000]
    if isinstance(exc, RolloutError):
        return f"{type(exc).__name__}: {text}"
    return f"{kind.__name__}: {type(exc).__name__}: {text}"


def scrub(value: Any) -> tuple[Any, int]:
    """``value`` (JSON-like) with every string, keys included, cleaned; and how many surrogates went.
    Containers come back as they are unless something in them changed. Recursive: callers pass values
    of bounded depth (parsed arguments are; see parsing.base)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        total, out, changed = 0, {}, False
        for key, item in value.items():
            k, n = scrub(key)
            v, m = scrub(item)
            total, changed = total + n + m, changed or k is not key or v is not item
            out[k] = v
        return (out if changed else value), total
    if isinstance(value, list | tuple):
        cleaned = [scrub(item) for item in value]
        changed = any(v is not item for (v, _), item in zip(cleaned, value, strict=True))
        return ([v for v, _ in cleaned] if changed else value), sum(n for _, n in cleaned)
    return value, 0


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
    notes: list[str] = Field(default_factory=list, description="what the env changed in the turn's text, and why")


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
    replies_cut: int = Field(default=0, description="assistant replies the policy's token limit cut short")
    # Filled by policies that can give them; never re-rendered from text.
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    assistant_mask: list[int] | None = None
    tokens_unavailable: str | None = Field(default=None, description="why a local policy kept no token record")

    @model_serializer(mode="wrap")
    def _json_safe(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """The last guard: JSON output never holds a lone surrogate (UTF-8 cannot encode one)."""
        dumped = handler(self)
        return scrub(dumped)[0] if info.mode_is_json() else dumped
