"""TorchChat's split of a batch into clusters of rows that share a long prefix, on the tiny randomly
initialised Qwen2 with the embedded model's tokenizer: a trainer's batch mixes tasks whose system
prompts and tools differ, so one padded batch would prefill every row to the longest prompt."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="the trainer needs torch and transformers (the `model` extra)",
)

from tests.train.tiny import tiny_qwen2, tool_entry  # noqa: E402

MAX_NEW = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def model(tiny: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


def _chat(model: Any, tokenizer: Any) -> Any:
    from inftool_env.train.grpo.chat import TorchChat

    return TorchChat(model, tokenizer, name="tiny", max_new_tokens=MAX_NEW)


@pytest.fixture(scope="module")
def prompts(model: Any, tokenizer: Any) -> tuple[list[int], list[int]]:
    """A long first-turn prompt (a music task offering many tools) and a short one from another source."""
    chat = _chat(model, tokenizer)
    tools = [tool_entry(f"{verb}_{thing}", "in the user's music library") for verb in ("get", "add", "remove", "rename")
             for thing in ("track", "album", "playlist", "artist")]  # fmt: skip
    long = chat.render([{"role": "system", "content": "You manage a music library for the user."},
                        {"role": "user", "content": "Add the album alb_7 to my playlist pl_2."}], tools)  # fmt: skip
    short = chat.render([{"role": "system", "content": "Answer briefly."},
                         {"role": "user", "content": "What is the capital of France?"}], None)  # fmt: skip
    assert len(long) > 5 * len(short) and len(short) > 20
    return long, short


class Forwards:
    """Every forward pass of the model: (rows, tokens per row)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        self.calls.append((int(ids.shape[0]), int(ids.shape[1])))

    @property
    def prefilled(self) -> int:
        """Prompt tokens run through the model (padding included): every pass of more than one token a row."""
        return sum(rows * width for rows, width in self.calls if width > 1)


@pytest.fixture
def forwards(model: Any) -> Iterator[Forwards]:
    seen = Forwards()
    handle = model.register_forward_pre_hook(seen.hook, with_kwargs=True)
    yield seen
    handle.remove()


def test_a_mixed_batch_gives_every_row_the_sample_of_its_group_generated_alone(
    model: Any, tokenizer: Any, prompts: tuple[list[int], list[int]]
) -> None:
    long, short = prompts
    batch = [long, short, short, long, long, short, long, short]  # two groups of 4, interleaved
    seeds = [11, 21, 22, 12, 13, 23, 14, 24]
    chat = _chat(model, tokenizer)
    together = chat._generate_rows(batch, seeds, 1.0, MAX_NEW)
    alone_long = _chat(model, tokenizer)._generate_rows([long] * 4, [11, 12, 13, 14], 1.0, MAX_NEW)
    alone_short = _chat(model, tokenizer)._generate_rows([short] * 4, [21, 22, 23, 24], 1.0, MAX_NEW)
    expected = dict(zip([11, 12, 13, 14, 21, 22, 23, 24], alone_long + alone_short, strict=True))
    for seed, (ids, lps) in zip(seeds, together, strict=True):
        want_ids, want_lps = expected[seed]
        assert ids == want_ids and len(ids) > 0
        assert lps == pytest.approx(want_lps, abs=1e-5, rel=1e-5)
    assert len({tuple(ids) for ids, _ in together}) > 2  # the seeds sampled different replies
    # The meter counts the call as one batch, and every token it returned.
    assert chat.batches == 1 and chat.tokens == sum(len(ids) for ids, _ in together)


def test_a_mixed_batch_prefills_each_group_once_not_every_row_padded_to_the_longest(
    model: Any, tokenizer: Any, prompts: tuple[list[int], list[int]], forwards: Forwards
) -> None:
    long, short = prompts
    batch = [long, short] * 4
    _chat(model, tokenizer)._generate_rows(batch, list(range(8)), 1.0, MAX_NEW)
    padded = len(batch) * len(long)  # one batch with no common prefix
    distinct = len(long) + len(short)  # each group's prompt once
    assert forwards.prefilled < padded / 3, (forwards.prefilled, padded, distinct)
    assert forwards.prefilled <= distinct + len(batch)  # each row's own last token beside its group's prefix


