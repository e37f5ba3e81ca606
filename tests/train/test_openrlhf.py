"""OpenRLHF 0.11.2 on our envs, through its own machinery: its engine's loader builds the
``AgentExecutor`` from our agent file's path, its ``MultiTurnAgentExecutor`` runs the episodes against an
engine with vLLM's ``generate(token_ids, sampling_params)`` surface — the embedded model on llama.cpp, or
scripted generations — on the real Bookshelf MCP server with the gated reward. Checked: the reward equals
``inftool eval``'s for the same actions; the ids OpenRLHF trains on are the sampled ids plus the env's
tokens, the action mask covering exactly the sampled ones; the dataset's prompt is the env's opening."""

from __future__ import annotations

import argparse
import ast
import asyncio
import copy
import importlib.util
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from inftool_env.errors import InftoolError
from inftool_env.train.openrlhf import AGENT_FILE, EpisodeLabel, add_commands, export_dataset

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openrlhf") is None,
    reason="OpenRLHF is not installed (pip install --no-deps openrlhf==0.11.2 aiohttp pylatexenc)",
)
BOOKSHELF = "inftool/Bookshelf-v0"


# -- OpenRLHF's side ------------------------------------------------------------------------------
def openrlhf_loader() -> Any:
    """OpenRLHF's own ``_load_agent_executor``, taken from its vLLM engine module's source: that module
    imports vLLM and Ray at the top, which a CPU test cannot, so the function alone is compiled."""
    import openrlhf.utils.agent as agent

    source = Path(agent.__file__).parents[1] / "trainer" / "ray" / "vllm_engine.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_load_agent_executor"]
    namespace: dict[str, Any] = {"AgentExecutorBase": agent.AgentExecutorBase}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(source), "exec"), namespace)
    return namespace["_load_agent_executor"]


@dataclass
class SamplingParams:
    """The fields of vLLM's SamplingParams that OpenRLHF's rollout sets (samples_generator.py)."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int | None = None
    min_tokens: int = 1
    skip_special_tokens: bool = False
    logprobs: int | None = 1


@dataclass
class Generated:
    prompt: list[int]
    ids: list[int]
    logprobs: list[float]


class Engine:
    """What OpenRLHF's executor calls on its vLLM actor: ``generate`` with token ids in, a
    RequestOutput-shaped result out. ``sample(prompt, params)`` makes the ids and logprobs."""

    def __init__(self, tokenizer: Any, sample: Any) -> None:
        self.tokenizer, self.sample = tokenizer, sample
        self.calls: list[Generated] = []
        self.by_episode: dict[Any, list[Generated]] = {}  # each execute() runs as its own asyncio task

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        assert multi_modal_data is None
        ids, lps, finish = await self.sample(list(prompt_token_ids), sampling_params)
        self.calls.append(Generated(list(prompt_token_ids), ids, lps))
        self.by_episode.setdefault(asyncio.current_task(), []).append(self.calls[-1])
        text = self.tokenizer.decode(ids, skip_special_tokens=sampling_params.skip_special_tokens)
        logprobs = [{t: SimpleNamespace(logprob=lp)} for t, lp in zip(ids, lps, strict=True)]
        out = SimpleNamespace(token_ids=ids, text=text, finish_reason=finish, logprobs=logprobs)
        return SimpleNamespace(outputs=[out])


async def rollouts(
    executor: Any, row: dict[str, Any], tokenizer: Any, engine: Any, *, n: int, max_length: int,
    max_new_tokens: int | None = None,
):  # fmt: skip
    """A GRPO group as OpenRLHF's engine runs it (``generate_responses``): ``n`` executions of one
    prompt, concurrently (``max_new_tokens``: ``--rollout.max_new_tokens``)."""
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    return await asyncio.gather(*(
        executor.execute(prompt=prompt, label=row["label"], sampling_params=SamplingParams(max_tokens=max_new_tokens),
                         max_length=max_length, hf_tokenizer=tokenizer, llm_engine=engine, images=None)
        for _ in range(n)
    ))  # fmt: skip


# -- our side -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def executor():
    from openrlhf.utils.agent import MultiTurnAgentExecutor

    loaded = openrlhf_loader()(str(AGENT_FILE))
    assert type(loaded).__name__ == "AgentExecutor" and isinstance(loaded, MultiTurnAgentExecutor)
    return loaded


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("openrlhf") / "prompts.jsonl"
    summary = export_dataset(BOOKSHELF, out, seed=100)
    assert summary.rows == {BOOKSHELF: 5}
    return {EpisodeLabel.from_json(r["label"]).task.id: r for r in map(json.loads, out.read_text().splitlines())}


@pytest.fixture(scope="module")
def tokenizer():
    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    return gguf_tokenizer(embedded_gguf())


async def replay_reward(row: dict[str, Any], actions: list[str]) -> Any:
    """What ``inftool eval`` gives the same actions: its runner, a scripted policy saying them, the
    label's task and seed, the env in the label's format."""
    from inftool_env.eval.runner import evaluate
    from inftool_env.llm.scripted import ScriptedChat
    from inftool_env.policies.chat import ChatPolicy
    from inftool_env.registration import make

    label = EpisodeLabel.from_json(row["label"])
    env = make(label.env_id, format=label.format)
    try:
        _, (trajectory,) = await evaluate(env, lambda task: ChatPolicy(ScriptedChat(actions), tools="prompt"),
                                          tasks=[label.task], seed=label.seed, progress=False)  # fmt: skip
    finally:
        await env.close()
    return trajectory


def check_tokens(result: dict[str, Any], calls: list[Generated], tokenizer: Any) -> list[str]:
    """The ids OpenRLHF trains on are the sampled ids, exactly, with the env's tokens between them; the
    mask it builds from ``action_ranges`` covers exactly the sampled ones. Returns the env's texts."""
    ids, ranges = result["observation_tokens"], result["action_ranges"]
    assert len(ranges) == len(calls)
    mask = [0] * len(ids)  # as samples_generator._process_response_into_experience builds it
    for start, end in ranges:
        mask[start:end] = [1] * (end - start)
    assert sum(mask) == sum(len(c.ids) for c in calls)
    env_texts = []
    for i, ((start, end), call) in enumerate(zip(ranges, calls, strict=True)):
        assert call.prompt == ids[:start]  # token in: each turn's prompt is the episode so far
        assert ids[start:end] == call.ids  # token out: kept as sampled
        assert result["rollout_log_probs"][start:end] == call.logprobs
        following = ids[end : ranges[i + 1][0]] if i + 1 < len(ranges) else ids[end:]
        text = tokenizer.decode(following, skip_special_tokens=False)
        # The env's tokens are its text tokenized on their own, never pieces of the model's output.
        assert tokenizer(text=text, add_special_tokens=False)["input_ids"] == following
        env_texts.append(text)
    assert not any(result["rollout_log_probs"][i] for i, m in enumerate(mask) if not m)
    return env_texts


