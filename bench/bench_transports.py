"""Tool calls per second through a compiled MCP server, per transport, against the bare backend.

Every number is measured in this run, on this machine: the ratio column (backend calls/s over
transport calls/s) is what to compare across machines, not the absolute rates. Rounds are
interleaved and the median is reported, since these machines are shared and noisy.

    python bench/bench_transports.py [--calls 300] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from inftool_env import compile_spec
from inftool_env.mcp import StdioCommand, open_client

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = {
    # name: (spec source, tool, arguments)
    "bookshelf.getBook (stateful)": (str(REPO / "servers/bookshelf/openapi.yaml"), "getBook", {"bookId": "boo_1"}),
    "bfcl MathAPI.add (python)": ("bfcl:MathAPI", "add", {"a": 2, "b": 3.5}),
}


async def rate(call: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(20, n)):
        await call()
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return n / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def http_subprocess(spec: str) -> AsyncIterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "inftool_env.cli", "serve", spec, "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(200):
            with contextlib.suppress(Exception):
                async with open_client(url) as client:
                    await client.list_tools()
                    break
            await anyio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def measure(spec: str, tool_name: str, args: dict[str, Any], calls: int, rounds: int) -> dict[str, float]:
    compiled = compile_spec(spec)
    tool = compiled.suite.tool(tool_name)
    state = compiled.backend.new_state(seed=0)
    results: dict[str, list[float]] = {
        k: [] for k in ("backend", "server (no transport)", "in-process", "stdio", "http")
    }
    async with contextlib.AsyncExitStack() as stack:
        inproc = await stack.enter_async_context(open_client(compiled))
        stdio = await stack.enter_async_context(open_client(StdioCommand.inftool_serve(spec)))
        url = await stack.enter_async_context(http_subprocess(spec))
        http = await stack.enter_async_context(open_client(url))
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits every column alike
            results["backend"].append(await rate(lambda: compiled.backend.call(tool, args, state), calls * 10))
            results["server (no transport)"].append(
                await rate(lambda: compiled.call(tool_name, args, state), calls * 10)
            )
            results["in-process"].append(await rate(lambda: inproc.call(tool_name, args), calls))
            results["stdio"].append(await rate(lambda: stdio.call(tool_name, args), calls))
            results["http"].append(await rate(lambda: http.call(tool_name, args), calls))
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = {}
    for workload, (spec, tool, call_args) in WORKLOADS.items():
        rates = anyio.run(measure, spec, tool, call_args, args.calls, args.rounds)
        report[workload] = rates
        base = rates["backend"]
        print(f"\n{workload}  ({args.rounds} rounds, median)")
        print(f"  {'path':<24}{'calls/s':>12}{'us/call':>10}{'x slower than backend':>24}")
        for path, value in rates.items():
            print(f"  {path:<24}{value:>12,.0f}{1e6 / value:>10,.1f}{base / value:>24,.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
