"""Environment configuration: what a registry manifest declares (pydantic: manifests are files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from inftool_env.errors import RegistrationError, first_invalid


class Limits(BaseModel):
    """When an episode is cut short (``truncated``). The two error counters are separate on purpose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(default=32, ge=1, description="assistant turns per episode")
    max_tool_calls: int = Field(default=128, ge=1)
    max_consecutive_errors: int = Field(default=5, ge=1, description="tool errors in a row")
    max_total_errors: int = Field(default=20, ge=1, description="tool errors in the whole episode")
    call_timeout_s: float = Field(default=30.0, gt=0)
    episode_timeout_s: float = Field(default=600.0, gt=0)


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    spec: str = Field(description="spec source: file (relative to the manifest), bfcl:CLASS, python:M:C, …")
    backend: str | None = None


Gate = Literal["format", "schema", "execution"]


Component = Literal["ast", "calls", "relevance", "state", "response"]


class RewardConfig(BaseModel):
    """Which gates must pass before correctness counts, in order, and which correctness components
    count (``basis``); ``weights`` turn all-or-nothing into partial credit. All are logged regardless."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gates: tuple[Gate, ...] = ("format", "schema", "execution")
    basis: tuple[Component, ...] = ("ast", "relevance", "state", "response")
    weights: dict[Component, float] = Field(default_factory=dict, description="partial credit per component")


class TaskSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="a JSONL file (relative to the manifest) or bfcl:<category>")
    domain: str | None = Field(default=None, description="bfcl: keep entries involving this class")
    limit: int | None = None


class EnvConfig(BaseModel):
    """Everything needed to build an environment; a registry manifest is this, as TOML."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    description: str = ""
    servers: list[ServerConfig] = Field(min_length=1)
    tasks: TaskSource
    user: str = "scripted"
    format: str = "openai"
    transport: Literal["inprocess", "stdio", "http"] = "inprocess"
    system_prompt: str = ""
    limits: Limits = Field(default_factory=Limits)
    reward: RewardConfig = Field(default_factory=RewardConfig)

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, servers: list[ServerConfig]) -> list[ServerConfig]:
        """Servers are kept by name: a second of one name silently replaced the first."""
        first: dict[str, int] = {}
        for index, server in enumerate(servers):
            if server.name in first:
                raise PydanticCustomError(
                    "duplicate_name", "duplicate server name {name} (servers.{first}.name and servers.{index}.name)",
                    {"name": repr(server.name), "first": first[server.name], "index": index},
                )  # fmt: skip
            first[server.name] = index
        return servers


NO_DEADLINE_S = 7 * 24 * 3600.0  # "no wall-clock limit", as a number the env's clock arithmetic takes


def trainer_driven(config: EnvConfig, episode_timeout_s: float | None = None) -> EnvConfig:
    """``config`` for episodes a trainer drives, with no wall-clock limit unless one is given. The env's
    own (``episode_timeout_s``, 600 s, for hung endpoints) counts the time between steps, which there is
    the trainer's generation: a long batch on a busy machine cut its episodes mid-reply, and they were
    scored as they stood. Each tool call keeps its own limit (``call_timeout_s``)."""
    limits = config.limits.model_copy(update={"episode_timeout_s": episode_timeout_s or NO_DEADLINE_S})
    return config.model_copy(update={"limits": limits})


def with_overrides(config: EnvConfig, overrides: Mapping[str, Any]) -> EnvConfig:
    """``config`` with fields replaced (``transport="http"``), validated as a manifest is: ``model_copy``
    took ``max_turns=3`` (a field of ``limits``) and any misspelling without a word. A mapping for a
    section (``limits={"max_turns": 3}``) replaces only the keys it names."""
    data = config.model_dump()
    for key, value in overrides.items():
        current = getattr(config, key, None)
        if isinstance(value, Mapping) and isinstance(current, BaseModel):
            value = {**current.model_dump(), **value}
        data[key] = value.model_dump() if isinstance(value, BaseModel) else value
    for key in overrides.keys() - EnvConfig.model_fields.keys():
        for section, part in config:
            if isinstance(part, BaseModel) and key in type(part).model_fields:
                raise RegistrationError(f"{config.id}: override {key}: a field of {section}; "
                                        f"pass {section}={{{key!r}: ...}}")  # fmt: skip
    try:
        return EnvConfig.model_validate(data)
    except ValidationError as exc:
        raise RegistrationError(f"{config.id}: override {first_invalid(exc)}") from None
