"""Entries per second of our BFCL AST checker and of BFCL's own, on the same cases, in one run.

The official checker runs in its own virtualenv (`make test` builds .venv-bfcl); its time is the
checking loop alone, measured inside that process, so interpreter start-up and imports do not count.

    python bench/bench_bfcl_checker.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inftool_env.rewards.bfcl_ast import check_ast  # noqa: E402
from tests.rewards.cases import AST_CATEGORIES, UNDERSCORE_MODEL, agreement_cases  # noqa: E402
from tests.rewards.official import official_python, official_verdicts  # noqa: E402


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


if __name__ == "__main__":
    main()
