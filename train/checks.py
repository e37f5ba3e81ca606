"""What the trainer adapters check before any work, one copy for all: a text format that renders the
tools into the prompt, and a seed gymnasium will take."""

from __future__ import annotations

from inftool_env.errors import InftoolError
from inftool_env.parsing import get_format

DEFAULT_FORMAT = "hermes"  # Qwen2.5's own tool-call format: <tool_call>{json}</tool_call>


def renders_tools(name: str) -> bool:
    return bool(get_format(name).render_tools([{"type": "function", "function": {"name": "probe", "parameters": {}}}]))


def text_format(manifest_format: str, given: str | None) -> str:
    """The format a text trainer uses: the one given, else the manifest's where it is a text format (a user's
    manifest may say llama3), else hermes (the registry's manifests say ``openai``, which no text model writes)."""
    return given or (manifest_format if renders_tools(manifest_format) else DEFAULT_FORMAT)


def check_text_format(name: str, trainer: str = "OpenRLHF") -> None:
    """A trainer that generates text (OpenRLHF, SkyRL) needs a format that renders the tools into the
    prompt and parses calls out of the model's text (``openai`` structured calls need a server-side parser
    neither runs): with another, every prompt lists no tools and every reward is 0."""
    if not renders_tools(name):
        raise InftoolError(
            f"format {name!r} renders no tools into the prompt; {trainer} trains on text, so pick the tool-call "
            f"format of the model being trained: hermes (Qwen2.5, Hermes), llama3, mistral or bfcl"
        )


def check_seed(seed: int, where: str = "seed") -> None:
    """Gymnasium refuses a negative seed, but only once an episode starts: refuse it before any work."""
    if seed < 0:
        raise InftoolError(f"{where} must be 0 or more, not {seed}")
