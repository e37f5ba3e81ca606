"""Cases per second of our BFCL checkers and of BFCL's own, on the same cases, in one run.

AST: every entry of the AST categories, ground truth + mutations. Multi-turn: every entry of the
four multi-turn categories, ground truth + mutations; ours replays both sides on our MCP servers'
call path, BFCL's executes them on its classes. The official checker runs in its own virtualenv
(`make test` builds .venv-bfcl); its time is the checking loop alone, measured inside that
process, so interpreter start-up and imports do not count.

    python bench/bench_bfcl_checker.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402

from inftool_env.eval.bfcl_data import domain_servers  # noqa: E402
from inftool_env.rewards.bfcl_ast import check_ast  # noqa: E402
from inftool_env.rewards.multi_turn import check_multi_turn, replay_turns  # noqa: E402
from tests.rewards.cases import AST_CATEGORIES, UNDERSCORE_MODEL, agreement_cases  # noqa: E402
from tests.rewards.multi_turn_cases import as_python, multi_turn_cases  # noqa: E402
from tests.rewards.official import MULTI_TURN_SCRIPT, official_python, official_verdicts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not official_python().exists():
        sys.exit(f"BFCL's own checker is not at {official_python()}: run `make test` (it builds .venv-bfcl) first")
    cases = list(agreement_cases())
    ours_s, theirs_s = [], []
    for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both alike
        start = time.perf_counter()
        for c in cases:
            check_ast(c["docs"], c["output"], c["possible"], c["category"],
                      underscore_names=c["model"] == UNDERSCORE_MODEL, language=c["language"])  # fmt: skip
        ours_s.append(time.perf_counter() - start)
        theirs_s.append(official_verdicts(cases)[1])
    ours, theirs = statistics.median(ours_s), statistics.median(theirs_s)
    what = f"{len(AST_CATEGORIES)} AST categories, ground truth + mutations"
    print(f"{len(cases)} cases ({what}), median of {args.rounds} rounds")
    print(f"  ours      {len(cases) / ours:>10,.0f} cases/s")
    print(f"  official  {len(cases) / theirs:>10,.0f} cases/s")
    print(f"  ratio     {theirs / ours:>10.1f}x (official time / ours)")
    bench_multi_turn(args.rounds)


def bench_multi_turn(rounds: int) -> None:
    cases = list(multi_turn_cases())
    payload = [{"id": f"{t.id}|{label}", "entry": {"id": t.id, "initial_config": t.initial_state,
                "involved_classes": t.servers},
                "model": [[[as_python(c) for c in step] for step in turn] for turn in steps],
                "truth": [[as_python(c) for c in turn] for turn in t.ground_truth]}
               for t, label, steps in cases]  # fmt: skip
    servers = {False: domain_servers(), True: domain_servers(long_context=True)}

    async def ours() -> None:
        for task, _, steps in cases:
            check_multi_turn(await replay_turns(servers[task.category == "long_context"], task, steps, seed=0))

    ours_s, theirs_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        anyio.run(ours)
        ours_s.append(time.perf_counter() - start)
        theirs_s.append(official_verdicts(payload, MULTI_TURN_SCRIPT)[1])
    mine, theirs = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"\n{len(cases)} multi-turn cases (4 categories, ground truth + mutations), median of {rounds} rounds")
    print(f"  ours      {len(cases) / mine:>10,.0f} cases/s")
    print(f"  official  {len(cases) / theirs:>10,.0f} cases/s")
    print(f"  ratio     {theirs / mine:>10.2f}x (official time / ours)")


if __name__ == "__main__":
    main()