def actions_of(result: dict[str, Any], tokenizer: Any) -> list[str]:
    ids = result["observation_tokens"]
    return [tokenizer.decode(ids[s:e], skip_special_tokens=True) for s, e in result["action_ranges"]]


# -- the embedded model ---------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="the `gguf` extra is not installed")
def test_a_group_of_real_episodes_through_openrlhfs_executor(executor, rows, tokenizer):
    from inftool_env.llm.gguf import GGUFChat

    model = GGUFChat("embedded", max_new_tokens=256)

    async def sample(prompt: list[int], params: Any) -> tuple[list[int], list[float], str]:
        done = await model.complete_tokens(prompt, temperature=params.temperature, max_tokens=params.max_tokens)
        stopped = bool(done.token_ids) and done.token_ids[-1] in model.stop_ids()
        return list(done.token_ids or []), list(done.logprobs or []), "stop" if stopped else "length"

    row = rows["bookshelf-register-and-borrow"]  # two user turns, a tool call in each
    engine = Engine(tokenizer, sample)
    try:
        (first,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=4096))
    finally:
        model.close()
    assert len(first["action_ranges"]) >= 2, "expected a tool call, then more after its result"
    env_texts = check_tokens(first, engine.calls, tokenizer)
    assert env_texts[0].startswith("\n<|im_start|>user\n<tool_response>") and "<|im_start|>assistant\n" in env_texts[0]
    assert first["prompt"] == tokenizer.decode(first["observation_tokens"][: first["action_ranges"][0][0]])

    trajectory = asyncio.run(replay_reward(row, actions_of(first, tokenizer)))
    assert first["reward"] == trajectory.reward.reward == first["scores"]
    logs = first["extra_logs"]
    assert {k: logs[f"gate_{k}"] for k in ("format", "schema", "execution")} == {
        k: float(v) for k, v in trajectory.reward.gates.items()
    }
    assert logs["turns"] == len(trajectory.turns) == len(first["action_ranges"])
    assert logs["tool_calls"] >= 1


