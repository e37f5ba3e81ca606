"""Cases per second of our BFCL checkers and of BFCL's own, on the same cases, in one run.

AST: every entry of the AST categories, ground truth + mutations. Multi-turn: every entry of the
four multi-turn categories, ground truth + mutations; ours replays both sides on our MCP servers'
call path, BFCL's executes them on its classes; both stop at the first failing turn. The official
checker runs in its own virtualenv (`make test` builds .venv-bfcl); its time is the checking loop
alone, measured inside that process, so interpreter start-up, imports and I/O do not count.

Each ratio is official time / ours, wall clock, the median of interleaved rounds (so drift on a
shared machine hits both alike), against its target: AST >= 3x, multi-turn >= 5x. CPU time is
printed beside it, steadier where other work shares the cores. Multi-turn cases come ten or so per
entry, as a GRPO group's rollouts do: ours keeps an entry's ground-truth side after its second
replay (multi_turn.TruthCache), its frozen states included, so a case replays only the turns where it
left the ground truth's calls and states; the "no reuse" line replays both sides of every case.
``--bare-calls`` adds a bound, not a checker: ours with every server call swapped for the backend
alone and its result's JSON (no guards, no validation), to show what the call path costs
(it runs on the backend the calls ours refuses, so it may come out slower than ours);
and the time one pass of ours spends inside BFCL's own classes (their methods and fresh scenarios),
the work no checker of these cases skips, with the ratio a checker doing nothing else would reach.

    python bench/bench_bfcl_checker.py [--rounds 3] [--bare-calls]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402

from inftool_env.backends.base import copy_tree  # noqa: E402
from inftool_env.backends.bfcl import BFCL_DOMAINS, BfclBackend, bfcl_class  # noqa: E402
from inftool_env.eval.bfcl_data import domain_servers  # noqa: E402
from inftool_env.mcp.server import CompiledServer, result_text  # noqa: E402
from inftool_env.rewards.bfcl_ast import check_ast  # noqa: E402
from inftool_env.rewards.multi_turn import TruthCache, verdict_multi_turn  # noqa: E402
from tests.rewards.cases import AST_CATEGORIES, UNDERSCORE_MODEL, agreement_cases  # noqa: E402
from tests.rewards.multi_turn_cases import as_python, multi_turn_cases  # noqa: E402
from tests.rewards.official import MULTI_TURN_SCRIPT, SCRIPT, official_python, official_run  # noqa: E402

AST_TARGET, MULTI_TURN_TARGET = 3.0, 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-calls", action="store_true", help="add the bound of a call path that costs nothing")
    args = parser.parse_args()
    if not official_python().exists():
        sys.exit(f"BFCL's own checker is not at {official_python()}: run `make test` (it builds .venv-bfcl) first")
    met = {f"AST >= {AST_TARGET:g}x": bench_ast(args.rounds)}
    met[f"multi-turn >= {MULTI_TURN_TARGET:g}x"] = bench_multi_turn(args.rounds, bare_calls=args.bare_calls)
    missed = [name for name, ok in met.items() if not ok]
    print(f"\nFAIL: {', '.join(missed)} not met" if missed else "\nPASS: both targets met")


def bench_ast(rounds: int) -> bool:
    cases = list(agreement_cases())
    args = [(c["docs"], c["output"], c["possible"], c["category"], c["model"] == UNDERSCORE_MODEL, c["language"])
            for c in cases]  # fmt: skip

    def ours() -> None:
        for docs, output, possible, category, underscore, language in args:
            check_ast(docs, output, possible, category, underscore_names=underscore, language=language)

    return _report(
        f"{len(cases)} AST cases ({len(AST_CATEGORIES)} categories, ground truth + mutations)",
        len(cases), rounds, {"ours": ours}, lambda: official_run(cases, SCRIPT)[1:], AST_TARGET,
    )  # fmt: skip


def bench_multi_turn(rounds: int, *, bare_calls: bool = False) -> bool:
    cases = list(multi_turn_cases())
    payload = [{"id": f"{t.id}|{label}", "entry": {"id": t.id, "initial_config": t.initial_state,
                "involved_classes": t.servers},
                "model": [[[as_python(c) for c in step] for step in turn] for turn in steps],
                "truth": [[as_python(c) for c in turn] for turn in t.ground_truth]}
               for t, label, steps in cases]  # fmt: skip
    servers = {False: domain_servers(), True: domain_servers(long_context=True)}

    def run(truths: Callable[[], TruthCache]) -> Callable[[], None]:
        async def replay_all() -> None:
            kept = truths()
            for by_kind in servers.values():  # every round cold: no scenario or result text kept from the last
                for server in by_kind.values():
                    server.backend.forget_loaded()
                    server.forget_results()
            for task, _, steps in cases:
                by_kind = servers[task.category == "long_context"]
                await verdict_multi_turn(by_kind, task, steps, seed=0, truths=kept)

        return lambda: anyio.run(replay_all)

    ours = {"ours": run(TruthCache), "ours, no reuse": run(lambda: TruthCache(size=0))}
    if bare_calls:
        ours["bound: bare server calls"] = _with_bare_calls(run(TruthCache))
    official = lambda: official_run(payload, MULTI_TURN_SCRIPT)[1:]  # noqa: E731
    met = _report(
        f"{len(cases)} multi-turn cases (4 categories, ground truth + mutations)", len(cases), rounds, ours,
        official, MULTI_TURN_TARGET,
    )  # fmt: skip
    if bare_calls:
        _report_floor(run(TruthCache), official)
    return met


def _report_floor(replay: Callable[[], None], official: Callable[[], tuple[float, float]]) -> None:
    """One pass of ``replay`` with the time inside BFCL's classes (public methods, fresh scenarios) summed."""
    inside, depth = [0.0], [0]

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1  # a method calling another (book_flight -> get_flight_cost) counts once
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    inside[0] += time.perf_counter() - start

        return wrapper

    patched: list[tuple[type, str, Callable[..., Any]]] = [(BfclBackend, "new_state", BfclBackend.new_state)]
    for name in BFCL_DOMAINS:
        cls = bfcl_class(name)
        methods = [(attr, fn) for attr, fn in vars(cls).items() if not attr.startswith("_") and inspect.isfunction(fn)]
        patched += [(cls, attr, fn) for attr, fn in methods]
    for owner, attr, fn in patched:
        setattr(owner, attr, timed(fn))
    try:
        replay()  # a warm pass, then the measured one
        inside[0] = 0.0
        start = time.perf_counter()
        replay()
        ours = time.perf_counter() - start
    finally:
        for owner, attr, fn in patched:
            setattr(owner, attr, fn)
    seconds = official()[0]  # one more run of BFCL's checker, beside this pass
    print(
        f"  inside BFCL's classes: {inside[0]:.3f} s of ours' {ours:.3f} s ({inside[0] / ours:.0%}; timers included);"
        f" a checker doing only that: {seconds / inside[0]:.1f}x"
    )