def test_a_group_sharing_one_prompt_stays_one_batch(
    model: Any, tokenizer: Any, prompts: tuple[list[int], list[int]], forwards: Forwards
) -> None:
    from inftool_env.train.grpo.chat import _clusters

    long, short = prompts
    _chat(model, tokenizer)._generate_rows([long] * 4, [1, 2, 3, 4], 1.0, MAX_NEW)
    # The shared prefix once at batch 1, then every pass at the group's 4 rows: no sub-batch.
    assert forwards.calls[0] == (1, len(long) - 1)
    assert {rows for rows, _ in forwards.calls[1:]} == {4}
    # A group's later turn (one shared history, each row's own short tail) stays whole too.
    tails = [long + tokenizer.encode(f"reply {i} of sample {i}", add_special_tokens=False) for i in range(4)]
    assert _clusters(tails, 48 * MAX_NEW) == [[0, 1, 2, 3]]
    # Two groups are split, but not where splitting saves too little to pay for another decode loop.
    mixed = [long, short, long, short]
    assert sorted(_clusters(mixed, 48 * MAX_NEW)) == [[0, 2], [1, 3]]
    assert _clusters(mixed, float("inf")) == [[0, 1, 2, 3]]
    assert _clusters(mixed, 4 * len(long)) == [[0, 1, 2, 3]]


def test_a_finished_row_leaves_the_batch_and_the_others_sample_as_before(
    model: Any, tokenizer: Any, prompts: tuple[list[int], list[int]], forwards: Forwards
) -> None:
    from inftool_env.train.grpo.chat import TorchChat

    long, _ = prompts
    seeds = [1, 2, 3, 4]
    free = _chat(model, tokenizer)._generate_rows([long] * 4, seeds, 1.0, MAX_NEW)
    # The token row 0 drew third ends a reply here: row 0 (and any row drawing it) finishes early.
    stop = free[0][0][2]

    class Stopping(TorchChat):
        def stop_ids(self) -> set[int]:
            return {stop}

    forwards.calls.clear()
    stopping = Stopping(model, tokenizer, name="tiny", max_new_tokens=MAX_NEW)
    out = stopping._generate_rows([long] * 4, seeds, 1.0, MAX_NEW)
    for (ids, lps), (want_ids, want_lps) in zip(out, free, strict=True):
        n = want_ids.index(stop) + 1 if stop in want_ids else len(want_ids)
        assert ids == want_ids[:n]
        assert lps == pytest.approx(want_lps[:n], abs=1e-5, rel=1e-5)
    assert len(out[0][0]) == 3
    # Each decode pass runs the rows still writing: none after its reply ended. (The first pass of one
    # token a row is the prompt's last token, after the shared prefix.)
    passes = [rows for rows, width in forwards.calls if width == 1][1:]
    running = [sum(len(ids) > k for ids, _ in out) for k in range(1, len(passes) + 1)]
    assert passes == running and passes[-1] < 4


def test_a_batch_given_up_stops_at_its_next_token_and_runs_no_further_cluster(
    model: Any, tokenizer: Any, prompts: tuple[list[int], list[int]]
) -> None:
    from inftool_env.llm.local import _STOP

    long, short = prompts
    batch, stop = [long, short] * 4, threading.Event()
    handle = model.register_forward_pre_hook(lambda *_: stop.set())  # given up during the first cluster
    token = _STOP.set(stop)
    try:
        chat = _chat(model, tokenizer)
        out = chat._generate_rows(batch, list(range(8)), 1.0, MAX_NEW)
    finally:
        _STOP.reset(token)
        handle.remove()
    made = [len(ids) for ids, _ in out]
    assert sorted(made) == [0] * 4 + [1] * 4  # the first cluster's first token, then nothing
    assert len({len(batch[i]) for i, n in enumerate(made) if n}) == 1  # and that was one group
    assert chat.tokens == 4 and chat.batches == 1