# -- scripted generations (the LLM boundary faked; everything else real) ------------------------
def scripted(tokenizer: Any, replies: list[str], *, end: str = "<|im_end|>", finish: str = "stop") -> Any:
    """Each episode (its own asyncio task) says ``replies`` in order."""
    queues: dict[Any, list[str]] = {}

    async def sample(prompt: list[int], params: Any) -> tuple[list[int], list[float], str]:
        queue = queues.setdefault(asyncio.current_task(), list(replies))
        ids = tokenizer(text=queue.pop(0) + end, add_special_tokens=False)["input_ids"]
        return ids, [-0.5] * len(ids), finish

    return sample


def call(tool: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': tool, 'arguments': arguments})}\n</tool_call>"


def test_a_scripted_multi_turn_task_scores_like_inftool_eval(executor, rows, tokenizer):
    row = rows["bookshelf-register-and-borrow"]
    replies = [
        call("registerMember", name="Ada Lovelace", email="ada@example.com"),
        "You are registered.",
        call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-03-01"),
        "Done: boo_2 is yours until 2025-03-01.",
    ]
    engine = Engine(tokenizer, scripted(tokenizer, replies))
    (result,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=8192))
    env_texts = check_tokens(result, engine.calls, tokenizer)
    # Tool result, the user's second turn, tool result; nothing after the last answer.
    assert "<tool_response>" in env_texts[0] and "Now lend me book boo_2" in env_texts[1]
    assert "<tool_response>" in env_texts[2] and env_texts[3] == ""
    trajectory = asyncio.run(replay_reward(row, replies))
    assert result["reward"] == trajectory.reward.reward == 1.0
    assert result["extra_logs"]["state"] == result["extra_logs"]["correct"] == 1.0


def test_a_group_of_rollouts_are_isolated_episodes(executor, rows, tokenizer):
    from inftool_env.env.config import NO_DEADLINE_S
    from inftool_env.train.openrlhf.episode import base_env

    # OpenRLHF's generation between steps is not the env's to bound (no 600 s cut mid-batch).
    assert base_env("inftool/Bookshelf-v0", "hermes").config.limits.episode_timeout_s == NO_DEADLINE_S
    row = rows["bookshelf-add"]
    replies = [call("addBook", title="Dune", author="Frank Herbert", genre="fiction", copies=2), "Added."]
    engine = Engine(tokenizer, scripted(tokenizer, replies))
    group = asyncio.run(rollouts(executor, row, tokenizer, engine, n=3, max_length=8192))
    for result, calls in zip(group, engine.by_episode.values(), strict=True):
        env_texts = check_tokens(result, calls, tokenizer)
        # Each episode adds the book to its own fresh catalogue: the same new id in every one.
        assert '"id": "boo_7"' in env_texts[0].replace('":"', '": "')
        assert result["reward"] == 1.0
    assert len({tuple(r["observation_tokens"]) for r in group}) == 1


def test_a_wrong_call_gets_the_same_partial_reward_as_eval(executor, rows, tokenizer):
    row = rows["bookshelf-copies"]
    replies = [call("updateBook", bookId="boo_3", copies=4), "Updated."]  # wrong number of copies
    engine = Engine(tokenizer, scripted(tokenizer, replies))
    (result,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=8192))
    check_tokens(result, engine.calls, tokenizer)
    trajectory = asyncio.run(replay_reward(row, replies))
    assert result["reward"] == trajectory.reward.reward == 0.0
    assert result["extra_logs"]["gate_execution"] == 1.0 and result["extra_logs"]["correct"] == 0.0


def test_a_turn_that_stops_on_another_token_is_closed_by_the_template(executor, rows, tokenizer):
    row = rows["bookshelf-remove"]
    replies = [call("removeBook", bookId="boo_1"), "Removed."]
    engine = Engine(tokenizer, scripted(tokenizer, replies, end="<|endoftext|>"))
    (result,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=8192))
    env_texts = check_tokens(result, engine.calls, tokenizer)
    assert env_texts[0].startswith("<|im_end|>\n<|im_start|>user\n<tool_response>")
    assert result["reward"] == asyncio.run(replay_reward(row, replies)).reward.reward == 1.0


