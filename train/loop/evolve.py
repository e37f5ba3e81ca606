"""``inftool evolve``: the closed loop. Before round 1 the policy is evaluated on a held-out split of
synthesized tasks; each round then plans targets from the latest evaluation (tool x category x error
type) and the previous round's training rollouts (per-task group success), synthesizes targeted tasks
(the plan carries a share of irrelevance; a share of earlier rounds' tasks is replayed, so the model
does not learn to call a tool for everything), trains with GRPO, exports the checkpoint to GGUF and
evaluates again. BFCL categories may be evaluated after each evaluation: measurement only, they never
reach the plan, and BFCL's own APIs are refused as sources. A round that scores below an earlier one on
the held-out split is not built on: the next round plans from and trains the best policy so far
(``keep_best``; a run of the embedded model once fell from 44% to 12% in one round, declining everything).

Everything is a file in the run folder; ``state.json`` records each finished stage and its wall time, so
a run interrupted anywhere continues with ``resume=True`` from the first unfinished stage (a half-done
training run from its last saved step), and the closing table says where the time went.

    DIR/config.json  state.json  metrics.jsonl  progress.png  summary.txt
    DIR/heldout/<source>/            tasks.jsonl + manifest (the evaluation split, synthesized once)
    DIR/round_0/eval/                the policy before training: report.json, <source>/trajectories.jsonl
    DIR/round_R/plan/<source>.json   the allocation (cells per tool x category, hard parents)
    DIR/round_R/tasks/<source>/      synthesized tasks + manifest;  train_tasks.jsonl: what trained
    DIR/round_R/train/               the trainer's run (metrics.jsonl, rollouts.jsonl, checkpoint/)
    DIR/round_R/model.gguf           the checkpoint for llama.cpp;  DIR/round_R/eval/, bfcl/
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from inftool_env.errors import InftoolError, first_invalid
from inftool_env.tasks import Task, load_tasks
from inftool_env.train.loop import report as R

if TYPE_CHECKING:
    from inftool_env.synth.foreign import ForeignRequest
    from inftool_env.synth.run import Admit
    from inftool_env.synth.world import World

HELDOUT_SEED = 1_000_003  # the evaluation split's synthesis seed, apart from every round's
_METHOD = {"eval": "evaluate"}  # stage name -> method, where they differ


class EvolveConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(min_length=1, description="env ids or raw spec sources to synthesize over")
    policy: str = Field(default="embedded", description="the model trained: 'embedded' or an HF directory")
    rounds: int = Field(default=2, ge=1)
    tasks_per_round: int = Field(default=60, ge=1, description="synthesized training tasks per source and round")
    eval_tasks: int = Field(default=40, ge=1, description="held-out tasks per source")
    keep_share: float = Field(default=0.3, ge=0, le=1, description="plan_targets: share kept for hard-task variants")
    irrelevance_share: float = Field(default=0.15, ge=0, le=1, description="plan_targets: irrelevance share")
    replay_share: float = Field(default=0.25, ge=0, lt=1, description="training tasks replayed from earlier rounds")
    foreign_requests: int = Field(default=0, ge=0, description="requests made per source that the other sources' "
                                  "irrelevance offers their own tools (0: none; synth/foreign.py)")  # fmt: skip
    generator: str = "schema"
    categories: list[str] | None = None
    eval_via: Literal["gguf", "hf"] = Field(default="gguf", description="gguf: export each checkpoint, llama.cpp")
    eval_max_tokens: int = Field(default=128, ge=1)
    eval_concurrency: int = Field(default=4, ge=1)
    bfcl_categories: list[str] = Field(default_factory=list, description="measured each evaluation, never steer")
    bfcl_limit: int | None = Field(default=None, ge=1)
    grpo: dict[str, Any] = Field(default_factory=dict, description="GRPOConfig fields (model is set per round)")
    keep_best: bool = Field(default=True, description="each round starts from the best policy on the held-out "
                            "split so far (the latest among equals), not a worse latest one")  # fmt: skip
    fit_budget: bool = Field(default=True, description="synthesize only tasks whose answer fits a turn's tokens "
                             "(held out: eval_max_tokens; training: grpo's max_new_tokens; synth/budget)")  # fmt: skip
    seed: int = Field(default=0, ge=0)

    @field_validator("categories")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        """One name an item ("simple,parallel" is two): synthesis and the plan must read the same list."""
        from inftool_env.synth.categories import parse_categories

        try:
            return parse_categories(value) if value else None
        except InftoolError as exc:
            raise ValueError(str(exc)) from None


class Evolve:
    """One run folder. Stages are methods; ``run()`` does the ones not yet done."""

    def __init__(self, config: EvolveConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> None:
        self.config, self.out, self.progress = config, Path(out), progress
        _check_sources(config.sources)  # before --out exists: a typo leaves no half-made run folder
        self._check_grpo()
        state_path = self.out / "state.json"
        if resume and not (self.out / "config.json").exists():  # written before the first stage starts
            raise InftoolError(f"{self.out}: nothing to resume (no evolve run was started there); "
                               "run without --resume to start one")  # fmt: skip
        if state_path.exists() and not resume:
            raise InftoolError(f"{self.out} already holds an evolve run; continue it (--resume) or pick another --out")
        if resume and state_path.exists():
            changed = _changes(_saved(self.out / "config.json"), config)
            if changed:
                raise InftoolError(f"{self.out}: --resume with different settings than the run was started with: "
                                   f"{'; '.join(changed)} (only --rounds may change; pass the others as before, "
                                   "or pick another --out)")  # fmt: skip
            state = json.loads(state_path.read_text())
            self.done: list[str] = state["done"]
            self.seconds: dict[str, float] = state.get("seconds", {})  # none in a run folder older than them
        else:
            self.done, self.seconds = [], {}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(config.model_dump_json(indent=1))
        self.slugs = {s: _slug(s, i) for i, s in enumerate(config.sources)}

    # -- driver -----------------------------------------------------------------------------------
    def run(self) -> str:
        names = ["plan", "synth", "train", *(["export"] if self.config.eval_via == "gguf" else []), "eval"]
        names += ["bfcl"] if self.config.bfcl_categories else []
        stages: list[tuple[str, Callable[[], None]]] = [
            ("heldout", self.heldout),
            ("0/eval", partial(self.evaluate, 0)),
        ]
        if self.config.bfcl_categories:
            stages.append(("0/bfcl", partial(self.bfcl, 0)))
        for r in range(1, self.config.rounds + 1):
            stages += [(f"{r}/{name}", partial(getattr(self, _METHOD.get(name, name)), r)) for name in names]
        bar = tqdm(total=len(stages), initial=sum(n in self.done for n, _ in stages), desc="evolve", unit="stage",
                   disable=not self.progress)  # fmt: skip
        try:
            for name, stage in stages:
                if name in self.done:
                    continue
                bar.set_postfix_str(name)
                began = time.monotonic()
                try:
                    stage()
                except KeyboardInterrupt:
                    if self.progress:
                        print(f"\ninterrupted in stage {name}; `--resume` continues from there", flush=True)
                    raise
                self.done.append(name)
                self.seconds[name] = round(time.monotonic() - began, 1)  # an interrupted stage's time is not kept
                _write_json(self.out / "state.json", {"done": self.done, "seconds": self.seconds})
                self.write_metrics()
                bar.update(1)
        finally:
            bar.close()
        return self.finish()

    # -- stages -----------------------------------------------------------------------------------
    def heldout(self) -> None:
        from inftool_env.synth import synthesize
        from inftool_env.synth.categories import parse_categories
        from inftool_env.synth.run import too_few

        few = too_few(self.config.eval_tasks, parse_categories(self.config.categories))
        if few is not None:  # the held-out split then never measures those categories on that source
            print(few.replace("tasks over", "held-out tasks (--eval-tasks) over"), flush=True)
        worlds, foreign = self.foreign(self.config.seed + HELDOUT_SEED)
        for source, slug in self.slugs.items():
            run = synthesize(worlds.get(source, source), n=self.config.eval_tasks, categories=self.config.categories,
                             generator=self.config.generator, seed=self.config.seed + HELDOUT_SEED, round=0,
                             progress=self.progress, foreign=foreign[source],
                             admit=self.admit(self.config.eval_max_tokens))  # fmt: skip
            self.say_refused(source, run.dropped, self.config.eval_max_tokens, "held-out")
            if not run.tasks:
                raise InftoolError(f"{source}: synthesis made no held-out tasks (dropped: {run.dropped})")
            _fresh(self.out / "heldout" / slug)
            run.write(self.out / "heldout" / slug)

    def evaluate(self, r: int) -> None:
        from inftool_env.eval.runner import evaluate

        where = _fresh(self.out / f"round_{r}" / "eval")
        spec = self.policy_string(r)
        factory = _policy(spec)
        trajectories, tasks = [], {}
        try:
            for slug in self.slugs.values():
                env, held = self.env_of(self.out / "heldout" / slug)
                tasks.update({t.id: t for t in held})
                work = evaluate(env, factory, out=where / slug, progress=self.progress,
                                concurrency=self.config.eval_concurrency)  # fmt: skip
                _, trajs = asyncio.run(_close_after(env, work))
                trajectories += trajs
        finally:
            _release(factory)
        report = R.cell_report(trajectories, tasks)
        _write_json(where / "report.json", {"round": r, "policy": spec, **report})

    def bfcl(self, r: int) -> None:
        """BFCL accuracy of this round's policy: written beside the round, read only by metrics and plot."""
        from inftool_env.eval.bfcl import evaluate_bfcl
        from inftool_env.eval.bfcl_data import resolve_categories

        where = _fresh(self.out / f"round_{r}" / "bfcl")
        spec = self.policy_string(r)
        factory = _policy(spec)
        try:
            report = asyncio.run(evaluate_bfcl(spec, factory, resolve_categories(self.config.bfcl_categories),
                                               limit=self.config.bfcl_limit, out=where, progress=self.progress,
                                               concurrency=self.config.eval_concurrency))  # fmt: skip
        finally:
            _release(factory)
        _write_json(where / "accuracy.json", {c: v["accuracy"] for c, v in report.accuracy().items()})

    def plan(self, r: int) -> None:
        """Targets from the latest evaluation's per-task success and the last training's group success.
        Held-out tasks steer which cells get tasks but are never parents of training variants."""
        from inftool_env.synth import plan_targets

        where = _fresh(self.out / f"round_{r}" / "plan")
        start = self.start_of(r)
        for slug in self.slugs.values():
            held = load_tasks(self.out / "heldout" / slug / "tasks.jsonl")
            evaluated = _read_jsonl(self.out / f"round_{start}" / "eval" / slug / "trajectories.jsonl")
            success = {t["task_id"]: float((t.get("reward") or {}).get("reward", 0.0) >= 1.0) for t in evaluated}
            tasks = list(held)
            if r > 1:
                trained = load_tasks(self.out / f"round_{r - 1}" / "tasks" / slug / "train_tasks.jsonl")
                rates = json.loads((self.out / f"round_{r - 1}" / "train" / "task_success.json").read_text())
                tasks += [t for t in trained if t.id in rates]
                success.update({k: v for k, v in rates.items() if k in {t.id for t in trained}})
            plan = plan_targets(success, tasks, n=self.config.tasks_per_round, keep_share=self.config.keep_share,
                                irrelevance_share=self.config.irrelevance_share, seed=self.config.seed + r,
                                categories=self.config.categories)  # fmt: skip
            held_ids = {t.id for t in held}
            plan = plan.model_copy(update={"hard_tasks": [t for t in plan.hard_tasks if t.id not in held_ids]})
            (where / f"{slug}.json").write_text(plan.model_dump_json(indent=1))
            (where / f"{slug}.txt").write_text(plan.describe() + "\n")

    def synth(self, r: int) -> None:
        from inftool_env.synth import TargetPlan, synthesize

        worlds, foreign = self.foreign(self.config.seed + r)
        for source, slug in self.slugs.items():
            plan = TargetPlan.model_validate_json((self.out / f"round_{r}" / "plan" / f"{slug}.json").read_text())
            where = _fresh(self.out / f"round_{r}" / "tasks" / slug)
            opened = worlds.get(source, source)
            run = synthesize(opened, n=self.config.tasks_per_round, categories=self.config.categories,
                             generator=self.config.generator, seed=self.config.seed + r, plan=plan, round=r,
                             progress=self.progress, foreign=foreign[source],
                             admit=self.admit(self.max_new_tokens))  # fmt: skip
            self.say_refused(source, run.dropped, self.max_new_tokens, f"round {r}")
            run.write(where)
            held = {_text(t) for t in load_tasks(self.out / "heldout" / slug / "tasks.jsonl")}
            fresh = [t for t in run.tasks if _text(t) not in held]  # the held-out split stays unseen
            earlier = [
                t
                for q in range(1, r)
                for t in load_tasks(self.out / f"round_{q}" / "tasks" / slug / "train_tasks.jsonl")
                if t.provenance.get("round") == q
            ]
            replay = _replay(earlier, len(fresh), self.config.replay_share, random.Random(self.config.seed + r))
            train = fresh + replay
            if not train:
                raise InftoolError(f"{source}: round {r} has no training tasks (dropped: {run.dropped})")
            _write_jsonl(where / "train_tasks.jsonl", [t.model_dump(mode="json") for t in train])
            _write_json(where / "allocation.json", {
                "synthesized": len(run.tasks), "held_out_collisions": len(run.tasks) - len(fresh),
                "replayed": len(replay), "dropped": run.dropped, "not_applicable": run.not_applicable,
                "by_category": _count(t.category for t in train),
            })  # fmt: skip

    def admit(self, max_tokens: int) -> Admit | None:
        """With ``fit_budget``, synthesis's check that a task's answer fits ``max_tokens`` (synth/budget.py)."""
        from inftool_env.synth.budget import within_budget

        if not self.config.fit_budget:
            return None
        return within_budget(self.tokenizer, max_tokens, name=f"--policy {self.config.policy}'s tokenizer")

    @functools.cached_property
    def tokenizer(self) -> Any:
        """The policy's tokenizer (every round's checkpoint keeps the starting model's)."""
        from inftool_env.llm.tokenizers import load_tokenizer

        return load_tokenizer(str(self.model_dir(0)), flag="--policy")

    def say_refused(self, source: str, dropped: dict[str, int], max_tokens: int, split: str) -> None:
        from inftool_env.synth.budget import refused as count_refused

        refused = count_refused(dropped)
        if refused and self.progress:
            print(f"{source}, {split}: {refused} synthesized tasks needed more than {max_tokens} tokens a turn and "
                  "were dropped, others drawn where attempts allowed (--no-fit-budget keeps them)",
                  flush=True)  # fmt: skip

    @property
    def max_new_tokens(self) -> int:
        """A training turn's tokens: what the trainer samples (grpo's max_new_tokens, or its default)."""
        from inftool_env.train.grpo import GRPOConfig

        return GRPOConfig(**{**self.config.grpo, "model": self.config.policy}).max_new_tokens

    def foreign(self, seed: int) -> tuple[dict[str, World], dict[str, tuple[ForeignRequest, ...]]]:
        """Each source's requests of the other sources, for its irrelevance (none with one source), and the
        worlds opened to make them, which synthesis then takes rather than opening each source again."""
        from inftool_env.synth.foreign import pools
        from inftool_env.synth.world import open_world

        if not self.config.foreign_requests or len(self.slugs) < 2:
            return {}, dict.fromkeys(self.slugs, ())
        model = None if self.config.generator == "schema" else self.config.generator  # as synthesize opens it
        worlds = {s: open_world(s, model=model) for s in self.slugs}
        return worlds, pools(worlds, self.config.foreign_requests, seed)

    def train(self, r: int) -> None:
        from inftool_env.train.grpo import GRPOConfig, train_grpo
        from inftool_env.train.grpo.state import state_file

        where = self.out / f"round_{r}" / "train"
        resume = state_file(where).exists()  # an interrupted stage continues from its last saved step
        if not resume:
            _fresh(where)
        pool = []
        for slug in self.slugs.values():
            env, _ = self.env_of(self.out / f"round_{r}" / "tasks" / slug)
            pool.append((env, load_tasks(self.out / f"round_{r}" / "tasks" / slug / "train_tasks.jsonl")))
        start = self.start_of(r)
        _write_json(where / "start.json", {"from_round": start, "model": str(self.model_dir(start)),
                                           "held_out_accuracy": self.heldout_accuracy(start)})  # fmt: skip
        config = GRPOConfig(**{"seed": self.config.seed + r, **self.config.grpo, "model": str(self.model_dir(start))})
        result = train_grpo(config, pool, where, resume=resume, progress=self.progress)
        _write_json(where / "task_success.json", result.task_success)

    def export(self, r: int) -> None:
        from inftool_env.train.loop.export import export_gguf

        result = export_gguf(self.model_dir(r), self.out / f"round_{r}" / "model.gguf", self.base_gguf(),
                             base_hf=self.model_dir(0))  # fmt: skip
        _write_json(self.out / f"round_{r}" / "export.json", {"replaced": list(result.replaced), "kept": result.kept,
                                                              "seconds": round(result.seconds, 1)})  # fmt: skip

    # -- models and envs --------------------------------------------------------------------------
    def heldout_accuracy(self, r: int) -> float:
        return float(json.loads((self.out / f"round_{r}" / "eval" / "report.json").read_text())["overall"]["accuracy"])

    def start_of(self, r: int) -> int:
        """The round whose policy round ``r`` plans from and trains: ``r - 1``, or with ``keep_best`` the
        best on the held-out split among the rounds before (the latest among equals)."""
        return self.best_round(r) if self.config.keep_best else r - 1

    def best_round(self, rounds: int) -> int:
        """The best of rounds 0 .. ``rounds - 1`` on the held-out split, the latest among equals."""
        return max(range(rounds), key=lambda q: (self.heldout_accuracy(q), q))

    def model_dir(self, r: int) -> Path:
        if r == 0:
            from inftool_env.train.grpo.model import resolve_model_dir

            return resolve_model_dir(self.config.policy)
        return self.out / f"round_{r}" / "train" / "checkpoint"

    def base_gguf(self) -> Path:
        """The starting model as GGUF: the embedded file itself, or the starting HF directory converted."""
        if self.config.policy.removeprefix("hf:") == "embedded":
            from inftool_env.llm.embedded import embedded_gguf

            return embedded_gguf()
        path = self.out / "base.gguf"
        if not path.is_file():
            from inftool_env.train.loop.export import hf_to_gguf

            hf_to_gguf(self.model_dir(0), path)
        return path

    def policy_string(self, r: int) -> str:
        if self.config.eval_via == "hf":
            where = self.model_dir(r)
            return f"hf:{where}?max_tokens={self.config.eval_max_tokens}&temperature=0"
        model = self.base_gguf() if r == 0 else self.out / f"round_{r}" / "model.gguf"
        return f"gguf:{model}?max_tokens={self.config.eval_max_tokens}&temperature=0"

    @staticmethod
    def env_of(folder: Path) -> tuple[Any, list[Task]]:
        """The env a synthesis run wrote (its manifest), with that folder's tasks."""
        from inftool_env.env.build import build_env
        from inftool_env.registration import load_manifest

        manifests = sorted(folder.glob("*.toml"))
        if not manifests:
            raise InftoolError(f"{folder}: no env manifest (was the synthesis stage interrupted?)")
        entry = load_manifest(manifests[0])
        env = build_env(entry.config, entry.base_dir)
        return env, list(env.tasks)

    def _check_grpo(self) -> None:
        if "model" in self.config.grpo:
            raise InftoolError("grpo settings: 'model' is set by the loop (--policy, then each round's checkpoint)")
        try:
            from inftool_env.train.grpo import GRPOConfig
            from inftool_env.train.grpo.model import check_can_train, check_trainable
        except ImportError as exc:
            raise InftoolError(f"evolve needs the GRPO trainer's dependencies ({exc})") from None
        check_trainable(self.config.policy)  # a model string training cannot load fails now, before any stage
        from pydantic import ValidationError

        try:  # a bad field fails now, not after the first evaluation
            config = GRPOConfig(**{**self.config.grpo, "model": self.config.policy})
        except ValidationError as exc:
            raise InftoolError(f"grpo settings: {first_invalid(exc)}") from None
        check_can_train(config)  # the libraries, device and layers the first training stage will need

    # -- metrics, plot, table ---------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for r in range(0, self.config.rounds + 1):
            folder = self.out / f"round_{r}"
            train = folder / "train" / "metrics.jsonl"
            if r and f"{r}/train" in self.done:
                alloc = {
                    s: json.loads((folder / "tasks" / s / "allocation.json").read_text()) for s in self.slugs.values()
                }
                start = folder / "train" / "start.json"
                began = json.loads(start.read_text())["from_round"] if start.is_file() else r - 1
                rows.append({"kind": "train", "round": r, "from_round": began, **R.train_summary(train),
                             "allocation": alloc})  # fmt: skip
            if f"{r}/eval" in self.done:
                ev = json.loads((folder / "eval" / "report.json").read_text())
                bfcl = folder / "bfcl" / "accuracy.json"
                row = {"kind": "eval", "round": r, "policy": ev["policy"], "categories": ev["categories"],
                       "overall": ev["overall"]}  # fmt: skip
                if f"{r}/bfcl" in self.done and bfcl.is_file():
                    row["bfcl"] = json.loads(bfcl.read_text())
                rows.append(row)
        return rows

    def write_metrics(self) -> None:
        rows = self.metrics()
        _write_jsonl(self.out / "metrics.jsonl", rows)
        R.plot_rounds(rows, self.out / "progress.png")

    def finish(self) -> str:
        rows = self.metrics()
        evals = [m for m in rows if m["kind"] == "eval"]
        title = f"evolve: held-out accuracy, round 0 (before) -> round {evals[-1]['round']} (after)"
        table = R.format_table(R.before_after(rows), title=title)
        best = evals[self.best_round(len(evals))]
        if best["round"] != evals[-1]["round"]:
            score = 100 * best["overall"]["accuracy"]
            table += f"\nbest on the held-out split: round {best['round']} ({score:.1f}%), {best['policy']}"
        table += "\n\n" + R.format_times(self.seconds, untimed=len(set(self.done) - set(self.seconds)))
        (self.out / "summary.txt").write_text(table + "\n")
        return table


