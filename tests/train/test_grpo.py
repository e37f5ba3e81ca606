"""The GRPO trainer on a tiny randomly initialised Qwen2 (same architecture, 2 layers, hidden 64)
with the embedded model's real tokenizer and chat template, against the real Bookshelf MCP server
and env. The only fake is at the model boundary: for some samples the sampler is made to choose the
tokens of a correct tool call (their logprobs are still the model's own), so that groups have signal.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="the trainer needs torch and transformers (the `model` extra)",
)

from tests.train.tiny import tiny_qwen2  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "servers" / "bookshelf" / "tasks.jsonl"
ENV = "inftool/Bookshelf-v0"
CALL = '<tool_call>\n{"name": "removeBook", "arguments": {"bookId": "boo_1"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from inftool_env.llm.embedded import embedded_gguf
    from inftool_env.llm.gguf import gguf_tokenizer

    return gguf_tokenizer(embedded_gguf())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def tasks() -> list[Any]:
    from inftool_env.tasks import load_tasks

    return load_tasks(TASKS)


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch, tokenizer: Any) -> set[int]:
    """Odd-numbered samples of every group answer `removeBook(boo_1)` on their first turn and "Done."
    on the next; the others sample freely. Returns the sampling seeds that were forced."""
    from inftool_env.train.grpo import rollout
    from inftool_env.train.grpo.chat import TorchChat

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    call = tokenizer.encode(CALL, add_special_tokens=False) + [end]
    done = tokenizer.encode("Done.", add_special_tokens=False) + [end]
    seen: set[int] = set()
    plain_seeds = rollout.sample_seeds

    def seeds(seed: int, step: int, pick: int, sample: int) -> tuple[int, int]:
        env_seed, policy_seed = plain_seeds(seed, step, pick, sample)
        return env_seed, (policy_seed // 2048) * 2048 + 1024 * (sample % 2)  # bit 10: the sample's parity

    plain_choose = TorchChat._choose

    def choose(self: Any, raw: Any, temperature: float, gen: Any, so_far: list[int], seed: int | None) -> int:
        if seed is not None and (seed // 1024) % 2:
            script = call if seed % 1024 == 0 else done
            if len(so_far) < len(script):
                seen.add(seed)
                return script[len(so_far)]
        return plain_choose(self, raw, temperature, gen, so_far, seed)

    monkeypatch.setattr(rollout, "sample_seeds", seeds)
    monkeypatch.setattr(TorchChat, "_choose", choose)
    return seen


def config(tiny: Path, **overrides: Any) -> Any:
    from inftool_env.train.grpo import GRPOConfig

    base = {"model": str(tiny), "steps": 2, "tasks_per_step": 1, "group": 4, "lr": 3e-3, "max_new_tokens": 32,
            "train_layers": 1, "device": "cpu", "seed": 0, "temperature": 1.0}  # fmt: skip
    return GRPOConfig(**{**base, **overrides})


def remove_task(tasks: list[Any]) -> list[Any]:
    return [t for t in tasks if t.id == "bookshelf-remove"]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_what_the_first_step_would_find_wrong_is_refused_before_the_model_loads(
    tiny: Path, tasks: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo import model, train_grpo

    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model loaded before the refusal")

    monkeypatch.setattr(model, "load_policy", no_model)
    elsewhere = [t.model_copy(update={"servers": ["library"]}) for t in tasks[:3]]
    for pool, refusal in [
        ([(ENV, tasks + tasks)], "is given twice"),
        ([("inftool/BfclTravelAPI-v0", tasks[:1])], "BFCL"),
        ([(ENV, tasks[3:] + elsewhere)], r"names servers \['library'\] the env does not have \(2 more such tasks\)"),
    ]:
        with pytest.raises(InftoolError, match=refusal):
            train_grpo(config(tiny), pool, tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()  # nothing written either


def test_a_run_neither_resumes_from_nor_overwrites_a_folder_it_did_not_write(
    tiny: Path, tasks: list[Any], tmp_path: Path
) -> None:
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo import train_grpo

    evolve_root = tmp_path / "evolve"
    evolve_root.mkdir()
    (evolve_root / "metrics.jsonl").write_text('{"kind": "eval", "round": 0}\n')
    for resume, refusal in [(True, "nothing to resume in .*no trainer_state"), (False, "not a training run's log")]:
        with pytest.raises(InftoolError, match=refusal):
            train_grpo(config(tiny), [(ENV, tasks)], evolve_root, resume=resume, progress=False)
    assert (evolve_root / "metrics.jsonl").read_text() == '{"kind": "eval", "round": 0}\n'


def test_a_changed_model_path_to_the_same_folder_is_the_same_setting(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inftool_env.train.grpo.state import _same

    monkeypatch.chdir(tiny.parent)
    assert _same(str(tiny), f"./{tiny.name}", "model")
    assert not _same(str(tiny), "embedded", "model")


def test_a_run_saved_with_a_setting_that_changes_nothing_resumes_without_it(tiny: Path) -> None:
    """Such settings are refused now; a run saved before that compares as if it had left them out."""
    old = config(tiny).model_copy(update={"is_cap": 3.0, "sft_batch": 8})  # no proximal clip, no warm start
    assert old.effective() == config(tiny).effective()
    assert config(tiny, sft_warmup_steps=2, sft_batch=8).effective()["sft_batch"] == 8  # where it acts, it counts


def test_train_takes_synths_output_folder_as_it_is_written(tmp_path: Path, tasks: list[Any]) -> None:
    """``inftool synth`` writes tasks.jsonl and a manifest listing it: either is a training target."""
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo.cli import training_pool

    out = tmp_path / "synth"
    out.mkdir()
    (out / "tasks.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in tasks[:3]))
    shelf = (REPO / "servers" / "bookshelf" / "openapi.yaml").resolve()
    (out / "Bookshelf-v0.toml").write_text(f"""id = "synth/Bookshelf-v0"
