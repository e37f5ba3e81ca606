"""Mistakes in training settings, refused before any work with a line that says what and where: GRPOConfig
from `inftool train`'s flags and from evolve's ``--grpo`` JSON, settings that would change nothing, evolve's
sources, and a resume whose settings differ. No model loads: every check here runs before one would."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from inftool_env.errors import InftoolError

ENV = "inftool/Bookshelf-v0"
README = Path(__file__).resolve().parents[2] / "README.md"


def grpo(**fields: Any) -> Any:
    from inftool_env.train.grpo import GRPOConfig

    return GRPOConfig(**fields)


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        grpo(**fields)
    return str(caught.value.errors()[0]["msg"])


def run_cli(module: str, *argv: str) -> int:
    import importlib

    parser = argparse.ArgumentParser(prog="inftool")
    importlib.import_module(module).add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except InftoolError as exc:
        raise SystemExit(f"error: {exc}") from None


def evolve_config(**overrides: Any) -> Any:
    from inftool_env.train.loop import EvolveConfig

    return EvolveConfig(**{"sources": [ENV], "policy": "embedded", **overrides})


@pytest.fixture
def no_model_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evolve checks its model can train (exporting the embedded model's HF copy): not what these test."""
    import importlib

    monkeypatch.setattr(importlib.import_module("inftool_env.train.grpo.model"), "check_can_train", lambda c: None)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch, no_model_check: None) -> None:
    """A setting wrongly let through stops at the first work (building envs, a stage), not in a model load."""
    import importlib

    def work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the settings were accepted")

    monkeypatch.setattr(importlib.import_module("inftool_env.train.grpo.cli"), "training_pool", work)
    monkeypatch.setattr(importlib.import_module("inftool_env.train.loop.evolve").Evolve, "run", work)


# -- GRPOConfig: names, types, numbers ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "meant"),
    [("explore_first", "explore_temperature (--explore-first T)"), ("episode_timeout", "episode_timeout_s"),
     ("explore-top-k", "explore_top_k"), ("step", "steps"), ("policy", "model (--policy)")],
)  # fmt: skip
def test_an_unknown_setting_says_which_was_meant(given: str, meant: str) -> None:
    assert f"unknown setting {given!r}; did you mean {meant}" in refusal(**{given: 2})
    assert "the settings: model, steps" in refusal(xyzzy=1)  # nothing close: the list


def test_types_are_not_coerced_and_numbers_are_finite() -> None:
    assert refusal(steps=True) == "Input should be a valid integer"
    assert refusal(sft_call_form="yes") == "Input should be a valid boolean"
    assert refusal(lr="1e-5") == "Input should be a valid number"
    for field in ("lr", "temperature", "explore_temperature", "episode_timeout_s", "kl"):
        for value in (float("inf"), float("nan")):
            assert refusal(**{field: value}) == "Input should be a finite number", field
    assert grpo(lr=1, clip=0.5).lr == 1.0  # an int still fills a float
    assert grpo(train_layers="all").train_layers is None  # the flag's spelling of every layer


@pytest.mark.parametrize(
    ("fields", "says"),
    [({"is_cap": 2.0}, "is_cap (--is-cap) has no effect without clip_to 'proximal' (--clip-to proximal)"),
     ({"explore_top_k": 3}, "explore_top_k (--explore-top-k) has no effect without explore_temperature"),
     ({"explore_after_call": True}, "explore_after_call (--explore-after-call) has no effect without "
                                    "explore_temperature (--explore-first T): set it too"),
     ({"explore_balanced": True}, "explore_balanced (--explore-balanced) has no effect without explore_temperature"),
     ({"sft_decides": "always"}, "sft_decides (--sft-decides) has no effect without sft_warmup_steps"),
     ({"sft_call_form": True}, "leave sft_call_form off"),
     ({"sft_batch": 8}, "sft_batch has no effect without sft_warmup_steps (--sft-warmup-steps)"),
     ({"sft_lr": 1e-4}, "sft_lr (--sft-lr) has no effect without sft_warmup_steps"),
     ({"sft_warmup_steps": 2, "sft_decides": "always", "sft_call_form": True}, "'always' leaves none out"),
     ({"clip": 5}, "5 clips the ratio to (-4, 6), and a ratio is never below 0"),
     ({"clip": 1}, "pick one below 1"),
     ({"temperature": 0}, "explore the first token: explore_temperature (--explore-first T)")],
)  # fmt: skip
def test_a_setting_that_would_change_nothing_is_refused(fields: dict[str, Any], says: str) -> None:
    assert says in refusal(**fields)


def test_defaults_the_command_line_and_the_readme_recipes_still_validate() -> None:
    grpo()
    explore = {"explore_temperature": 2.0, "explore_top_k": 4, "explore_after_call": True, "explore_balanced": True}
    grpo(is_cap=2.0, clip_to="proximal", **explore)
    grpo(sft_warmup_steps=3, sft_batch=5, sft_decides="pairs", sft_call_form=True)
    grpo(partial_calls=True)
    recipes = re.findall(r"--grpo '(\{.*?\})'", README.read_text(), flags=re.DOTALL)
    assert any("sft_warmup_steps" in r for r in recipes)  # the headline run's
    for recipe in recipes:
        grpo(**json.loads(recipe))