def test_an_episode_out_of_context_ends_with_no_reward(executor, rows, tokenizer):
    row = rows["bookshelf-remove"]
    engine = Engine(tokenizer, scripted(tokenizer, ['<tool_call>\n{"name": "removeBook", "argu'], end="",
                                        finish="length"))  # fmt: skip
    (result,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=8192))
    check_tokens(result, engine.calls, tokenizer)
    assert result["reward"] == 0.0 and result["extra_logs"]["context_exhausted"] == 1.0
    assert result["extra_logs"]["prompt_too_long"] == 0.0  # the prompt fitted: the model ran out, not the prompt
    assert len(result["action_ranges"]) == 1


@pytest.mark.parametrize("max_new_tokens", [None, 128], ids=["budget-left-over", "max-new-tokens"])
def test_a_prompt_too_long_for_max_length_fails_its_episodes_loudly(
    executor, rows, tokenizer, caplog, monkeypatch, max_new_tokens
):
    # OpenRLHF would keep the prompt's tail (the system message's head and tools cut) and warn in passing;
    # raising would end the whole run, so the episode fails unplayed, said in one error and in extra_logs.
    from inftool_env.train.openrlhf import episode

    monkeypatch.setattr(episode, "_TOO_LONG_LOGGED", set())
    row = rows["bookshelf-remove"]
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    tokens = len(tokenizer(text=prompt, add_special_tokens=False)["input_ids"])
    # Without max_new_tokens OpenRLHF keeps max_length - 1 of the prompt; with it, max_length - max_new_tokens.
    max_length = 512 if max_new_tokens is None else tokens + 64
    budgets: list[int] = []

    async def sample(prompt_ids: list[int], params: Any) -> tuple[list[int], list[float], str]:
        budgets.append(params.max_tokens)
        ids = tokenizer(text=call("removeBook", bookId="boo_1") + "<|im_end|>", add_special_tokens=False)["input_ids"]
        return ids[: params.max_tokens], [-0.5] * min(len(ids), params.max_tokens), "length"

    engine = Engine(tokenizer, sample)
    with caplog.at_level(logging.ERROR, logger=episode.__name__):
        group = asyncio.run(rollouts(executor, row, tokenizer, engine, n=2, max_length=max_length,
                                     max_new_tokens=max_new_tokens))  # fmt: skip
    for result in group:
        assert result["reward"] == 0.0 and len(result["action_ranges"]) == 1
        logs = result["extra_logs"]
        assert logs["prompt_too_long"] == logs["context_exhausted"] == 1.0
        assert logs["turns"] == logs["tool_calls"] == 0.0  # the env never saw what the model said to a cut prompt
    assert budgets == [1, 1]  # no generation spent on an episode that is not played
    (record,) = [r for r in caplog.records if r.name == episode.__name__]  # once per task, not per rollout
    room = max_length - (max_new_tokens or 1)
    message = record.getMessage()
    assert record.levelno == logging.ERROR and "\n" not in message
    assert message.startswith(f"{BOOKSHELF} task bookshelf-remove: its opening prompt is {tokens:,} tokens, ")
    assert f"max_length (--data.max_len) {max_length:,} leaves it ({room:,}" in message
    assert f"raise --data.max_len (MAX_LEN in launch_grpo.sh) above {tokens + (max_new_tokens or 1) - 1:,}" in message


def test_a_call_marker_the_tokenizer_flags_special_reaches_the_parser(executor, rows, tokenizer):
    # As Mistral's [TOOL_CALLS] is, and <tool_call> in some Hermes-style models: decoding with
    # skip_special_tokens would hand the env the call's JSON without its markers.
    marked = copy.deepcopy(tokenizer)
    marked.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>"]})
    assert marked.decode(marked(text=call("removeBook"))["input_ids"], skip_special_tokens=True).startswith("\n{")
    row = rows["bookshelf-remove"]
    replies = [call("removeBook", bookId="boo_1"), "Removed."]
    engine = Engine(marked, scripted(marked, replies))
    (result,) = asyncio.run(rollouts(executor, row, marked, engine, n=1, max_length=8192))
    check_tokens(result, engine.calls, marked)
    assert result["extra_logs"]["tool_calls"] == result["extra_logs"]["gate_format"] == 1.0
    assert result["reward"] == asyncio.run(replay_reward(row, replies)).reward.reward == 1.0