servers = [{{ name = "bookshelf", spec = "{shelf}" }}]
[tasks]
source = "tasks.jsonl"
""")
    (out / "notes.toml").write_text("not a manifest = [")  # beside it, and ignored
    for target in (out / "tasks.jsonl", out / "Bookshelf-v0.toml"):
        ((env, got),) = training_pool([str(target)], None)
        assert env.config.id == "synth/Bookshelf-v0" and [t.id for t in got] == [t.id for t in tasks[:3]]
    (out / "Bookshelf-v0.toml").unlink()
    with pytest.raises(InftoolError, match="no manifest beside the file lists it; pass --env"):
        training_pool([str(out / "tasks.jsonl")], None)
    with pytest.raises(InftoolError, match="a folder; pass its manifest"):
        training_pool([str(out)], None)
    with pytest.raises(InftoolError, match="--env: it names the env of task files"):
        training_pool([ENV], "inftool/YelpFusion-v0")


# -- the pieces ------------------------------------------------------------------------------------
def test_group_advantages_normalise_within_the_group_and_an_all_equal_group_has_none() -> None:
    from inftool_env.train.grpo.loss import group_advantages

    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0], abs=1e-5)
    assert group_advantages([0.5, 0.5, 0.5]) == [0.0, 0.0, 0.0]
    assert sum(group_advantages([0.2, 0.9, 0.4])) == pytest.approx(0.0, abs=1e-9)


def test_an_episode_that_broke_before_scoring_moves_neither_the_advantages_nor_the_loss() -> None:
    from inftool_env.train.grpo.loss import prepare
    from inftool_env.train.grpo.rollout import Group
    from inftool_env.trajectory import RewardBreakdown, Trajectory

    def sample(reward: float | None) -> Trajectory:
        scored = None if reward is None else RewardBreakdown(reward=reward)
        return Trajectory(env_id="e", task_id="t", seed=0, reward=scored, error="boom" if reward is None else None,
                          token_ids=[1, 2, 3], assistant_mask=[0, 1, 1], logprobs=[0.0, -1.0, -1.0])  # fmt: skip

    # Three equally good answers beside a crash: no signal, where counting the crash as a 0 would give some.
    flat = prepare([Group(pick=None, env_id="e", samples=tuple(map(sample, [None, 0.5, 0.5, 0.5])))])  # type: ignore[arg-type]
    assert flat.no_signal == [True] and flat.advantages == [[0.0] * 4] and flat.batches == []
    mixed = prepare([Group(pick=None, env_id="e", samples=tuple(map(sample, [1.0, None, 0.0])))])  # type: ignore[arg-type]
    assert mixed.advantages[0] == pytest.approx([1.0, 0.0, -1.0], abs=1e-5)
    assert [r.advantage for r in mixed.batches[0]] == pytest.approx([1.0, -1.0], abs=1e-5)  # the crash is no row
    assert mixed.untrainable_samples == 1


def test_credit_first_scores_a_reply_the_reward_judges_by_calling_alone_at_its_first_token() -> None:
    from inftool_env.tasks import Task
    from inftool_env.train.grpo.loss import prepare
    from inftool_env.train.grpo.rollout import Group, Pick
    from inftool_env.trajectory import CallRecord, RewardBreakdown, Trajectory, TurnRecord

    call = TurnRecord(step=0, calls=[CallRecord(name="getBook", arguments={"id": 1})])
    text, malformed = TurnRecord(step=1, content="Done."), TurnRecord(step=0, parse_error="bad JSON")

    def sample(reward: float, turns: list[TurnRecord]) -> Trajectory:
        # Two replies (positions 2-4 and 7-10), each after prompt or tool-result tokens (mask 0).
        mask = [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]
        return Trajectory(env_id="e", task_id="t", seed=0, reward=RewardBreakdown(reward=reward), turns=turns,
                          token_ids=list(range(12)), assistant_mask=mask, logprobs=[-1.0] * 12)  # fmt: skip

    group = Group(pick=None, env_id="e", samples=(  # type: ignore[arg-type]
        sample(1.0, [call, text]), sample(0.0, [text, text]), sample(0.0, [malformed, text]),
        sample(1.0, [call]),  # the turns do not line up with the record's two replies: nothing is cut
    ))  # fmt: skip
    every = [2, 3, 4, 7, 8, 9, 10]
    assert [r.targets for r in prepare([group]).batches[0]] == [every] * 4
    first = prepare([group], text_credit="first").batches[0]
    assert [r.targets for r in first] == [[2, 3, 4, 7], [2, 7], [2, 3, 4, 7], every]
    assert [r.old for r in first][1] == [-1.0, -1.0]  # each kept position keeps its own rollout logprob
    # irrelevance_credit "first": on an irrelevance task every reply, a call too, is scored at its first token.
    irrelevant = Group(pick=Pick(0, Task(id="t", category="irrelevance", turns=["Hi"])), env_id="e",
                       samples=group.samples)  # fmt: skip
    assert [r.targets for r in prepare([irrelevant], irrelevance_credit="first").batches[0]] == [[2, 7]] * 4
    assert [r.targets for r in prepare([group], irrelevance_credit="first").batches[0]] == [every] * 4  # no task
    called = Group(pick=Pick(0, Task(id="t", category="simple", turns=["Hi"])), env_id="e", samples=group.samples)
    assert [r.targets for r in prepare([called], irrelevance_credit="first").batches[0]] == [every] * 4


def test_the_two_clipped_ratios_on_explored_tokens() -> None:
    """Three sampled tokens: the policy's likeliest drawn at a flattened rate (pi/mu = 3), a rare one
    drawn more often than the policy would (1/4), one drawn at the policy's own rate (1). Clipped to
    the proximal policy, each gets the gradient w * A with w = min(pi/mu, 1) whichever the advantage's
    sign; the behaviour ratio pi/mu gives the first none when it wins and the second none when it loses."""
    import math

    import torch

    from inftool_env.train.grpo.loss import Row, policy_loss

    pi, mu = [0.9, 0.05, 0.5], [0.3, 0.2, 0.5]

    def gradient(advantage: float, clip_to: str, prox: float | None = None) -> tuple[Any, dict[str, float]]:
        logp = torch.tensor([math.log(p) for p in pi], requires_grad=True)
        row = Row(ids=[0, 1, 2], targets=[0, 1, 2], old=[math.log(m) for m in mu], advantage=advantage)
        near = None if prox is None else [logp.detach() + prox]
        loss, stats = policy_loss([logp], [row], clip=0.2, kl=0.0, ref=None, normaliser=3, clip_to=clip_to, prox=near)
        loss.backward()
        return logp.grad, stats

    for advantage in (1.0, -1.0):
        grad, stats = gradient(advantage, "proximal")
        torch.testing.assert_close(grad, -advantage * torch.tensor([1.0, 0.25, 1.0]) / 3)
        assert stats["weight_sum"] == pytest.approx(2.25) and stats["truncated"] == 1 and stats["clipped"] == 0
    grad, _ = gradient(1.0, "behaviour")
    torch.testing.assert_close(grad, -torch.tensor([0.0, 0.25, 1.0]) / 3)  # the likeliest's win: clipped
    grad, _ = gradient(-1.0, "behaviour")
    torch.testing.assert_close(grad, torch.tensor([3.0, 0.0, 1.0]) / 3)  # the rare one's loss: clipped
    # A later update: the clip is around the step's first policy, the weight still from it.
    grad, stats = gradient(-1.0, "proximal", prox=-0.5)  # the policy has since moved up: ratio e^0.5 > 1.2
    weights = [min(math.exp(math.log(p) - 0.5) / m, 1.0) for p, m in zip(pi, mu, strict=True)]
    torch.testing.assert_close(grad, math.exp(0.5) * torch.tensor(weights) / 3)
    assert stats["clipped"] == 3  # A < 0: the ratio's rise is not clipped (min keeps the worse)
    grad, _ = gradient(1.0, "proximal", prox=-0.5)
    torch.testing.assert_close(grad, torch.zeros(3))  # A > 0: it is


def test_shared_prefix_logprobs_equal_a_plain_forward_and_carry_gradients(tiny: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.model import make_trainable, sequence_logprobs

    model = make_trainable(AutoModelForCausalLM.from_pretrained(tiny), train_layers=1, lora=None)
    prompt = list(range(1000, 1040))
    seqs = [prompt + [7, 8, 9, 10], prompt + [7, 11], prompt + [12, 13, 14, 15, 16, 17]]
    targets = [[40, 41, 43], [40, 41], [40, 42, 45]]  # position 40 is predicted by the prompt's last state

    def plain(seqs: list[list[int]], targets: list[list[int]]) -> None:
        got = sequence_logprobs(model, seqs, targets)
        for seq, ts, lp in zip(seqs, targets, got, strict=True):
            with torch.no_grad():
                full = model(input_ids=torch.tensor([seq])).logits[0].log_softmax(-1)
            want = torch.stack([full[t - 1, seq[t]] for t in ts])
            torch.testing.assert_close(lp.detach(), want, atol=1e-5, rtol=1e-5)

    plain([[5, 6, 7, 8], [9, 6, 7, 8]], [[2, 3], [2, 3]])  # rows that share no first token
    plain(seqs, targets)
    got = sequence_logprobs(model, seqs, targets)
    sum(x.sum() for x in got).backward()
    layers = model.get_decoder().layers
    weight = layers[-1].self_attn.k_proj.weight  # reaches the loss through the shared prefix's cached keys too
    shared_grad, weight.grad = weight.grad.clone(), None
    for seq, ts in zip(seqs, targets, strict=True):
        full = model(input_ids=torch.tensor([seq])).logits[0].log_softmax(-1)
        torch.stack([full[t - 1, seq[t]] for t in ts]).sum().backward()
    torch.testing.assert_close(shared_grad, weight.grad, atol=1e-5, rtol=1e-4)
    assert shared_grad.abs().sum() > 0
    assert layers[0].mlp.up_proj.weight.grad is None  # frozen: no backward below the trained layers


def test_the_reference_shares_the_frozen_layers_and_gives_what_two_whole_forwards_give(
    tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warm start's anchor runs the layers the policy and its reference share once: the same logits
    and gradients as two whole forwards, checked at first use; a layout it cannot drive, whole forwards."""
    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.model import chosen_logprobs, make_trainable, reference_of
    from inftool_env.train.grpo.trunk import PairedLogits

    model = make_trainable(AutoModelForCausalLM.from_pretrained(tiny), train_layers=1, lora=None)
    ref = reference_of(model, None)
    with torch.no_grad():  # the policy has trained a while: its top layer is no longer the reference's
        for p in model.get_decoder().layers[-1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    seq, targets, decisions = list(range(1000, 1060)), [41, 42, 50, 59], [41, 50]
    paired = PairedLogits(model, ref)
    assert paired.bottom == 1 and paired.shared is None
    logits, chosen, start = paired(seq, targets, decisions)
    assert paired.shared is True
    whole_logits, whole_chosen, whole_start = paired.apart(seq, targets, decisions)
    torch.testing.assert_close(logits, whole_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(start, whole_start, atol=1e-4, rtol=1e-4)
    assert torch.equal(chosen, whole_chosen) and not start.requires_grad
    assert (start - logits[[0, 2]]).abs().max() > 1e-3  # the two tops differ: each side is its own model's

    weight = model.get_decoder().layers[-1].mlp.down_proj.weight
    chosen_logprobs(logits, chosen).sum().backward()  # the warm start's loss on its targets
    shared_grad, weight.grad = weight.grad.clone(), None
    chosen_logprobs(whole_logits, chosen).sum().backward()
    torch.testing.assert_close(shared_grad, weight.grad, atol=1e-5, rtol=1e-4)
    assert all(p.grad is None for p in ref.parameters())

    def cannot(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("another layer signature")

    other = PairedLogits(model, ref)
    other.together = cannot  # type: ignore[method-assign]
    with caplog.at_level("WARNING"):
        again = other(seq, targets, decisions)
    assert other.shared is False and "whole forwards instead" in caplog.text
    torch.testing.assert_close(again[2], whole_start)
    assert PairedLogits(make_trainable(AutoModelForCausalLM.from_pretrained(tiny), train_layers=None, lora=None),
                        ref).shared is False  # every layer trains: nothing shared  # fmt: skip


def test_a_sample_depends_on_its_seed_and_prompt_only_not_on_its_batch(tiny: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat

    chat = TorchChat(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, name="tiny", max_new_tokens=12)
    a = chat.render([{"role": "user", "content": "Add a book."}], None)
    b = chat.render([{"role": "user", "content": "Remove book boo_1, it was lost long ago."}], None)
    together = chat._generate_rows([a, b, a], [1, 2, 3], 1.0, 12)
    alone = [chat._generate_rows([p], [s], 1.0, 12)[0] for p, s in [(a, 1), (b, 2), (a, 3)]]
    for (ids, lps), (ids1, lps1) in zip(together, alone, strict=True):
        assert ids == ids1 and lps == pytest.approx(lps1, abs=1e-4)
    assert together[0][0] != together[2][0]  # same prompt, other seed: another sample
    assert chat.tokens == 6 * 12 - sum(12 - len(i) for i, _ in together + alone) and chat.batches == 4


def test_explored_first_token_comes_from_the_top_k_and_records_the_draws_own_logprob(
    tiny: Path, tokenizer: Any
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat
    from inftool_env.train.grpo.model import sequence_logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny)
    chat = TorchChat(model, tokenizer, name="tiny", max_new_tokens=6, explore=(3.0, 4))
    prompt = chat.render([{"role": "user", "content": "Add a book."}], None)
    with torch.no_grad():
        raw = model(torch.tensor([prompt])).logits[0, -1].float().log_softmax(-1)
    top = raw.topk(4)
    behaviour = dict(zip(top.indices.tolist(), (top.values / 3.0).log_softmax(-1).tolist(), strict=True))
    rows = chat._generate_rows([prompt] * 24, list(range(24)), 1.0, 6)
    firsts = {ids[0] for ids, _ in rows}
    assert firsts <= set(behaviour) and len(firsts) > 1  # the top 4 only, and more than the likeliest
    for ids, lps in rows:
        assert lps[0] == pytest.approx(behaviour[ids[0]], abs=1e-5)  # the draw's logprob, not the raw one
        with torch.no_grad():
            (plain,) = sequence_logprobs(model, [prompt + ids], [list(range(len(prompt), len(prompt) + len(ids)))])
        assert float(plain[0]) == pytest.approx(float(raw[ids[0]]), abs=1e-4)
        assert lps[1:] == pytest.approx(plain[1:].tolist(), abs=1e-4)  # the rest: raw, as without exploring


def test_explore_after_explores_exactly_the_tokens_after_that_text(tiny: Path, tokenizer: Any) -> None:
    """The token after each occurrence of ``explore_after`` (here "e", which the random model writes
    often, within a token or at its end) is drawn from the top k with the draw's logprob; the rest raw."""
    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat

    model = AutoModelForCausalLM.from_pretrained(tiny)
    chat = TorchChat(model, tokenizer, name="tiny", max_new_tokens=24, explore=(3.0, 4), explore_after="e")
    prompt = chat.render([{"role": "user", "content": "Add a book."}], None)
    explored = plain = 0
    for ids, lps in chat._generate_rows([prompt] * 6, list(range(6)), 1.0, 24):
        with torch.no_grad():
            raw = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1 : -1].float().log_softmax(-1)
        for n, (token, lp) in enumerate(zip(ids, lps, strict=True)):
            if n == 0 or "e" in tokenizer.decode([ids[n - 1]]):  # a reply's first token, or one after an "e"
                top = raw[n].topk(4)
                behaviour = dict(zip(top.indices.tolist(), (top.values / 3.0).log_softmax(-1).tolist(), strict=True))
                assert lp == pytest.approx(behaviour[token], abs=1e-4), n
                explored += 1
            else:
                assert lp == pytest.approx(float(raw[n, token]), abs=1e-4), n
                plain += 1
    assert explored > 6 and plain > 6  # both kinds were seen, beyond the first tokens

    # A tag spanning tokens, its ">" merged with the newline after it: the token after that one is explored.
    chat.explore_after = "</tool_call>"
    ids = tokenizer.encode('{"a": 1}}\n</tool_call>\n<tool_call>\n{"b"', add_special_tokens=False)
    flags, tail = [], ""
    for token in ids:
        flag, tail = chat._after(tail, token)
        flags.append(flag)
    assert flags.count(True) == 1 and tokenizer.decode(ids[: flags.index(True) + 1]).endswith("</tool_call>\n")


def test_balanced_exploration_tries_both_sides_at_even_odds_and_an_answer_never_starts_a_call(
    tiny: Path, tokenizer: Any
) -> None:
    """With ``explore_sides`` (openers, call starts), a reply's first token is an opener in about half the
    rows, else a token that starts no call, each from its side's top k at T, recorded as log(1/2) plus the
    draw's logprob. Here the openers are tokens the random model puts last, which plain exploring never
    draws, and the call starts add the 300 it likes best. An answer-side reply draws no call start later
    either, each token recorded under the policy renormalised without them; a call-side reply as usual."""
    import math

    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat

    model = AutoModelForCausalLM.from_pretrained(tiny)
    hello = [{"role": "user", "content": "Hi"}]
    prompt = TorchChat(model, tokenizer, name="tiny", max_new_tokens=1).render(hello, None)
    with torch.no_grad():
        raw = model(torch.tensor([prompt])).logits[0, -1].float()[: len(tokenizer)].log_softmax(-1)
    openers = raw.topk(5, largest=False).indices.tolist()
    starts = openers + raw.topk(300).indices.tolist()
    chat = TorchChat(model, tokenizer, name="tiny", max_new_tokens=4, explore=(3.0, 4), explore_sides=(openers, starts))
    banned = torch.zeros_like(raw, dtype=torch.bool).index_fill(0, torch.tensor(starts), True)

    def behaviour(side: Any) -> dict[int, float]:
        top = raw.masked_fill(~side, float("-inf")).topk(4)
        return dict(zip(top.indices.tolist(), (top.values / 3.0).log_softmax(-1).tolist(), strict=True))

    calls = behaviour(torch.zeros_like(banned).index_fill(0, torch.tensor(openers), True))
    answers = behaviour(~banned)
    rows = chat._generate_rows([prompt] * 40, list(range(40)), 1.0, 4)
    firsts = [ids[0] for ids, _ in rows]
    assert 10 <= sum(t in calls for t in firsts) <= 30 and set(firsts) <= set(calls) | set(answers)
    assert len(set(firsts) & set(calls)) > 1 and len(set(firsts) & set(answers)) > 1  # the top k, not the top 1
    for ids, lps in rows:
        assert lps[0] == pytest.approx(math.log(0.5) + {**calls, **answers}[ids[0]], abs=1e-5)
        with torch.no_grad():
            later = model(torch.tensor([prompt + ids])).logits[0, len(prompt) : -1].float()[:, : len(tokenizer)]
        later = later.log_softmax(-1)
        if ids[0] in answers:
            assert not set(ids) & set(starts)
            later = later.masked_fill(banned, float("-inf"))
            later = later - later.logsumexp(-1, keepdim=True)
        want = [float(later[j, token]) for j, token in enumerate(ids[1:])]
        assert lps[1:] == pytest.approx(want, abs=1e-4)
    plain = TorchChat(model, tokenizer, name="tiny", max_new_tokens=1, explore=(3.0, 4))
    assert not {ids[0] for ids, _ in plain._generate_rows([prompt] * 40, list(range(40)), 1.0, 1)} & set(openers)


# -- rollouts through the real env, and the update -------------------------------------------------
@pytest.mark.anyio
async def test_rollouts_record_exactly_the_sampled_tokens_and_the_update_follows_the_reward(
    tiny: Path, tokenizer: Any, tasks: list[Any], forced: set[int]
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat
    from inftool_env.train.grpo.loss import policy_loss, prepare
    from inftool_env.train.grpo.model import make_trainable, sequence_logprobs
    from inftool_env.train.grpo.rollout import EnvPool, rollout_groups

    model = make_trainable(AutoModelForCausalLM.from_pretrained(tiny), train_layers=1, lora=None)
    chat = TorchChat(model, tokenizer, name="tiny", max_new_tokens=32)
    generated: list[list[int]] = []
    plain = chat._generate_rows

    def recording(prompts: Any, seeds: Any, temperature: float, max_new: int) -> Any:
        out = plain(prompts, seeds, temperature, max_new)
        generated.extend(ids for ids, _ in out)
        return out

    chat._generate_rows = recording  # type: ignore[method-assign]
    pool = EnvPool([(ENV, remove_task(tasks))])
    try:
        (group,) = await rollout_groups(pool, chat, pool.picks, group=4, step=0, seed=0, temperature=1.0,
                                        max_new_tokens=32)  # fmt: skip
    finally:
        await pool.close()
    assert group.rewards == [0.0, 1.0, 0.0, 1.0]  # the forced call passed every gate on the real server
    assert group.samples[1].turns[0].calls[0].name == "removeBook" and forced
    sampled = []
    for t in group.samples:
        assert t.token_ids and t.tokens_unavailable is None and t.error is None
        sampled += [tok for tok, m in zip(t.token_ids, t.assistant_mask, strict=True) if m]
    assert sorted(sampled) == sorted(tok for ids in generated for tok in ids)  # masked = sampled, all of them

    prepared = prepare([group])
    (rows,) = prepared.batches
    assert prepared.zero_signal_groups == 0 and [r.advantage > 0 for r in rows] == [False, True, False, True]
    # The record's replies line up with the turns: text_credit "first" cuts each text reply to its first token.
    (firsts,) = prepare([group], text_credit="first").batches
    for row, first, t in zip(rows, firsts, group.samples, strict=True):
        if not t.turns[0].calls:  # one text reply: its first token
            assert len(t.turns) == 1 and first.targets == row.targets[:1] and len(row.targets) > 1
        else:  # the call whole, then the text reply after its result: that reply's first token
            gap = next(k for k in range(1, len(row.targets)) if row.targets[k] != row.targets[k - 1] + 1)
            assert len(t.turns) == 2 and not t.turns[1].calls and first.targets == row.targets[: gap + 1]
            assert len(row.targets) > gap + 1
    # The trainer scores exactly the sampled tokens: its logprobs there equal the rollout's own.
    new = sequence_logprobs(model, [r.ids for r in rows], [r.targets for r in rows])
    for lp, row, t in zip(new, rows, group.samples, strict=True):
        assert row.ids == t.token_ids
        assert [row.ids[i] for i in row.targets] == [x for x, m in zip(t.token_ids, t.assistant_mask, strict=True) if m]
        torch.testing.assert_close(lp.detach(), torch.tensor(row.old), atol=2e-4, rtol=0)
    before = [float(x.detach().sum()) for x in new]
    loss, stats = policy_loss(new, rows, clip=0.2, kl=0.0, ref=None, normaliser=sum(len(r.targets) for r in rows))
    assert stats["ratio_sum"] == pytest.approx(sum(len(r.targets) for r in rows), rel=1e-3)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    loss.backward()
    optimizer.step()
    after = [
        float(x.detach().sum()) for x in sequence_logprobs(model, [r.ids for r in rows], [r.targets for r in rows])
    ]
    for b, a, row in zip(before, after, rows, strict=True):
        assert (a > b) == (row.advantage > 0), (b, a, row.advantage)  # rewarded samples became likelier


@pytest.mark.anyio
async def test_untrained_model_on_the_real_env_gives_all_equal_groups_counted_and_skipped(
    tiny: Path, tokenizer: Any, tasks: list[Any], tmp_path: Path
) -> None:
    from inftool_env.train.grpo import GRPOConfig, atrain_grpo

    cfg = config(tiny, steps=1, tasks_per_step=2, group=2, max_new_tokens=40)
    assert isinstance(cfg, GRPOConfig)
    result = await atrain_grpo(cfg, [(ENV, tasks)], tmp_path, progress=False)
    (record,) = lines(result.metrics_path)
    # Random text is a final answer without the call each task needs: every sample scores 0.
    assert record["zero_signal_groups"] == record["groups"] == 2 and record["loss"] is None
    by_category = record["zero_signal_by_category"]
    assert sum(n for n, _ in by_category.values()) == sum(of for _, of in by_category.values()) == 2
    assert record["tokens_trained"] == 0 and record["rollout_tokens"] > 0 and record["episode_timeouts"] == 0
    assert record["gate_pass_rate"]["format"] == 1.0 and record["reward_mean"] == 0.0
    groups = lines(result.rollouts_path)
    assert all(g["advantages"] == [0.0, 0.0] for g in groups) and all(len(g["breakdowns"]) == 2 for g in groups)
    assert set(result.task_success) == {g["task_id"] for g in groups}
    # Random text seldom ends before the token limit: the cut replies are counted per sample and per step.
    cut = [n for g in groups for n in g["replies_cut"]]
    assert len(cut) == 4 and record["samples_cut"] == sum(n > 0 for n in cut) > 0
    assert record["samples_cut_rewarded"] == 0


@pytest.mark.anyio
async def test_cut_fails_scores_a_reply_cut_at_the_token_limit_zero(tiny: Path, tmp_path: Path) -> None:
    """The tiny model's random text makes no call, so it passes an irrelevance task however it ends; with
    cut_fails a sample whose reply the token limit cut scores 0, the gate ``finished`` saying why."""
    from inftool_env.tasks import Task
    from inftool_env.train.grpo import atrain_grpo

    task = Task(id="irr", category="irrelevance", turns=["What is the capital of Peru?"], one_shot=True)
    cfg = config(tiny, steps=1, group=2, max_new_tokens=24)  # the decline the task is checked with: 19
    plain = await atrain_grpo(cfg, [(ENV, [task])], tmp_path / "plain", progress=False)
    gated = await atrain_grpo(cfg.model_copy(update={"cut_fails": True}), [(ENV, [task])], tmp_path / "gated",
                              progress=False)  # fmt: skip
    (before,), (after,) = lines(plain.metrics_path), lines(gated.metrics_path)
    assert before["samples_cut"] == after["samples_cut"] == 2  # the same samples, both cut
    assert before["samples_cut_rewarded"] == 2 and before["reward_mean"] == 1.0
    assert after["samples_cut_rewarded"] == 0 and after["reward_mean"] == 0.0
    assert after["gate_pass_rate"]["finished"] == 0.0 and "finished" not in before["gate_pass_rate"]
    (group,) = lines(gated.rollouts_path)
    assert all("finished: 1 reply cut at the token limit" in b["notes"] for b in group["breakdowns"])


@pytest.mark.anyio
async def test_training_episodes_have_no_deadline_unless_asked_and_timeouts_are_counted(
    tiny: Path, tasks: list[Any], tmp_path: Path
) -> None:
    from inftool_env.env.config import NO_DEADLINE_S
    from inftool_env.registration import make
    from inftool_env.train.grpo import atrain_grpo
    from inftool_env.train.grpo.rollout import EnvPool

    # The env's own 600 s (for hung endpoints) cut a step's batched episodes on a busy CPU mid-reply.
    pool = EnvPool([(ENV, tasks)])
    try:
        assert make(ENV).config.limits.episode_timeout_s == 600.0
        assert pool.envs[0].config.limits.episode_timeout_s == NO_DEADLINE_S
    finally:
        await pool.close()
    # Asked for, a limit cuts episodes (cancelling their requests mid-batch) and each cut is counted.
    cfg = config(tiny, steps=1, tasks_per_step=2, group=2, max_new_tokens=8, episode_timeout_s=0.001)
    result = await atrain_grpo(cfg, [(ENV, tasks)], tmp_path, progress=False)
    (record,) = lines(result.metrics_path)
    assert record["episode_timeouts"] == 4 and record["zero_signal_groups"] == 2


# -- the trainer end to end ------------------------------------------------------------------------
def test_train_moves_the_loss_logs_the_split_and_saves_a_loadable_checkpoint(
    tiny: Path, tasks: list[Any], forced: set[int], tmp_path: Path
) -> None:
    from inftool_env.train.grpo import train_grpo

    # Two updates a step: the second sees what the first did to the loss on the same rollouts. (Each
    # step's first loss is at ratio 1, a function of advantages and token counts only: equal across steps
    # whenever the samples have equal lengths, so it cannot show the loss moving.)
    cfg = config(tiny, updates=2)
    result = train_grpo(cfg, [(ENV, remove_task(tasks))], tmp_path / "run", progress=False)
    records = lines(result.metrics_path)
    assert [r["step"] for r in records] == [0, 1] and result.steps == 2
    for r in records:
        assert r["zero_signal_groups"] == 0 and r["reward_mean"] == 0.5 and r["loss"] is not None
        assert set(r["time_s"]) == {"generation", "env", "optimisation", "total"} and r["time_s"]["generation"] > 0
        assert r["tokens_trained"] > 0 and r["clip_fraction"] is not None
        assert r["loss_last"] < r["loss"]  # the update lowered the loss on its own rollouts
    assert result.task_success == {"bookshelf-remove": 0.5}
    group = lines(result.rollouts_path)[0]
    assert [a > 0 for a in group["advantages"]] == [r == 1.0 for r in group["rewards"]]
    start, end = weights(tiny), weights(result.checkpoint)
    top, bottom = "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight"
    assert not (start[top] == end[top]).all() and (start[bottom] == end[bottom]).all()
    from inftool_env.llm.hf import HFChat

    loaded = HFChat(str(result.checkpoint), max_new_tokens=4)  # what `hf:PATH` builds
    assert loaded.tokenizer.chat_template and loaded.model.config.num_hidden_layers == 2


def test_bfloat16_rollouts_come_from_a_copy_synced_each_step_and_the_float32_weights_train(
    tiny: Path, tasks: list[Any], forced: set[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rollout_dtype="bfloat16"``: each step samples from a bfloat16 copy holding the weights trained so far
    (the second step's copy has the first update); the loss trains the float32 model, its importance weight
    pi/mu (clip_to proximal) near 1: the rounding is all that tells the two apart."""
    import torch

    from inftool_env.train.grpo import model as M
    from inftool_env.train.grpo import train_grpo

    top = "model.layers.1.mlp.up_proj.weight"
    synced: list[tuple[Any, bool, bool]] = []
    plain_sync = M.sync_rollout

    def sync(rollout: Any, model: Any) -> None:
        plain_sync(rollout, model)
        copy, trained = dict(rollout.named_parameters())[top], dict(model.named_parameters())[top]
        synced.append((copy.dtype, torch.equal(copy, trained.detach().to(copy.dtype)), rollout is model))

    monkeypatch.setattr(M, "sync_rollout", sync)
    cfg = config(tiny, rollout_dtype="bfloat16", clip_to="proximal")
    result = train_grpo(cfg, [(ENV, remove_task(tasks))], tmp_path / "run", progress=False)
    assert synced == [(torch.bfloat16, True, False)] * 2
    records = lines(result.metrics_path)
    assert [r["reward_mean"] for r in records] == [0.5, 0.5] and all(r["tokens_trained"] > 0 for r in records)
    assert all(0.9 < r["is_weight_mean"] <= 1.0 + 1e-6 and r["is_weight_mean"] != 1.0 for r in records)
    start, end = weights(tiny), weights(result.checkpoint)
    assert end[top].dtype == torch.float32 and not torch.equal(start[top], end[top])


@pytest.mark.parametrize("clip_to", ["behaviour", "proximal"])
def test_kl_to_the_frozen_start_is_zero_at_first_and_grows_with_updates(
    tiny: Path, tasks: list[Any], forced: set[int], tmp_path: Path, clip_to: str
) -> None:
    from inftool_env.train.grpo import train_grpo

    cfg = config(tiny, steps=1, kl=0.1, updates=3, lr=1e-2, clip_to=clip_to)
    (record,) = lines(train_grpo(cfg, [(ENV, remove_task(tasks))], tmp_path, progress=False).metrics_path)
    assert record["kl"] is not None and record["kl"] > 0  # mean over the 3 updates; the first is at the start
    assert record["loss_last"] < record["loss"]  # the later updates improved the surrogate
    assert record["ratio_mean"] != pytest.approx(1.0, abs=1e-6)


def test_resume_continues_to_the_same_next_step(
    tiny: Path, tasks: list[Any], forced: set[int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo import train_grpo

    pool = [(ENV, remove_task(tasks))]

    def cfg(**overrides: Any) -> Any:  # with a KL term: the resumed run's reference is the start, not the save
        return config(tiny, kl=0.05, **overrides)

    with pytest.raises(InftoolError, match="nothing to resume"):
        train_grpo(cfg(steps=2), pool, tmp_path / "never_started", resume=True, progress=False)
    whole = train_grpo(cfg(steps=2), pool, tmp_path / "whole", progress=False)
    train_grpo(cfg(steps=1), pool, tmp_path / "cut", progress=False)  # "interrupted" after step 0
    with pytest.raises(InftoolError, match="already holds a training run"):
        train_grpo(cfg(steps=2), pool, tmp_path / "cut", progress=False)
    with pytest.raises(InftoolError, match=r"other settings \(lr 0\.003 -> 0\.01\);"):  # steps may change
        train_grpo(cfg(steps=2, lr=1e-2), pool, tmp_path / "cut", resume=True, progress=False)
    other = [(ENV, [t.model_copy(update={"goal": "Remove every book."}) for t in remove_task(tasks)])]
    with pytest.raises(InftoolError, match=r"trained on other tasks \(1 of .*as many but not the same"):
        train_grpo(cfg(steps=2), other, tmp_path / "cut", resume=True, progress=False)
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as log:
        log.write('{"step": 1, "phase": "gr')  # a kill mid-write tore the next step's line
    resumed = train_grpo(cfg(steps=2), pool, tmp_path / "cut", resume=True, progress=False)
    train_grpo(cfg(steps=1), pool, tmp_path / "cut", resume=True, progress=False)  # fewer steps than done: says so
    assert "cut is already at step 2 (--steps 1): nothing to train" in capsys.readouterr().out

    def comparable(path: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("time_s", "rollout_tokens_per_s")} for r in lines(path)]

    # Equal up to float noise: a batch's shape (which requests shared it) moves the last bits of a logprob.
    for got, want in zip(comparable(resumed.metrics_path), comparable(whole.metrics_path), strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == (pytest.approx(value, rel=1e-5, abs=1e-7) if isinstance(value, float) else value), key
    assert lines(resumed.rollouts_path) == lines(whole.rollouts_path)  # same samples, rewards, advantages
    assert resumed.task_success == whole.task_success and resumed.steps == 2
    a, b = weights(whole.checkpoint), weights(resumed.checkpoint)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)
    start = weights(tiny)
    assert any(not torch.equal(start[k], b[k]) for k in b)  # and both did train


def test_a_checkpoint_replaces_the_last_one_whole_and_clears_a_killed_save(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inftool_env.train.grpo.model import save_checkpoint

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    target = tmp_path / "checkpoint"
    save_checkpoint(model, tokenizer, target)
    (tmp_path / "checkpoint.partial-99999").mkdir()  # a save killed half-way
    (target / "left-from-the-last-save").write_text("x")
    assert save_checkpoint(model, tokenizer, target) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert not (target / "left-from-the-last-save").exists()
    assert AutoModelForCausalLM.from_pretrained(target).config.num_hidden_layers == model.config.num_hidden_layers


def test_a_task_id_given_twice_is_refused_not_trained_once(tasks: list[Any]) -> None:
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo.rollout import EnvPool

    with pytest.raises(InftoolError, match=r"task id 'bookshelf-remove' is given twice"):
        EnvPool([(ENV, [*tasks, *remove_task(tasks)])])


@pytest.mark.anyio
async def test_partial_calls_scores_a_parallel_answer_by_its_share_of_the_asked_calls() -> None:
    from inftool_env.env.core import ToolEnv
    from inftool_env.errors import InftoolError
    from inftool_env.registration import make
    from inftool_env.synth import synthesize
    from inftool_env.train.grpo.rollout import EnvPool

    task = next(t for t in synthesize(ENV, n=8, seed=3, categories=["parallel"]).tasks if len(t.ground_truth[0]) == 3)
    calls = [{"function": {"name": c.name, "arguments": c.arguments}} for c in task.ground_truth[0]]
    scored: dict[tuple[bool, int], Any] = {}
    for partial in (False, True):
        pool = EnvPool([(ENV, [task])], partial_calls=partial)
        for n in (1, 3):  # one call of the three asked, then all three
            await pool.envs[0].reset(seed=0, options={"task": task})
            step = await pool.envs[0].step({"role": "assistant", "content": "", "tool_calls": calls[:n]})
            assert step.terminated
            scored[partial, n] = step.info["trajectory"].reward
        await pool.close()
    assert scored[False, 1].reward == 0.0 and scored[True, 1].reward == pytest.approx(1 / 3)
    assert scored[False, 3].reward == scored[True, 3].reward == 1.0
    assert scored[False, 1].components == scored[True, 1].components  # logged alike; only the reward differs
    assert scored[False, 1].correct is scored[True, 1].correct is False  # the verdict is BFCL's either way

    class Own:
        def __call__(self, outcome: Any) -> Any: ...

    base = make(ENV)
    own = ToolEnv(base.config, [task], base.servers, reward_fn=Own())
    with pytest.raises(InftoolError, match=r"training env #1 .*partial_calls .* a reward of its own \(Own\)"):
        EnvPool([(own, [task])], partial_calls=True)
    await base.close()


def test_a_step_whose_every_episode_broke_stops_the_run_with_its_reason(
    tiny: Path, tasks: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo import train_grpo, trainer
    from inftool_env.train.grpo.rollout import Group
    from inftool_env.trajectory import Trajectory

    async def broken(pool: Any, chat: Any, picks: list[Any], *, group: int, **_: Any) -> list[Group]:
        return [Group(p, ENV, tuple(Trajectory(env_id=ENV, task_id=p.task.id, seed=0, error="policy: out of memory")
                                    for _ in range(group))) for p in picks]  # fmt: skip

    monkeypatch.setattr(trainer, "rollout_groups", broken)
    with pytest.raises(InftoolError, match=r"GRPO step 0: all 4 episodes broke .*policy: out of memory.*--resume"):
        train_grpo(config(tiny, steps=2), [(ENV, remove_task(tasks))], tmp_path, progress=False)


def test_grpo_leaves_out_a_task_whose_answer_cannot_fit_the_token_budget(
    tiny: Path, tasks: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task whose verified answer needs more than max_new_tokens a turn is never sampled: every sample of it
    would be cut before it ends. It is counted and shown, not dropped silently; a budget no task fits is refused."""
    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo import train_grpo

    pair = [t for t in tasks if t.id in ("bookshelf-remove", "bookshelf-parallel-add")]  # ~28 and ~90 tokens
    result = train_grpo(config(tiny, max_new_tokens=40), [(ENV, pair)], tmp_path / "run", progress=True)
    assert {g["task_id"] for g in lines(result.rollouts_path)} == {"bookshelf-remove"}  # both steps
    printed = capsys.readouterr().out
    assert "GRPO leaves out 1 of 2 tasks" in printed and "left out of GRPO" in printed
    with pytest.raises(InftoolError, match=r"needs more than --max-new-tokens \(8\).*raise it"):
        train_grpo(config(tiny, max_new_tokens=8), [(ENV, pair)], tmp_path / "short", progress=False)


def test_sft_warm_start_trains_on_the_oracles_verified_episodes(tiny: Path, tokenizer: Any, tasks: list[Any],
                                                                tmp_path: Path) -> None:  # fmt: skip
    from inftool_env.train.grpo import train_grpo

    cfg = config(tiny, steps=0, sft_warmup_steps=3, sft_batch=5, lr=1e-2)
    result = train_grpo(cfg, [(ENV, tasks)], tmp_path, progress=False)
    records = lines(result.metrics_path)
    assert [r["phase"] for r in records] == ["sft"] * 3 and all(r["examples"] == 5 for r in records)
    assert records[2]["loss"] < records[1]["loss"] < records[0]["loss"]  # the same five episodes, learnt
    # How calls open, trained on request apart from whether: after two steps the tag's share among the
    # tokens a call can open with is higher than without it (measured, before each step's update, in both).
    on = train_grpo(cfg.model_copy(update={"sft_call_form": True}), [(ENV, tasks)], tmp_path / "on",
                    progress=False)  # fmt: skip
    trained = lines(on.metrics_path)
    assert trained[0]["call_form_p"] == pytest.approx(records[0]["call_form_p"])  # the same start
    assert trained[2]["call_form_p"] > records[2]["call_form_p"]


def test_sft_lr_sets_the_warm_starts_rate_and_lr_grpos(tiny: Path, tasks: list[Any], tmp_path: Path) -> None:
    """One optimiser serves both phases, so each sets its own rate: a warm start at a rate too small to move
    the weights learns nothing while lr is large, and the GRPO steps after it (and the state a resume loads)
    run at lr."""
    import torch

    from inftool_env.train.grpo import train_grpo

    cfg = config(tiny, steps=1, sft_warmup_steps=3, sft_batch=5, lr=1e-2, sft_lr=1e-9)
    result = train_grpo(cfg, [(ENV, tasks)], tmp_path, progress=False)
    warm = [r for r in lines(result.metrics_path) if r["phase"] == "sft"]
    assert warm[2]["loss"] == pytest.approx(warm[0]["loss"], rel=1e-4)  # the same five episodes, not learnt
    saved = torch.load(tmp_path / "trainer_state" / "state.pt", weights_only=False)
    assert {g["lr"] for g in saved["optimizer"]["param_groups"]} == {1e-2}


def test_sft_keep_decision_pulls_the_first_tokens_choice_to_the_start(
    tiny: Path, tasks: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference is the start (no drift at the first step); the term pulls each reply's untrained first
    token back to it. The tiny random model opens a call (``<``) about never, and its warm start barely moves
    that, so here the "call openers" are the half of the vocabulary on one side of a direction in its
    embedding space, and the start is made to favour them: a choice that the term has to move."""
    import torch
    from safetensors.torch import load_file

    from inftool_env.train.grpo import train_grpo, trainer

    cfg = config(tiny, steps=0, sft_warmup_steps=4, sft_batch=5, lr=1e-2)

    def run(name: str, **update: Any) -> list[dict[str, Any]]:
        result = train_grpo(cfg.model_copy(update=update), [(ENV, tasks)], tmp_path / name, progress=False)
        return lines(result.metrics_path)

    same = run("same", sft_keep_decision=100.0, sft_warmup_steps=1)
    assert same[0]["decision_kl"] == pytest.approx(0.0, abs=1e-6)
    assert same[0]["reference_shared_layers"] == 1  # the tiny model's bottom layer of two, run once for both
    embedding = load_file(str(tiny / "model.safetensors"))["model.embed_tokens.weight"]
    side = (embedding @ torch.randn(embedding.shape[1], generator=torch.Generator().manual_seed(1)) > 0).nonzero()
    openers = side.squeeze(-1).tolist()
    paired = trainer.PairedLogits.__call__  # the reference's logits beside the policy's (train/grpo/trunk.py)

    def favouring(self: Any, seq: list[int], targets: list[int], ref_targets: list[int]) -> tuple[Any, Any, Any]:
        logits, chosen, start = paired(self, seq, targets, ref_targets)
        return logits, chosen, start.index_add(-1, torch.tensor(openers), torch.full((len(start), len(openers)), 2.0))

    monkeypatch.setattr(trainer, "call_openers", lambda tokenizer: openers)
    monkeypatch.setattr(trainer.PairedLogits, "__call__", favouring)
    free, kept = run("free", sft_keep_decision=1e-9), run("kept", sft_keep_decision=100.0)  # 1e-9: logged only
    assert kept[0]["decision_kl"] == pytest.approx(free[0]["decision_kl"]) and kept[0]["decision_kl"] > 0.1
    assert kept[0]["decision_call_p"] == pytest.approx(free[0]["decision_call_p"])
    assert kept[3]["decision_kl"] < kept[0]["decision_kl"] - 0.05 < free[3]["decision_kl"]
    assert kept[3]["decision_call_p"] > free[3]["decision_call_p"] + 0.03  # towards the start's choice


def test_the_warm_starts_reference_is_released_before_grpo_without_kl(
    tiny: Path, tasks: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``kl`` 0 the frozen start served the warm start's anchor only: no one holds it once GRPO samples."""
    import gc
    import weakref

    from inftool_env.train.grpo import model as M
    from inftool_env.train.grpo import train_grpo, trainer

    refs: list[Any] = []
    plain_reference, plain_step = M.reference_of, trainer._Run._grpo_step

    def reference_of(model: Any, lora: int | None) -> Any:
        ref = plain_reference(model, lora)
        refs.append(weakref.ref(ref))
        return ref

    alive: list[bool] = []

    async def step(self: Any, pool: Any, progress: bool) -> Any:
        gc.collect()
        alive.append(refs[0]() is not None)
        return await plain_step(self, pool, progress)

    monkeypatch.setattr(M, "reference_of", reference_of)
    monkeypatch.setattr(trainer._Run, "_grpo_step", step)
    cfg = config(tiny, steps=1, sft_warmup_steps=1, sft_keep_decision=1.0)
    train_grpo(cfg, [(ENV, remove_task(tasks))], tmp_path / "run", progress=False)
    assert len(refs) == 1 and alive == [False]


def test_the_kept_decision_is_whether_to_call_not_how(tokenizer: Any) -> None:
    import torch

    from inftool_env.train.grpo.sft import call_mass, call_openers, decision_kl

    openers = torch.tensor(call_openers(tokenizer))
    start = torch.randn(3, len(tokenizer), generator=torch.Generator().manual_seed(0))
    start[:, openers] += 9.0  # a call about one time in four
    assert bool(((call_mass(start, openers) > 0.1) & (call_mass(start, openers) < 0.5)).all())
    assert torch.allclose(decision_kl(start, start, openers), torch.zeros(3), atol=1e-6)
    how = start.clone()
    how[:, openers] = start[:, openers].roll(1, -1)  # the fence's odds for the tag's, and so on
    how[:, 100:200] = start[:, 100:200].flip(-1)  # other words to decline with (no opener among them)
    assert not set(range(100, 200)) & set(openers.tolist()) and not torch.equal(how, start)
    assert torch.allclose(decision_kl(how, start, openers), torch.zeros(3), atol=1e-6)
    calls = start.clone()
    calls[:, openers] += 1.0  # calling likelier: held
    assert bool((decision_kl(calls, start, openers) > 0.05).all())
    assert bool((decision_kl(start, calls, openers) > 0.05).all())  # and declining likelier


def test_call_form_loss_ignores_one_shift_of_every_call_opener(tokenizer: Any) -> None:
    import torch

    from inftool_env.train.grpo.sft import call_form_nll, call_openers

    openers = call_openers(tokenizer)
    texts = {tokenizer.decode([i]) for i in openers}
    assert {"<", "```", "<tool_call>"} <= texts and all(t.strip()[0] in "<`" for t in texts)
    tag = tokenizer.convert_tokens_to_ids("<")
    logits = torch.randn(3, len(tokenizer), generator=torch.Generator().manual_seed(0))
    chosen, among = torch.tensor([tag] * 3), torch.tensor(openers)
    loss = call_form_nll(logits, chosen, among)
    more_calls = logits.clone()
    more_calls[:, among] += 5.0  # every way to open a call likelier at once: the choice to call, not how
    assert torch.allclose(call_form_nll(more_calls, chosen, among), loss)
    assert torch.allclose(loss, -(logits[:, tag] - logits[:, among].logsumexp(-1)))
    fence = logits.clone()
    fence[:, tokenizer.convert_tokens_to_ids("```")] += 5.0  # the fence likelier than the tag: worse
    assert bool((call_form_nll(fence, chosen, among) > loss).all())


@pytest.mark.anyio
async def test_sft_examples_score_the_assistant_turns_only(tiny: Path, tokenizer: Any, tasks: list[Any]) -> None:
    from transformers import AutoModelForCausalLM

    from inftool_env.train.grpo.chat import TorchChat
    from inftool_env.train.grpo.rollout import EnvPool
    from inftool_env.train.grpo.sft import oracle_examples

    chat = TorchChat(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, name="tiny", max_new_tokens=4)
    pool = EnvPool([(ENV, [t for t in tasks if t.id == "bookshelf-register-and-borrow"])])
    try:
        (example,) = await oracle_examples(pool, chat, seed=0)
    finally:
        await pool.close()
    scored = tokenizer.decode([example.ids[i] for i in example.targets])
    assert scored.count("<|im_end|>") == 2  # the two call turns, each through its end-of-turn
    # Each reply to the user (two user turns here) opens a tool call, "<" of "<tool_call>" in this
    # tokenizer: that token decides to call, so it is context, and the rest of the call is scored.
    openers = [i for i in range(1, len(example.ids)) if i not in example.targets and i + 1 in example.targets]
    assert len(openers) == 2 and all(tokenizer.decode(example.ids[i]) == "<" for i in openers)
    assert example.openers == openers  # trained on how the call opens only (call_form)
    assert example.decisions == openers  # where sft_keep_decision holds the starting model's choice
    assert scored.count("tool_call>\n{") == 2 and "<tool_call>" not in scored
    assert '"registerMember"' in scored and '"borrowBook"' in scored
    assert "Done." not in scored and "Done." in tokenizer.decode(example.ids)  # the closing remark: context only
    assert "Ada Lovelace, ada@example.com" not in scored and "<|im_start|>" not in scored  # the user's words


@pytest.mark.anyio
async def test_sft_on_irrelevance_scores_the_declining_answer(tiny: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    from inftool_env.tasks import Task
    from inftool_env.train.grpo.chat import TorchChat
    from inftool_env.train.grpo.rollout import EnvPool
    from inftool_env.train.grpo.sft import DECLINE, oracle_examples

    chat = TorchChat(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, name="tiny", max_new_tokens=4)
    task = Task(id="irr", category="irrelevance", turns=["What is the capital of Peru?"], one_shot=True)
    pool = EnvPool([(ENV, [task])])
    try:
        (decided,) = await oracle_examples(pool, chat, seed=0, decides="always")
        (example,) = await oracle_examples(pool, chat, seed=0)
    finally:
        await pool.close()
    assert tokenizer.decode([decided.ids[i] for i in decided.targets]) == DECLINE + "<|im_end|>"
    # By default the reply's first token, where declining is decided, is context: GRPO decides.
    assert example.ids == decided.ids and example.targets == decided.targets[1:]
    assert example.openers == decided.openers == []  # no call: nothing about how one opens
    assert example.decisions == decided.targets[:1] and decided.decisions == []  # held where not trained
    assert tokenizer.decode(example.ids[decided.targets[0]]).strip() == DECLINE.split()[0]


@pytest.mark.anyio
async def test_sft_keeps_a_near_miss_beside_its_twin(tiny: Path, tokenizer: Any) -> None:
    """Synthesis's pairs (a decline and the same words to be called) stay side by side through the
    shuffle, so one supervised step holds both and the offer is what differs."""
    from transformers import AutoModelForCausalLM

    from inftool_env.synth import synthesize
    from inftool_env.train.grpo.chat import TorchChat
    from inftool_env.train.grpo.rollout import EnvPool
    from inftool_env.train.grpo.sft import oracle_examples

    run = synthesize(ENV, n=8, categories=["irrelevance"], seed=3, progress=False)
    twins = {t.id: t.provenance["companion_of"] for t in run.tasks if "companion_of" in t.provenance}
    assert twins
    chat = TorchChat(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, name="tiny", max_new_tokens=4)
    pool = EnvPool([(ENV, run.tasks)])
    try:
        examples = await oracle_examples(pool, chat, seed=1)
        paired = await oracle_examples(pool, chat, seed=1, decides="pairs")
    finally:
        await pool.close()
    order = [e.task_id for e in examples]
    assert sorted(order) == sorted(t.id for t in run.tasks)  # every task's oracle episode verified
    for twin, miss in twins.items():
        assert abs(order.index(twin) - order.index(miss)) == 1, (twin, miss, order)
    # decides="pairs": the first token of the reply is a target on both sides of a pair, and only there.
    in_pairs = set(twins) | set(twins.values())
    assert [e.task_id for e in paired] == order and [e.ids for e in paired] == [e.ids for e in examples]
    for plain, decided in zip(examples, paired, strict=True):
        extra = sorted(set(decided.targets) - set(plain.targets))
        assert set(plain.targets) <= set(decided.targets)
        assert len(extra) == (1 if decided.task_id in in_pairs else 0), decided.task_id
        if extra:  # the one token that decides: "<" opens a call, text declines
            opener = tokenizer.decode(decided.ids[extra[0]])
            assert (opener == "<") == (decided.task_id in twins), (decided.task_id, opener)
    assert len(in_pairs) < len(order)  # the plain irrelevance tasks stay undecided


def test_lora_trains_adapters_and_saves_them_merged(tiny: Path, tasks: list[Any], forced: set[int],
                                                    tmp_path: Path) -> None:  # fmt: skip
    pytest.importorskip("peft")
    from inftool_env.train.grpo import train_grpo

    result = train_grpo(config(tiny, steps=1, lora=4, train_layers=None, lr=1e-2), [(ENV, remove_task(tasks))],
                        tmp_path, progress=False)  # fmt: skip
    (record,) = lines(result.metrics_path)
    assert record["loss"] is not None and record["tokens_trained"] > 0
    start, end = weights(tiny), weights(result.checkpoint)
    assert set(end) == set(start)  # merged: a plain model, no adapter weights
    assert any(not (start[k] == end[k]).all() for k in start if "q_proj.weight" in k)


# -- the command -----------------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    import argparse

    from inftool_env.errors import InftoolError
    from inftool_env.train.grpo.cli import add_commands

    parser = argparse.ArgumentParser(prog="inftool")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except InftoolError as exc:
        raise SystemExit(f"error: {exc}") from None


def test_train_command_on_a_task_file_and_its_mistakes(tiny: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "run"
    assert run_cli("train", str(TASKS), "--env", ENV, "--policy", f"hf:{tiny}", "--out", str(out), "--steps", "1",
                   "--tasks-per-step", "2", "--group", "2", "--max-new-tokens", "40", "--train-layers", "1",
                   "--device", "cpu", "--explore-first", "2", "--explore-after-call", "--explore-balanced",
                   "--clip-to", "proximal") == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "time split" in printed and "generation" in printed and f"hf:{out / 'checkpoint'}" in printed
    assert "by category" in printed
    assert len(lines(out / "metrics.jsonl")) == 1 and (out / "checkpoint" / "config.json").is_file()
    with pytest.raises(SystemExit, match="names no env"):
        run_cli("train", str(TASKS), "--policy", str(tiny), "--out", str(tmp_path / "x"))
    with pytest.raises(SystemExit, match="Did you mean inftool/Bookshelf-v0"):
        run_cli("train", "inftool/Bookshelv-v0", "--policy", str(tiny), "--out", str(tmp_path / "x"))
    with pytest.raises(SystemExit, match="not an HF model directory"):
        run_cli("train", ENV, "--policy", str(tmp_path), "--out", str(tmp_path / "x"))
    with pytest.raises(SystemExit, match="for this model: 'hf:/models/q'"):
        run_cli("train", ENV, "--policy", "vllm:/models/q?compile=0", "--out", str(tmp_path / "x"))
    with pytest.raises(SystemExit, match="train-layers"):
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--train-layers", "top")
    import torch

    saved = torch.load(out / "trainer_state" / "state.pt", weights_only=False)["config"]
    assert (saved["explore_temperature"], saved["explore_top_k"], saved["clip_to"]) == (2.0, 8, "proximal")
    assert saved["explore_after_call"] and saved["explore_balanced"]
    with pytest.raises(SystemExit, match="^error: training settings: .*set it too"):  # a check of two flags together
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--explore-after-call")
    with pytest.raises(SystemExit, match="^error: training settings: temperature 0 .*no group carries a signal"):
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--temperature", "0")
    with pytest.raises(SystemExit, match="^error: --clip: Input should be greater than 0"):
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--clip", "0")
    with pytest.raises(SystemExit, match="2"):  # argparse: the flag and the value it refused
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--explore-first", "0")
    assert "--explore-first: expected a number above 0, not '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="between 1 and 2"):
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--train-layers", "5",
                "--device", "cpu")  # fmt: skip
    assert not (tmp_path / "x").exists()  # each refused before the run's folder was made


def test_training_without_its_libraries_is_one_line_that_names_the_extra(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    with pytest.raises(SystemExit, match=r"training needs torch and transformers, the `train` extra"):
        run_cli("train", ENV, "--policy", str(tiny), "--out", str(tmp_path / "x"), "--device", "cpu")
    assert not (tmp_path / "x").exists()


def test_a_generation_given_up_stops_at_its_next_token(tiny: Path):
    """Ctrl-C (here: a timeout) during a rollout: asyncio.run's exit waits for the generation's worker
    thread, which must stop at its next token instead of generating all it was asked for."""
    import asyncio

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inftool_env.train.grpo.chat import TorchChat

    model = AutoModelForCausalLM.from_pretrained(tiny)
    chat = TorchChat(model, AutoTokenizer.from_pretrained(tiny), name="tiny", max_new_tokens=4000)
    chat.stop_ids = lambda: set()  # type: ignore[method-assign] # never ends by itself: only a stop can end it

    async def main() -> None:
        await asyncio.wait_for(chat.complete_tokens([9707, 11, 1879], temperature=1.0, seed=0), 0.5)

    with pytest.raises(TimeoutError):
        asyncio.run(main())  # returns once the worker thread has ended
    assert chat.batches == 1 and 0 < chat.tokens < 2000, chat.tokens


def test_training_refuses_bfcl_envs_however_named(tmp_path: Path) -> None:
    # BFCL is for evaluation only: an env built from BFCL's data is refused where training envs are built,
    # whether it came as an id, a manifest's path, a config or a ToolEnv, and so are BFCL's own tasks.
    from inftool_env.errors import InftoolError
    from inftool_env.registration import default_registry, make
    from inftool_env.train.grpo.rollout import EnvPool

    entry = default_registry().entry("inftool/BfclMathAPI-v0")
    env = make("inftool/BfclMathAPI-v0")
    for source in ("inftool/BfclMathAPI-v0", str(entry.base_dir / "BfclMathAPI-v0.toml"), entry.config, env):
        with pytest.raises(InftoolError, match=r"server '\w+' \(spec bfcl:\w+\) is BFCL's"):
            EnvPool([(source, env.tasks)])
    bookshelf = make("inftool/Bookshelf-v0")
    tainted = env.tasks[0].model_copy(update={"provenance": {"source": "bfcl-eval 2026.3.23 multi_turn_base"}})
    with pytest.raises(InftoolError, match=f"task {tainted.id} is BFCL's"):
        EnvPool([(bookshelf, [*bookshelf.tasks, tainted])])