def test_train_flags_name_the_flag_and_fail_before_any_work(tmp_path: Path, no_work: None) -> None:
    out = str(tmp_path / "x")
    common = ("train", ENV, "--policy", "embedded", "--out", out)
    with pytest.raises(SystemExit, match="^error: training settings: is_cap .*--clip-to proximal"):
        run_cli("inftool_env.train.grpo.cli", *common, "--is-cap", "3")
    with pytest.raises(SystemExit, match=r"^error: training settings: .*explore_top_k \(--explore-top-k\)"):
        run_cli("inftool_env.train.grpo.cli", *common, "--explore-top-k", "3")
    with pytest.raises(SystemExit, match="^error: training settings: sft_decides .*--sft-warmup-steps"):
        run_cli("inftool_env.train.grpo.cli", *common, "--sft-decides", "always")
    with pytest.raises(SystemExit, match=r"^error: --clip: 5 clips the ratio to \(-4, 6\)"):
        run_cli("inftool_env.train.grpo.cli", *common, "--clip", "5")
    with pytest.raises(SystemExit, match="^error: --lr: Input should be a finite number"):
        run_cli("inftool_env.train.grpo.cli", *common, "--lr", "inf")
    assert not (tmp_path / "x").exists()


# -- evolve ---------------------------------------------------------------------------------------------
def test_evolve_grpo_json_mistakes_name_the_field(tmp_path: Path, no_work: None) -> None:
    out = str(tmp_path / "x")
    for given, says in [
        ('{"explore_first": 2}', "grpo settings: unknown setting 'explore_first'; did you mean explore_temperature"),
        ('{"temperature": 0}', "explore the first token: explore_temperature"),
        ('{"steps": true}', "grpo settings: steps: Input should be a valid integer"),
        ('{"lr": 1e999}', "grpo settings: lr: Input should be a finite number"),
        ('{"is_cap": 2}', "grpo settings: is_cap (--is-cap) has no effect"),
    ]:
        with pytest.raises(SystemExit) as caught:
            run_cli("inftool_env.train.loop.cli", "evolve", ENV, "--out", out, "--grpo", given)
        assert says in str(caught.value), given
    assert not (tmp_path / "x").exists()


def test_evolve_accepts_all_layers_in_json(tmp_path: Path, no_model_check: None) -> None:
    from inftool_env.train.loop.evolve import Evolve

    Evolve(evolve_config(grpo={"train_layers": "all"}), tmp_path / "run", progress=False)


def test_evolve_refuses_a_repeated_or_missing_source_before_making_its_folder(
    tmp_path: Path, no_model_check: None
) -> None:
    from inftool_env.train.loop.evolve import Evolve

    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.0.0\n")
    out = tmp_path / "run"
    for sources, says in [
        ([ENV, ENV], f"source {ENV!r} is given twice"),
        ([str(spec), f"{tmp_path}/./spec.yaml"], f"is the same as {str(spec)!r}"),
        (["inftool/Bookshelf-v9"], "no version 9; registered: inftool/Bookshelf-v0"),
        (["inftool/Bookshelv-v0"], "Did you mean inftool/Bookshelf-v0"),
        ([str(tmp_path / "nope.yaml")], "nope.yaml: no such file, nor an env id"),
        ([str(tmp_path / "nope.toml")], "no manifest at"),
    ]:
        with pytest.raises(InftoolError, match=re.escape(says)):
            Evolve(evolve_config(sources=sources), out, progress=False)
    assert not out.exists()


def test_evolve_resume_names_each_changed_setting_and_takes_equivalent_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_model_check: None
) -> None:
    from inftool_env.train.loop.evolve import Evolve

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # enough for check_trainable: an HF directory
    out = tmp_path / "run"
    Evolve(evolve_config(policy="model", grpo={"steps": 3}), out, progress=False)
    (out / "state.json").write_text(json.dumps({"done": ["heldout"]}))
    # The same run, spelt otherwise: an explicit default, hf:, the absolute path, and more rounds.
    same = evolve_config(policy=f"hf:{tmp_path / 'model'}", grpo={"steps": 3, "group": 4}, rounds=5)
    assert Evolve(same, out, resume=True, progress=False).done == ["heldout"]
    other = evolve_config(policy="hf:./model", grpo={"steps": 5, "seed": 0}, eval_tasks=3)
    with pytest.raises(InftoolError) as caught:
        Evolve(other, out, resume=True, progress=False)
    message = str(caught.value)
    assert "different settings" in message and "only --rounds may change" in message
    assert "eval_tasks 40 -> 3" in message and "grpo.steps 3 -> 5" in message
    assert 'grpo.seed "each round\'s (--seed + round)" -> 0' in message  # explicit: no longer per round
    assert "policy" not in message and "grpo.group" not in message


def test_an_evolve_run_saved_with_a_setting_that_changes_nothing_resumes_without_it():
    from inftool_env.train.loop.evolve import _changes

    saved = evolve_config(grpo={"sft_batch": 8, "is_cap": 3.0})  # refused now: no warm start, no proximal clip
    assert _changes(saved, evolve_config()) == []
    assert _changes(saved, evolve_config(grpo={"steps": 3})) == ["grpo.steps 20 -> 3"]
