"""The tool IR every spec format is normalised into (pydantic v2: it crosses process boundaries)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSON = Any
ParamLocation = Literal["path", "query", "header", "cookie", "body", "formData", "argument"]


class Source(BaseModel):
    """Where a tool came from: the file and the JSON pointer of its node."""

    model_config = ConfigDict(frozen=True)

    file: str
    pointer: str = ""


class ToolAnnotations(BaseModel):
    """MCP behaviour hints, derived from HTTP methods for OpenAPI tools."""

    model_config = ConfigDict(frozen=True)

    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None


class ParamBinding(BaseModel):
    """How one argument of the tool maps back onto the original operation.

    ``location`` "body" with ``name`` "" means the argument *is* the whole request body;
    "body" with a name is one property of a flattened object body.
    """

    model_config = ConfigDict(frozen=True)

    location: ParamLocation
    name: str


class HttpOperation(BaseModel):
    """The HTTP operation behind an OpenAPI tool (the stateful backend reads its shape)."""

    model_config = ConfigDict(frozen=True)

    method: str
    path: str
    success_status: str | None = None
    body_media_type: str | None = None


class ToolSpec(BaseModel):
    """One tool: the unit a model calls and an MCP server lists."""

    name: str = Field(description="Sanitised name, valid for MCP and OpenAI function calling.")
    original_name: str = Field(description="The name as the spec wrote it (dotted BFCL names, operationIds).")
    description: str = ""
    input_schema: dict[str, JSON] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, JSON] | None = None
    annotations: ToolAnnotations = Field(default_factory=ToolAnnotations)
    bindings: dict[str, ParamBinding] = Field(default_factory=dict)
    http: HttpOperation | None = None
    security: list[str] = Field(default_factory=list, description="Recorded, never required of a caller.")
    deprecated: bool = False
    source: Source

    def openai_tool(self) -> dict[str, JSON]:
        """The tool in OpenAI's ``tools=`` format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.input_schema},
        }


class SkippedOperation(BaseModel):
    """An operation that could not be compiled, reported with its reason (never silently dropped)."""

    model_config = ConfigDict(frozen=True)

    name: str
    pointer: str
    reason: str


class SpecWarning(BaseModel):
    """A spec mistake the compiler worked around (a renamed tool, a dropped argument); ``strict`` refuses it."""

    model_config = ConfigDict(frozen=True)

    name: str
    pointer: str
    message: str


class ToolSuite(BaseModel):
    """A named, versioned set of tools from one spec, plus what was skipped or worked around, and why."""

    name: str
    version: str = "0"
    description: str = ""
    format: str = Field(description="openapi-2.0, openapi-3.0, openapi-3.1, functions, mcp, python")
    source: str
    tools: list[ToolSpec]
    skipped: list[SkippedOperation] = Field(default_factory=list)
    warnings: list[SpecWarning] = Field(default_factory=list)

    def tool(self, name: str) -> ToolSpec:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]
