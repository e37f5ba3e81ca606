"""The embedded model on llama.cpp, for real: tool calls with token ids and raw logprobs, seeded
sampling, a whole Bookshelf episode whose token record matches what the model generated, and
`inftool eval bfcl --policy gguf:embedded` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings

import anyio
import pytest

from inftool_env import compile_spec
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_episode
from inftool_env.policies.chat import ChatPolicy
from inftool_env.tasks import Task
from tests.conftest import BOOKSHELF

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="the `gguf` extra (llama-cpp-python) is not installed"
)
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": CITY}}]
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def model():
    from inftool_env.llm.gguf import GGUFChat

    chat = GGUFChat("embedded", max_new_tokens=48)
    yield chat
    chat.close()


def test_it_calls_a_tool_with_token_ids_and_raw_logprobs(model):
    done = anyio.run(lambda: model.complete(ASK, tools=WEATHER, logprobs=True))
    call = done.message["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert done.finish_reason == "tool_calls" and done.token_ids[-1] == model.end_of_turn_id()
    assert len(done.token_ids) == len(done.logprobs) == done.usage.completion_tokens
    assert all(lp <= 0 for lp in done.logprobs) and sum(done.logprobs) > -5  # a confident, greedy answer
    again = anyio.run(lambda: model.complete(ASK, tools=WEATHER, logprobs=True))  # from the cached prefix
    assert again.token_ids == done.token_ids and again.logprobs == pytest.approx(done.logprobs, abs=0.1)
    model.prefix_cache = False  # every prompt evaluated whole: equal inputs, equal outputs
    try:
        cold = [anyio.run(lambda: model.complete(ASK, tools=WEATHER, logprobs=True)) for _ in range(2)]
    finally:
        model.prefix_cache = True
    assert cold[0].token_ids == cold[1].token_ids == done.token_ids and cold[0].logprobs == cold[1].logprobs


def test_sampling_is_seeded(model):
    poem = [{"role": "user", "content": "Write one line about the sea."}]

    def sample(seed):
        return anyio.run(lambda: model.complete(poem, temperature=1.0, seed=seed, max_tokens=16)).token_ids

    assert sample(7) == sample(7)
    assert len({tuple(sample(s)) for s in (1, 2, 3)}) > 1


def test_a_whole_episode_keeps_the_models_tokens_as_generated(model):
    task = Task(id="add", turns=["Please add the book 'Dune' by Frank Herbert to the shelf."])
    config = EnvConfig(id="t/Shelf-v0", servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
                       tasks=TaskSource(source="-"), limits=Limits(max_turns=3))  # fmt: skip
    policy = ChatPolicy(model, max_tokens=96)

    async def play():
        env = ToolEnv(config, [task], {"shelf": compile_spec(BOOKSHELF)})
        try:
            return await run_episode(env, lambda t: policy, seed=0)
        finally:
            await env.close()

    traj = anyio.run(play)
    assert traj.tokens_unavailable is None and len(policy.samples) == len(traj.turns) >= 1
    generated = [t for sample in policy.samples for t in sample.token_ids]
    assert [t for t, m in zip(traj.token_ids, traj.assistant_mask, strict=True) if m] == generated
    assert [lp for lp, m in zip(traj.logprobs, traj.assistant_mask, strict=True) if m] == [
        lp for sample in policy.samples for lp in sample.logprobs
    ]
    assert any(c.name == "addBook" for turn in traj.turns for c in turn.calls)


def test_inftool_eval_bfcl_runs_on_the_gguf_policy(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "inftool_env.cli", "eval", "bfcl", "--policy", "gguf:embedded?max_tokens=128",
         "--categories", "simple_python", "--limit", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    verdicts = [v for v in report["entries"] if v["category"] == "simple_python"]
    assert len(verdicts) == 3 and not any(e.startswith("policy") for v in verdicts for e in v["errors"])
    assert sum(v["valid"] for v in verdicts) >= 1  # the baseline passes some of these three
    assert "simple_python" in done.stdout


def test_the_demos_model_stage_runs_on_llama_cpp(tmp_path):
    from inftool_env.demo import embedded_model

    row = anyio.run(embedded_model, tmp_path, 1)
    assert row["backend"] == "gguf:embedded" and set(row["categories"]) == {"simple_python", "multiple", "parallel"}
    assert all(c["total"] == 1 for c in row["categories"].values())
    assert (tmp_path / "bfcl" / "report.json").is_file()


def test_a_build_with_llama_cpps_amx_kernels_is_warned_of_before_it_can_crash() -> None:
    from inftool_env.llm.gguf import warn_if_amx

    class Build:
        def __init__(self, info: bytes) -> None:
            self.llama_print_system_info = lambda: info

    with pytest.warns(RuntimeWarning, match="-mno-amx-int8"):
        warn_if_amx(Build(b"CPU : AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 | "))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_amx(Build(b"CPU : AVX2 = 1 | AVX512 = 1 | REPACK = 1 | "))
