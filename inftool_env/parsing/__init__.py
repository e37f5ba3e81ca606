"""Tool-call formats, each a prompt renderer and the matching parser, looked up by name."""

from __future__ import annotations

from inftool_env.errors import RegistrationError
from inftool_env.parsing.base import ParsedCall, ParseResult, ToolCallFormat
from inftool_env.parsing.bfcl_python import BfclPythonFormat
from inftool_env.parsing.json_formats import HermesFormat, Llama3Format, MistralFormat
from inftool_env.parsing.openai import OpenAIFormat

FORMATS: dict[str, type] = {
    "openai": OpenAIFormat,
    "hermes": HermesFormat,
    "qwen": HermesFormat,
    "llama3": Llama3Format,
    "mistral": MistralFormat,
    "bfcl": BfclPythonFormat,
}


def get_format(name: str) -> ToolCallFormat:
    if name not in FORMATS:
        raise RegistrationError(f"unknown tool-call format {name!r}; known: {', '.join(FORMATS)}")
    fmt: ToolCallFormat = FORMATS[name]()
    return fmt


__all__ = ["FORMATS", "ParseResult", "ParsedCall", "ToolCallFormat", "get_format"]
