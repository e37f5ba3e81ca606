"""``inftool rollout ENV_ID --policy P --n N [--workers W] [--ray ADDRESS] [--out FILE.jsonl] [--concurrency C]``.

Streams each trajectory to the JSONL as it ends, shows a progress bar and a closing table, and exits 1
(naming the kinds) when any episode broke. Registered by ``add_commands(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inftool_env.argtypes import positive_float, positive_int, seed_arg

EXAMPLE = """example:
  inftool rollout inftool/Bookshelf-v0 --policy oracle --n 64 --out out/rollout/bookshelf.jsonl
  inftool rollout inftool/Bookshelf-v0 --policy oracle --n 1000 --workers 4 --concurrency 16
  # on a cluster, every worker on one shared server (started with inftool serve ... --transport http):
  inftool rollout inftool/Bookshelf-v0 --policy openai:http://10.0.0.2:8000/v1#qwen --n 5000 --ray auto \\
      --server bookshelf=http://10.0.0.3:8000/mcp"""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from inftool_env.cli import policy_help

    summary = "run N episodes of a policy, locally on asyncio or on Ray workers, streamed to JSONL"
    rollout = subparsers.add_parser(
        "rollout", help=summary, description=summary, epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    rollout.add_argument("env_id", help="a registered env id, or a manifest (.toml)")
    rollout.add_argument("--policy", required=True, help=policy_help())
    rollout.add_argument("--n", type=positive_int, required=True, help="episodes (task seeds seed…seed+N-1)")
    rollout.add_argument("--workers", type=positive_int, help="Ray rollout workers (actors); without it and --ray: "
                         "this process on asyncio")  # fmt: skip
    rollout.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster to run on (`auto`, ray://HOST:10001); "
                         "default with --workers: a local one")  # fmt: skip
    rollout.add_argument("--concurrency", type=positive_int, default=8, help="episodes at once (per worker on Ray)")
    rollout.add_argument("--server", action="append", metavar="NAME=URL",
                         help="reach the env's server NAME at a running MCP URL instead of starting it "
                         "(repeatable; episodes stay isolated by id on a shared server)")  # fmt: skip
    rollout.add_argument("--worker-cpus", type=positive_float, default=1.0, help="CPUs Ray reserves per worker")
    rollout.add_argument("--seed", type=seed_arg, default=0)
    rollout.add_argument("--out", default="out/rollout/trajectories.jsonl", help="the JSONL, a line per episode")
    rollout.set_defaults(run=run_rollout)


def run_rollout(args: argparse.Namespace) -> int:
    import anyio

    from inftool_env.rollout.run import rollout
    from inftool_env.rollout.shared import parse_server_urls

    out = Path(args.out)
    anyio.run(_warn_lost_operations, args.env_id)
    summary = rollout(args.env_id, args.policy, n=args.n, workers=args.workers, ray_address=args.ray, out=out,
                      concurrency=args.concurrency, seed=args.seed, server_urls=parse_server_urls(args.server),
                      worker_cpus=args.worker_cpus, progress=True)  # fmt: skip
    print(summary.table(out))
    if summary.broken:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(summary.errors.items()))
        print(f"inftool: {summary.broken} of {summary.episodes} episodes broke ({kinds}); see {out}", file=sys.stderr)
        return 1
    return 0


async def _warn_lost_operations(env_id: str) -> None:
    """What eval and check print: the workers build their own envs, so the warning comes from a copy here
    (one compile of each spec, well under a second for the registered ones)."""
    from inftool_env.cli import warn_lost_operations
    from inftool_env.registration import make

    env = make(env_id)
    try:
        warn_lost_operations(env.servers)
    finally:
        await env.close()