def evolve(config: EvolveConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> str:
    """Run (or continue) the loop; returns the closing before/after table (also in DIR/summary.txt)."""
    return Evolve(config, out, resume=resume, progress=progress).run()


# -- helpers -----------------------------------------------------------------------------------------
def _check_sources(sources: list[str]) -> None:
    """Each source once (the folders are keyed by source, so a repeat was silently one), and each one
    synthesis can open (checked the cheap way: an id registered, a file there)."""
    seen: dict[str, str] = {}
    for source in sources:
        key = _source_key(source)
        if key in seen:
            same = "is given twice" if seen[key] == source else f"is the same as {seen[key]!r}"
            raise InftoolError(f"source {source!r} {same}: each source is synthesized and evaluated once")
        seen[key] = source
        _check_source(source)


def _check_source(source: str) -> None:
    """BFCL is for evaluation only: its data and its own APIs are never synthesis sources, whether named
    by id, by a manifest's path or as a spec (a stdio wrapper of ``inftool serve bfcl:…`` included).
    Otherwise an env id must be registered and a local spec or manifest must exist, read as
    ``synth.world.open_world`` reads a source."""
    from inftool_env.eval.bfcl_guard import MARK, refuse_bfcl
    from inftool_env.synth.world import env_entry, names_no_file

    if MARK in source:
        raise InftoolError(f"{source}: BFCL's APIs are evaluation material; evolve synthesizes over other specs")
    entry = env_entry(source)  # an unknown id: the registry's "did you mean"
    if entry is not None:
        refuse_bfcl(source, entry.config)
    elif not (names_no_file(source) or Path(source).exists()):
        raise InftoolError(f"{source}: no such file, nor an env id (namespace/Name-vN; `inftool list` shows them)")


def _source_key(source: str) -> str:
    return str(Path(source).resolve()) if Path(source).exists() else source


def _saved(path: Path) -> EvolveConfig:
    """The settings a run folder was started with. A run from before ``fit_budget`` synthesized without it."""
    data = json.loads(path.read_text())
    data.setdefault("fit_budget", False)
    return EvolveConfig.model_validate(data)


def _changes(saved: EvolveConfig, config: EvolveConfig) -> list[str]:
    """``setting old -> new`` for each setting that differs in effect, not merely in spelling."""
    was, now = _settings(saved), _settings(config)
    return [f"{k} {was.get(k, 'unset')!r} -> {now.get(k, 'unset')!r}"
            for k in {**was, **now} if was.get(k, "unset") != now.get(k, "unset")]  # fmt: skip


def _settings(config: EvolveConfig) -> dict[str, Any]:
    """What a run does, in one spelling: the policy's path resolved and ``hf:`` dropped, the grpo settings
    validated (an explicit default is the default); ``rounds``, which a resume may change, left out."""
    from pydantic import ValidationError

    from inftool_env.train.grpo import GRPOConfig

    flat = config.model_dump(exclude={"rounds", "grpo"})
    name = config.policy.removeprefix("hf:")
    flat["policy"] = name if name == "embedded" or ":" in name else str(Path(name).resolve())
    flat["sources"] = [_source_key(s) for s in config.sources]
    try:  # lax: a run saved before strict types wrote `3.0` for 3
        grpo = GRPOConfig.model_validate({**config.grpo, "model": "embedded"}, strict=False)
    except ValidationError:
        grpo = GRPOConfig.model_construct(**config.grpo)  # saved under older rules: defaults filled in, unchecked
    settings = {k: v for k, v in grpo.effective().items() if k != "model"}  # a no-effect setting: its default
    if "seed" not in config.grpo:
        settings["seed"] = "each round's (--seed + round)"  # unlike an explicit one, which every round shares
    return flat | {f"grpo.{k}": v for k, v in settings.items()}


def _slug(source: str, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", Path(source).stem if Path(source).exists() else source).strip("-")
    return f"{index}-{name or 'source'}"


def _policy(spec: str) -> Any:
    from inftool_env.policies import resolve_policy

    return resolve_policy(spec)


def _release(factory: Any) -> None:
    """Free a local model now (llama.cpp holds its weights until closed), not at interpreter exit."""
    close = getattr(getattr(factory, "chat", None), "close", None)
    if close is not None:
        close()


async def _close_after(env: Any, work: Any) -> Any:
    try:
        return await work
    finally:
        await env.close()


def _text(task: Task) -> str:
    return " ".join(" ".join(task.turns).lower().split())


def _replay(earlier: list[Task], fresh: int, share: float, rng: random.Random) -> list[Task]:
    """``share`` of the training set from earlier rounds' own synthesized tasks (not their replays)."""
    want = round(fresh * share / (1 - share)) if share else 0
    return rng.sample(earlier, min(want, len(earlier)))


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return dict(sorted(out.items()))


def _fresh(folder: Path) -> Path:
    """A stage's folder, emptied: a stage interrupted half-way is redone from its start."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    tmp.replace(path)
