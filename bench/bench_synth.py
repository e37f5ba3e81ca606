"""Task synthesis throughput: verified tasks per second for the schema generator (no model), and for
the three-agent LLM generator on the embedded model (llama.cpp) kept/attempted and seconds per kept task.

    python bench/bench_synth.py [--n 160] [--llm-attempts 4] [--sources inftool/Bookshelf-v0 ...]

The LLM part is short by default (a handful of attempts); ``--llm-attempts 0`` skips it.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from inftool_env.synth import synthesize

SOURCES = ("inftool/Bookshelf-v0", "inftool/GoogleCalendar-v0")


def schema_rate(source: str, n: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    run = synthesize(source, n=n, seed=0)
    elapsed = time.perf_counter() - start
    return len(run.tasks), elapsed, run.stats["verification_rate"]


def llm_rate(source: str, attempts: int) -> tuple[int, int, float]:
    start = time.perf_counter()
    run = synthesize(source, n=max(1, attempts // 2), categories=["simple"], generator="gguf:embedded", seed=0,
                     attempts_per_task=1)  # fmt: skip
    return len(run.tasks), run.attempts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=160, help="tasks asked of the schema generator per source")
    parser.add_argument("--llm-attempts", type=int, default=4, help="attempts of the LLM generator (0: skip)")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    args = parser.parse_args()

    print(f"{'source':<28} {'generator':<14} {'kept':>5} {'tried':>6} {'seconds':>8}  rate")
    for source in args.sources:
        kept, elapsed, rate = schema_rate(source, args.n)
        print(f"{source:<28} {'schema':<14} {kept:>5} {'':>6} {elapsed:>8.2f}  {kept / elapsed:.1f} verified tasks/s"
              f" (verification rate {rate:.0%})")  # fmt: skip
    if args.llm_attempts > 0:
        if importlib.util.find_spec("llama_cpp") is None:
            print("gguf:embedded skipped: llama-cpp-python (the gguf extra) is not installed")
            return
        kept, tried, elapsed = llm_rate(args.sources[0], args.llm_attempts)
        per_kept = f"{elapsed / kept:.1f} s per kept task" if kept else "no task kept"
        print(f"{args.sources[0]:<28} {'gguf:embedded':<14} {kept:>5} {tried:>6} {elapsed:>8.2f}  "
              f"kept/attempted {kept}/{tried}, {per_kept}")  # fmt: skip


if __name__ == "__main__":
    main()