@pytest.mark.parametrize(("transport", "connections"), [("inprocess", 1), ("stdio", 3)])
def test_rollouts_reuse_their_process_connections(executor, rows, tokenizer, monkeypatch, transport, connections):
    # An episode's env is a worker spawned once per concurrent rollout and kept: one connection (tools
    # listing, output schemas compiled) for the in-process server, one server subprocess per worker over stdio.
    from inftool_env.env import core
    from inftool_env.registration import make
    from inftool_env.train.openrlhf import episode

    env = make(BOOKSHELF, trainer_driven=True, format="hermes", transport=transport)
    monkeypatch.setitem(episode._BASES, (BOOKSHELF, "hermes"), env)
    opened, worker_of_each_episode = [], []
    open_client, reset = core.open_client, core.ToolEnv.reset

    def counted_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return open_client(*args, **kwargs)

    async def counted_reset(self: Any, **kwargs: Any) -> Any:
        worker_of_each_episode.append(self)
        return await reset(self, **kwargs)

    monkeypatch.setattr(core, "open_client", counted_open)
    monkeypatch.setattr(core.ToolEnv, "reset", counted_reset)
    row = rows["bookshelf-add"]
    replies = [call("addBook", title="Dune", author="Frank Herbert", genre="fiction", copies=2), "Added."]

    async def two_groups() -> list[dict[str, Any]]:
        engine = Engine(tokenizer, scripted(tokenizer, replies))
        first = await rollouts(executor, row, tokenizer, engine, n=3, max_length=8192)
        return first + await rollouts(executor, row, tokenizer, engine, n=3, max_length=8192)

    results = asyncio.run(two_groups())
    assert [r["reward"] for r in results] == [1.0] * 6  # a reused worker's episode is as fresh as a new one's
    assert len(worker_of_each_episode) == 6 and len(set(map(id, worker_of_each_episode))) == 3
    assert len(opened) == connections
    if transport == "inprocess":  # the idle workers hold no episode's state (the servers live here)
        assert sum(server.live_episodes for server in env.servers.values()) == 0


BROKEN_TEMPLATE = (  # drops what earlier assistant turns said
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and not loop.last %}(said){% else %}{{ m.content }}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_that_cannot_continue_an_episode_fails_before_any_generation(executor, rows, tokenizer):
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = BROKEN_TEMPLATE
    engine = Engine(broken, scripted(broken, [call("removeBook", bookId="boo_1"), "Removed."]))
    with pytest.raises(InftoolError, match="renders earlier turns differently"):
        asyncio.run(rollouts(executor, rows["bookshelf-remove"], broken, engine, n=2, max_length=8192))
    assert engine.calls == []  # found at the episode's start: no generation spent


# -- the dataset and its command ------------------------------------------------------------------
def test_the_dataset_carries_the_task_and_the_envs_opening(rows, tokenizer):
    row = rows["bookshelf-add"]
    label = EpisodeLabel.from_json(row["label"])
    assert (label.env_id, label.format, row["datasource"]) == (BOOKSHELF, "hermes", BOOKSHELF)
    assert sorted(EpisodeLabel.from_json(r["label"]).seed for r in rows.values()) == list(range(100, 105))
    system, user = row["prompt"]
    assert system["role"] == "system" and "<tools>" in system["content"] and '"addBook"' in system["content"]
    assert user == {"role": "user", "content": label.task.turns[0]}


@pytest.mark.parametrize(("seed", "why"), [("-3", "must be 0 or more, not -3"), ("true", "valid integer")])
def test_a_label_with_a_negative_or_non_integer_seed_is_refused_when_read(seed, why):
    # Gymnasium would refuse a negative seed only at the episode's reset, mid-rollout; JSON true is no seed.
    label = f'{{"env_id": "{BOOKSHELF}", "seed": {seed}, "task": {{"id": "t", "turns": ["hi"]}}}}'
    with pytest.raises(
        InftoolError, match=f"^an OpenRLHF label must be an inftool EpisodeLabel .*; seed: .*{why}"
    ) as exc:
        EpisodeLabel.from_json(label)
    assert "\n" not in str(exc.value)
    assert EpisodeLabel.from_json(label.replace(f'"seed": {seed}', '"seed": 0')).seed == 0


