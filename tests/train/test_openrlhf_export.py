"""``inftool export-openrlhf --tokenizer``: exact prompt counts by the trained model's tokenizer, without
OpenRLHF installed (tests/train/test_openrlhf.py checks the same counts against OpenRLHF's own executor)."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import sys
import threading
from typing import Any

import pytest

from inftool_env.cli import main
from inftool_env.train.openrlhf import EpisodeLabel, export_dataset

BOOKSHELF = "inftool/Bookshelf-v0"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("openrlhf-export") / "prompts.jsonl"
    export_dataset(BOOKSHELF, out, seed=7)
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    return gguf_tokenizer(embedded_gguf())


def test_an_exact_count_is_the_episodes_opening_as_openrlhf_tokenizes_it(rows, tokenizer):
    # The agent file's episode renders the env's opening (reset to the label's task and seed) and OpenRLHF's
    # executor tokenizes that text without special tokens: --tokenizer must count those very ids.
    from inftool_env.train.openrlhf.dataset import prompt_counter
    from inftool_env.train.openrlhf.episode import Episode

    count = prompt_counter("embedded")

    async def opening_ids(label: str) -> list[int]:
        episode = Episode(label, tokenizer, max_length=1 << 20)
        try:
            text = await episode.start()
        finally:
            await episode.close()
        return list(tokenizer(text=text, add_special_tokens=False)["input_ids"])

    assert len(rows) == 5
    for row in rows:
        ids = asyncio.run(opening_ids(row["label"]))
        assert count(row["prompt"]) == len(ids), EpisodeLabel.from_json(row["label"]).task.id


def test_the_warning_says_which_tokenizer_counted(rows, tokenizer, tmp_path, capsys):
    from inftool_env.train.openrlhf.dataset import estimated_tokens, prompt_counter

    count = prompt_counter("embedded")
    exact = max(count(row["prompt"]) for row in rows)
    out = tmp_path / "d.jsonl"
    common = ["export-openrlhf", BOOKSHELF, "--out", str(out), "--seed", "7"]
    tail = ("; OpenRLHF would cut them and every such episode fails with reward 0: train with MAX_LEN "
            "(--data.max_len) above that, with room for the episode's turns")  # fmt: skip

    assert main([*common, "--max-len", "500", "--tokenizer", "embedded"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"inftool: warning: {BOOKSHELF}: 5 of 5 prompts are too long for --max-len 500, up to {exact:,} tokens by "
        f"embedded{tail}"
    ]
    assert main([*common, "--max-len", "500"]) == 0  # no tokenizer: the estimate, said to be one
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    most = max(estimated_tokens(row["prompt"]) for row in rows)
    assert warnings == [
        f"inftool: warning: {BOOKSHELF}: 5 of 5 prompts are too long for --max-len 500, up to about {most:,} tokens "
        f"(estimated at 3.5 characters a token; pass --tokenizer for exact counts){tail}"
    ]
    # Exactly at the boundary: a prompt of max_len tokens leaves OpenRLHF no token to generate.
    assert main([*common, "--max-len", str(exact), "--tokenizer", "embedded"]) == 0
    assert f"up to {exact:,} tokens by embedded" in capsys.readouterr().err
    assert main([*common, "--max-len", str(exact + 1), "--tokenizer", "embedded"]) == 0
    assert "warning" not in capsys.readouterr().err


def _refused(argv: list[str], tmp_path: Any, capsys: Any, monkeypatch: Any) -> str:
    """``main``'s one-line refusal, before any row is made or any file written."""
    from inftool_env.train.openrlhf import dataset

    def no_work(*_: Any) -> None:
        raise AssertionError("the export began before refusing")

    monkeypatch.setattr(dataset, "_rows", no_work)
    out = tmp_path / "out" / "d.jsonl"
    assert main(["export-openrlhf", BOOKSHELF, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert not out.parent.exists() and "Traceback" not in err
    (line,) = err.splitlines()
    return line


@pytest.mark.parametrize("where", ["missing", "empty-folder", "not-a-tokenizer"])
def test_a_tokenizer_that_does_not_load_is_a_one_line_error(where, tmp_path, capsys, monkeypatch):
    pytest.importorskip("transformers")
    path = tmp_path / where
    if where == "empty-folder":
        path.mkdir()
    elif where == "not-a-tokenizer":
        path.mkdir()
        (path / "tokenizer_config.json").write_text("{not json")
    line = _refused(["--tokenizer", str(path)], tmp_path, capsys, monkeypatch)
    assert line.startswith(f"inftool: error: --tokenizer {path}: ")


def test_tokenizer_without_transformers_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed: importing it fails
    line = _refused(["--tokenizer", "embedded"], tmp_path, capsys, monkeypatch)
    assert line.startswith("inftool: error: --tokenizer needs transformers, in the `model` extra")
    assert line.endswith("pip install 'inftool-env[model]'")


# Renders an assistant turn only while it is the last message: earlier turns vanish as the conversation goes on.
FORGETFUL = (
    "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}<|im_start|>{{ m.role }}\n"
    "{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)


def test_a_chat_template_the_agent_file_refuses_is_refused_before_anything_is_written(
    tokenizer, tmp_path, capsys, monkeypatch
):
    # The export counted prompts by any template; the agent file refused it only on the cluster, every episode.
    forgetful = tmp_path / "forgetful"
    tokenizer.chat_template = FORGETFUL
    try:
        tokenizer.save_pretrained(forgetful)
    finally:
        del tokenizer.chat_template
    line = _refused(["--tokenizer", str(forgetful)], tmp_path, capsys, monkeypatch)
    assert line == (f"inftool: error: --tokenizer {forgetful}: the model's chat template renders earlier turns "
                    "differently once the conversation goes on (e.g. it drops past reasoning), so an episode is "
                    "not one token sequence; use a template that only appends; the agent file would refuse every "
                    "episode")  # fmt: skip


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends: connections are refused


@pytest.mark.parametrize("offline", [False, True])
def test_a_hub_id_is_refused_at_once_where_the_hub_cannot_answer(offline, tmp_path, capsys, monkeypatch):
    """Not the minute transformers spends retrying an unreachable hub: one quick question, then one line."""
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    endpoint = _closed_port()
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    line = _refused(["--tokenizer", "inftool-tests/no-such-model"], tmp_path, capsys, monkeypatch)
    assert line.startswith("inftool: error: --tokenizer inftool-tests/no-such-model: no such directory, not in the "
                           "Hugging Face cache, and the hub cannot be reached (")  # fmt: skip
    assert ("HF_HUB_OFFLINE is set" if offline else endpoint) in line


def test_a_hub_that_answers_is_reachable_whatever_its_status(monkeypatch):
    from inftool_env.llm.hub import hub_unreachable

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # the endpoint read from HF_ENDPOINT
        assert hub_unreachable() is None
        monkeypatch.setenv("HF_ENDPOINT", _closed_port())
        assert "refused" in (hub_unreachable() or "").lower()
    finally:
        server.shutdown()
        server.server_close()
