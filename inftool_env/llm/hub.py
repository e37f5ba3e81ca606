"""Whether the Hugging Face hub answers, asked once and quickly: offline, transformers retries a hub id
for most of a minute (five retries with backoff, twice) before it fails, so a caller asks first."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

PROBE_TIMEOUT_S = 5.0


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None where the hub's endpoint (``HF_ENDPOINT``, else huggingface.co) answers at all, any HTTP
    status included; else why not. ``HF_HUB_OFFLINE`` set means unreachable without asking. Proxies
    set in the environment are used, as the hub's own client uses them."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()  # noqa: S310 - the hub's own endpoint
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:  # URLError is an OSError: DNS, refused, timed out
        reason = getattr(exc, "reason", exc)
        return f"{endpoint}: {reason}"
    return None