def test_bad_labels_and_formats_are_clear_errors(tmp_path):
    with pytest.raises(InftoolError, match="EpisodeLabel.*env_id"):
        EpisodeLabel.from_json('{"task": {"id": "t", "turns": ["hi"]}}')
    with pytest.raises(InftoolError, match="format 'openai' renders no tools"):
        export_dataset(BOOKSHELF, tmp_path / "x.jsonl", format="openai")
    with pytest.raises(InftoolError, match="tasks of one environment"):
        export_dataset([BOOKSHELF, "inftool/YelpFusion-v0"], tmp_path / "x.jsonl", tasks=tmp_path / "t.jsonl")


def test_the_export_command(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    out = tmp_path / "d.jsonl"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "only", "category": "simple", "turns": ["Remove book boo_1."]}) + "\n")
    args = parser.parse_args(["export-openrlhf", BOOKSHELF, "--out", str(out), "--tasks", str(tasks)])
    assert args.run(args) == 0
    (row,) = map(json.loads, out.read_text().splitlines())
    assert EpisodeLabel.from_json(row["label"]).task.id == "only"
    printed = capsys.readouterr().out
    assert f"{BOOKSHELF}     1" in printed and str(AGENT_FILE) in printed
    assert f"{out}   (rows written: 1)" in printed


def test_the_export_warns_once_per_env_about_prompts_over_max_len(tmp_path, capsys, rows, tokenizer):
    from inftool_env.train.openrlhf import LAUNCH_SCRIPT
    from inftool_env.train.openrlhf.dataset import DEFAULT_MAX_LEN, estimated_tokens

    # The estimate (no tokenizer at export) is near the real count: Qwen2.5's on Bookshelf's ~1k-token prompts.
    for row in rows.values():
        text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        real = len(tokenizer(text=text, add_special_tokens=False)["input_ids"])
        assert 0.8 * real <= estimated_tokens(row["prompt"]) <= 1.2 * real
    assert f"MAX_LEN=${{MAX_LEN:-{DEFAULT_MAX_LEN}}}" in LAUNCH_SCRIPT.read_text()  # the default warned against

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    out = tmp_path / "d.jsonl"
    args = parser.parse_args(["export-openrlhf", BOOKSHELF, "--out", str(out), "--max-len", "500"])
    assert args.run(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    most = max(estimated_tokens(json.loads(line)["prompt"]) for line in out.read_text().splitlines())
    assert warnings == [
        f"inftool: warning: {BOOKSHELF}: 5 of 5 prompts are too long for --max-len 500, up to about {most:,} tokens "
        "(estimated at 3.5 characters a token; pass --tokenizer for exact counts); OpenRLHF would cut them and every "
        "such episode fails with reward 0: train with MAX_LEN (--data.max_len) above that, with room for the "
        "episode's turns"
    ]
    args = parser.parse_args(["export-openrlhf", BOOKSHELF, "--out", str(out)])  # the default, 8192
    assert args.run(args) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_exports_exact_count_is_what_the_executor_generates_from(executor, rows, tokenizer, monkeypatch):
    # --tokenizer counts a row's prompt as the agent file renders it and OpenRLHF tokenizes it: the ids the
    # engine is given. A prompt of max_len tokens or more fails unplayed, and just those the export warns about.
    from inftool_env.train.openrlhf import episode
    from inftool_env.train.openrlhf.dataset import _long_prompts, prompt_counter

    monkeypatch.setattr(episode, "_TOO_LONG_LOGGED", set())
    count = prompt_counter("embedded")

    async def sample(prompt_ids: list[int], params: Any) -> tuple[list[int], list[float], str]:
        return [tokenizer.eos_token_id] * params.max_tokens, [-0.5] * params.max_tokens, "length"

    for task_id, row in rows.items():
        tokens = count(row["prompt"])
        for max_length, too_long in [(tokens + 1, 0.0), (tokens, 1.0)]:
            engine = Engine(tokenizer, sample)
            (result,) = asyncio.run(rollouts(executor, row, tokenizer, engine, n=1, max_length=max_length))
            # The whole prompt when it fits; its last max_length - 1 tokens when OpenRLHF cut it.
            assert len(engine.calls[0].prompt) == min(tokens, max_length - 1), task_id
            assert result["extra_logs"]["prompt_too_long"] == too_long, (task_id, max_length)
            warned = _long_prompts([row], max_length, count, "embedded")
            assert (warned is not None) == bool(too_long), (task_id, max_length)


def test_the_export_command_refuses_a_negative_seed_in_one_line(capsys):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["export-openrlhf", BOOKSHELF, "--seed", "-5"])
    assert "argument --seed: expected a whole number of 0 or more, not '-5'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ({"env_ids": "inftool/BfclTravelAPI-v0"}, "BFCL's, and BFCL is for evaluation only"),
        ({"seed": -5}, "^seed must be 0 or more, not -5$"),
        ({"out": "."}, "a folder, where the dataset file is to be written"),
        ({"env_ids": [BOOKSHELF, BOOKSHELF]}, "inftool/Bookshelf-v0 is given twice"),
    ],
    ids=["bfcl", "negative-seed", "out-is-a-folder", "env-twice"],
)
def test_the_export_refuses_before_any_work(args, why, tmp_path, monkeypatch):
    from inftool_env.train.openrlhf import dataset

    def no_work(*_: Any) -> None:
        raise AssertionError("the export began before refusing")

    monkeypatch.setattr(dataset, "_rows", no_work)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InftoolError, match=why):
        export_dataset(**({"env_ids": BOOKSHELF, "out": "d.jsonl"} | args))
    assert list(tmp_path.iterdir()) == []


