"""Spec ingestion: OpenAPI 2/3/3.1, OpenAI/BFCL function JSON and live MCP servers -> ToolSuite."""

from inftool_env.spec.ir import (
    HttpOperation,
    ParamBinding,
    SkippedOperation,
    Source,
    SpecWarning,
    ToolAnnotations,
    ToolSpec,
    ToolSuite,
)
from inftool_env.spec.loader import compile_document, load_spec, parse_text

__all__ = [
    "HttpOperation",
    "ParamBinding",
    "SkippedOperation",
    "Source",
    "SpecWarning",
    "ToolAnnotations",
    "ToolSpec",
    "ToolSuite",
    "compile_document",
    "load_spec",
    "parse_text",
]