def _with_bare_calls(replay: Callable[[], None]) -> Callable[[], None]:
    """``replay`` with CompiledServer.call_text (a replay's call) reduced to the backend and its result's JSON,
    for the bound."""

    async def bare(self: CompiledServer, name: str, arguments: Any, state: Any, checked: Any = None) -> str:
        tool = self._tools.get(name)
        if tool is None:
            return result_text(self._unknown(name))
        try:
            return json.dumps(await self.backend.call(tool, copy_tree(arguments or {}), state), ensure_ascii=False)
        except Exception as exc:  # noqa: BLE001 - a bound: any failure is one result text
            return f"{type(exc).__name__}: {exc}"

    def swapped() -> None:
        real = CompiledServer.call_text
        CompiledServer.call_text = bare  # type: ignore[method-assign]
        try:
            replay()
        finally:
            CompiledServer.call_text = real  # type: ignore[method-assign]

    return swapped


def _report(
    what: str,
    n: int,
    rounds: int,
    ours: dict[str, Callable[[], None]],
    official: Callable[[], tuple[float, float]],
    target: float,
) -> bool:
    """Interleaved rounds of each of ours and the official; the first of ours is judged."""
    wall: dict[str, list[float]] = {k: [] for k in [*ours, "official"]}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    for _ in range(rounds):
        for name, fn in ours.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        seconds, cpu_seconds = official()
        wall["official"].append(seconds)
        cpu["official"].append(cpu_seconds)
    median = {k: statistics.median(v) for k, v in wall.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"\n{what}, median of {rounds} rounds")
    for name in wall:
        print(f"  {name:16s} {n / median[name]:>10,.0f} cases/s   (cpu {n / median_cpu[name]:>10,.0f} cases/s)")
    judged = next(iter(ours))
    for name in ours:
        ratio, ratio_cpu = median["official"] / median[name], median_cpu["official"] / median_cpu[name]
        verdict = f"  target >= {target:g}x: {'PASS' if ratio >= target else 'FAIL'}" if name == judged else ""
        print(f"  ratio, {name:9s} {ratio:>9.2f}x  (cpu {ratio_cpu:.2f}x) official time / ours{verdict}")
    return median["official"] / median[judged] >= target


if __name__ == "__main__":
    main()