def test_bfcl_tasks_given_to_another_env_are_refused(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    bfcl = {"id": "simple_python_0", "turns": ["hi"], "provenance": {"source": "bfcl-eval 2026.3.23"}}
    tasks.write_text(json.dumps(bfcl) + "\n")
    with pytest.raises(InftoolError, match="^inftool/Bookshelf-v0: task simple_python_0 is BFCL's"):
        export_dataset(BOOKSHELF, tmp_path / "d.jsonl", tasks=tasks)


def test_the_launch_scripts_train_batch_follows_prompts_and_group(tmp_path):
    """One optimizer step per rollout batch: TRAIN_BATCH = PROMPTS * GROUP unless given."""
    from inftool_env.train.openrlhf import LAUNCH_SCRIPT

    argv = tmp_path / "argv"
    for name, body in {"python": f'printf "%s\\n" "$@" >> {argv}; echo agent.py', "ray": "exit 0"}.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)

    def batch(**env: str) -> str:
        argv.unlink(missing_ok=True)
        subprocess.run(["bash", str(LAUNCH_SCRIPT)], check=True, capture_output=True,
                       env={"PATH": f"{tmp_path}:/usr/bin:/bin", "DATA": "d.jsonl", **env})  # fmt: skip
        lines = argv.read_text().splitlines()
        return lines[lines.index("--train.batch_size") + 1]

    assert batch() == "256"
    assert batch(GROUP="4", PROMPTS="16") == "64"
    assert batch(GROUP="4", TRAIN_BATCH="32") == "32"


@pytest.mark.parametrize(
    ("running", "train_rc", "calls"),
    [
        (False, 0, ["status", "start --head --num-gpus 8", "train", "stop"]),
        (False, 3, ["status", "start --head --num-gpus 8", "train", "stop"]),  # a failed run stops it too
        (True, 0, ["status", "train"]),  # someone's cluster: used, left running
    ],
    ids=["started-then-stopped", "stopped-after-a-failure", "a-running-cluster-left-alone"],
)
def test_the_launch_script_stops_only_the_ray_head_it_started(tmp_path, running, train_rc, calls):
    from inftool_env.train.openrlhf import LAUNCH_SCRIPT

    log = tmp_path / "calls"
    stubs = {
        "ray": f'echo "$*" >> {log}; [ "$1" = status ] && exit {0 if running else 1}; exit 0',
        "python": f'if [ "$1" = -m ]; then echo train >> {log}; exit {train_rc}; fi; echo agent.py',
    }
    for name, body in stubs.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    done = subprocess.run(["bash", str(LAUNCH_SCRIPT)], capture_output=True, text=True,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin", "DATA": "d.jsonl"})  # fmt: skip
    assert done.returncode == train_rc, done.stderr  # the training's status, not the cleanup's
    assert log.read_text().splitlines() == calls


def test_a_manifest_given_by_a_relative_path_is_labelled_absolute(tmp_path, monkeypatch):
    # A label is read by OpenRLHF's workers, which need not run where the export did.
    from inftool_env.registration import default_registry

    manifest = default_registry().entry(BOOKSHELF).base_dir / "Bookshelf-v0.toml"
    monkeypatch.chdir(manifest.parent)
    export_dataset(["Bookshelf-v0.toml"], tmp_path / "d.jsonl")
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    labels = [EpisodeLabel.from_json(json.loads(line)["label"]) for line in lines]
    assert labels and {label.env_id for label in labels} == {str(manifest)}
