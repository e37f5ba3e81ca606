"""Soak: 1,000 episodes at once over real MCP servers, with faults injected, and nothing lost or leaked.

Four groups run at the same time in one event loop, each through ``run_batch`` with every episode of
the group in flight at once (stdio: one server subprocess per worker, so its episodes come in two
waves): in-process servers (OpenAI ``tool_calls``), in-process with Hermes ``<tool_call>`` text, one
shared streamable-HTTP server in this process reached by every worker (``rollout.SharedServersEnv``),
and stdio subprocesses. No episode takes its first turn before all of them have reset, so they are
open at once, not merely submitted at once. Every policy is ``openai:`` against a local endpoint
(``_soak_fixtures.py``, a subprocess) that scripts each episode by its scenario and injects the faults:

- hung tools (``nap`` far past the call timeout: the server must stop it and answer ``timeout``);
- killed servers (the endpoint SIGKILLs the stdio server its episode runs on; the next episode of
  that worker must get a new one);
- a 500, a 429 with ``Retry-After``, a connection reset (retried), and an endpoint down on every
  try (``PolicyError`` on that trajectory only);
- garbage model output (arguments that are not JSON, NaN, an unclosed tag, 1 MB of text), lone
  surrogates and 300 levels of nesting in tool arguments.

After the fault each script makes one more call (it must succeed: the connection survived) and ends.
The closing table has a PASS/FAIL per line and the exit status is 1 on any FAIL: every requested
episode came back with a trajectory that is writable as JSON (written to a JSONL file and read back),
each fault was injected and survived as its scenario expects, and after every env, server and
client is closed no fd, asyncio task or child process is left over the count before (nor any
ResourceWarning or unhandled loop error). Loopback only. ``--duration`` is each episode's timeout; the
run is cut 60 s after it (an episode not back by then is lost). The event loop's lag is printed: the
env's time limits are measured on that loop, so they are what load stretches first.

    python bench/bench_soak.py [--episodes 1000] [--stdio-servers 8] [--http-share 0.15]
        [--text-share 0.1] [--fault-share 0.3] [--call-timeout 10] [--duration 120] [--max-rss-mb 3072]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # bench._soak_fixtures, which stdio servers import too (their cwd is REPO)

from bench._soak_fixtures import BIG_TEXT, HTTP_FAULTS, RETRY_AFTER_S, SCENARIOS, Soak, task_text  # noqa: E402
from inftool_env import compile_spec  # noqa: E402
from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_batch  # noqa: E402
from inftool_env.mcp import running_http  # noqa: E402
from inftool_env.policies import close_policy, resolve_policy  # noqa: E402
from inftool_env.rollout import SharedServersEnv  # noqa: E402
from inftool_env.tasks import Task  # noqa: E402
from inftool_env.trajectory import Trajectory  # noqa: E402
from tests.conftest import child_pids, peak_rss_mb  # noqa: E402

SPEC = "python:bench._soak_fixtures:Soak"
STDIO_FAULTS = ("killed_server", "hung_tool", "deep_nesting", "lone_surrogate", "garbage_json")
TEXT_FAULTS = ("hung_tool", "garbage_json", "unterminated_tag", "huge_text", "lone_surrogate", "deep_nesting")
NATIVE_FAULTS = tuple(s for s in SCENARIOS if s not in ("ok", "killed_server"))
# Over HTTP the hung tool comes last, so a tiny run (6 HTTP episodes) has none: its transit delay makes a
# cut call look hung (tests/soak/test_soak_findings.py), which would make the tiny run's test flaky.
HTTP_FAULTS_ORDER = (*(s for s in NATIVE_FAULTS if s != "hung_tool"), "hung_tool")


@dataclass
class Group:
    name: str
    transport: Literal["inprocess", "stdio", "http"]  # http: one shared server
    format: str
    scenarios: list[str]
    concurrency: int
    env: ToolEnv | None = None
    trajectories: list[Trajectory | None] = field(default_factory=list)


def plan(n: int, faults: tuple[str, ...], share: float) -> list[str]:
    """Each fault once first (a tiny run still injects every kind), then a ``share`` of the rest, in turn."""
    out, k = [], 0
    for i in range(n):
        if i < len(faults) or int((i + 1) * share) > int(i * share):
            out.append(faults[k % len(faults)])
            k += 1
        else:
            out.append("ok")
    return out


def stdio_plan(servers: int) -> list[str]:
    """Wave one (one episode per server) kills every other server; wave two must find new ones."""
    first = ["killed_server" if i % 2 == 0 else STDIO_FAULTS[1 + (i // 2) % (len(STDIO_FAULTS) - 1)]
             for i in range(servers)]  # fmt: skip
    return first + ["ok"] * servers


# -- what each scenario must leave -----------------------------------------------------------------
def survived(scenario: str, t: Trajectory, text_format: bool) -> bool:
    calls = [c for turn in t.turns for c in turn.calls]
    after = any(c.name == "echo" and not c.is_error and "after" in c.result for c in calls)
    clean = t.terminated and t.error is None and not any(c.error_kind == "infrastructure" for c in calls)
    refused = [turn for turn in t.turns if turn.parse_error or any(c.error_kind in ("schema", "too_large")
                                                                  for c in turn.calls)]  # fmt: skip
    if scenario == "ok":
        return clean and bool(calls) and not any(c.is_error for c in calls)
    if scenario == "hung_tool":
        return clean and after and any(c.name == "nap" and c.error_kind == "timeout" for c in calls)
    if scenario == "killed_server":
        return t.truncation_reason == "server_error" and (t.error or "").startswith("ServerError")
    if scenario in HTTP_FAULTS:
        return clean and after
    if scenario == "endpoint_down":
        return t.truncation_reason == "policy_error" and (t.error or "").startswith("PolicyError")
    if scenario == "garbage_json":
        return clean and after and len(refused) >= 3
    if scenario == "unterminated_tag":
        if not text_format:  # a native turn's content is only text: the answer
            return clean and t.turns[0].content.startswith("<tool_call>") and not calls
        return clean and after and "unclosed" in (t.turns[0].parse_error or "")
    if scenario == "huge_text":
        return clean and after and any(len(turn.content) >= BIG_TEXT for turn in t.turns)
    if scenario == "lone_surrogate":
        noted = any("lone surrogate" in note for turn in t.turns for note in turn.notes)
        return clean and after and noted and any("\ufffd" in c.result for c in calls)
    if scenario == "deep_nesting":
        return clean and after and bool(refused) and refused[0].step == 0
    raise ValueError(scenario)


class Gated:
    """A policy whose first turn waits for the start signal (or ``wait_s``): the episodes of a run are
    all open at once, not merely submitted at once."""

    def __init__(self, policy: Any, start: asyncio.Event, wait_s: float) -> None:
        self.policy, self.start, self.wait_s = policy, start, wait_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    async def act(self, observation: dict[str, Any]) -> Any:
        if not self.start.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.wait_s):
                    await self.start.wait()
        return await self.policy.act(observation)


# -- leak accounting ---------------------------------------------------------------------------------
def open_fds() -> dict[int, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    return out


@dataclass
class Watch:
    """Unhandled loop errors, ResourceWarnings and library log records, counted; the event loop's lag."""

    lags: list[float] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)
    resource_warnings: list[str] = field(default_factory=list)
    logs: Counter[str] = field(default_factory=Counter)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(str(ctx.get("message"))))
        warnings.simplefilter("always", ResourceWarning)
        shown = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, ResourceWarning):
                self.resource_warnings.append(str(message)[:200])
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        watch = self

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = " ".join(record.getMessage().split())
                watch.logs[f"{record.levelname} {record.name}: {text[:150]}"] += 1

        self._handler = Count(logging.WARNING)
        self.count(logging.getLogger())
        logging.getLogger().setLevel(logging.WARNING)

    def count(self, logger: logging.Logger) -> None:
        logger.addHandler(self._handler)


async def loop_lag(watch: Watch, every_s: float = 0.05) -> None:
    """How late the loop runs a timer: what every timeout in the run also waits on."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        watch.lags.append(loop.time() - due)


# -- the run -------------------------------------------------------------------------------------------
def start_endpoint() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "_soak_fixtures.py")], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)  # fmt: skip
    assert proc.stdout is not None  # noqa: S101 - piped above
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"the soak endpoint did not start: {line!r}")
    return proc, int(line)


def build(groups: list[Group], limits: Limits) -> None:
    for g in groups:
        tasks = [Task(id=f"{g.name}-{i}-{s}", turns=[task_text(s, f"{g.name}-{i}")]) for i, s in enumerate(g.scenarios)]
        transport: Literal["inprocess", "stdio"] = "stdio" if g.transport == "stdio" else "inprocess"
        config = EnvConfig(id=f"soak/{g.name}-v0", servers=[ServerConfig(name="s", spec=SPEC)], format=g.format,
                           transport=transport, tasks=TaskSource(source="-"), limits=limits)  # fmt: skip
        g.env = ToolEnv(config, tasks, {"s": compile_spec(SPEC)})
        g.trajectories = [None] * len(tasks)


async def soak(args: argparse.Namespace, groups: list[Group], port: int, out: Path, watch: Watch) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    watch.install(loop)
    gc.collect()
    fds_before, tasks_before, children_before = open_fds(), len(asyncio.all_tasks()), child_pids()
    limits = Limits(call_timeout_s=args.call_timeout, episode_timeout_s=args.duration, max_turns=12)
    build(groups, limits)
    url = f"http://127.0.0.1:{port}/v1"
    options = f"retries=3&retry_budget_s=30&concurrency={args.model_concurrency}"
    native = resolve_policy(f"openai:{url}#soak?{options}")
    text = resolve_policy(f"openai:{url}#soak?{options}&tools=prompt")
    live, peak, done, never_opened = set(), [0], [0], [0]
    at_once = sum(g.concurrency for g in groups)
    everyone_open = asyncio.Event()  # no episode acts before all that run at once have reset (or failed to)
    sink = out.open("w", encoding="utf-8")
    unwritable: list[str] = []

    def factory_for(g: Group) -> Callable[[Task], Any]:
        inner = text if g.format != "openai" else native

        def make(task: Task) -> Any:
            live.add((g.name, task.id))
            peak[0] = max(peak[0], len(live))
            if peak[0] + never_opened[0] >= at_once:
                everyone_open.set()
            return Gated(inner(task), everyone_open, min(30.0, args.duration / 4))

        return make

    def on_done_for(g: Group) -> Callable[[int, Trajectory], None]:
        def on_done(i: int, t: Trajectory) -> None:
            key = (g.name, f"{g.name}-{i}-{g.scenarios[i]}")
            if key in live:
                live.discard(key)
            else:  # its reset failed: no policy was made for it, so it will never open
                never_opened[0] += 1
                if peak[0] + never_opened[0] >= at_once:
                    everyone_open.set()
            done[0] += 1
            g.trajectories[i] = t
            try:
                line = t.model_dump_json()
                json.dumps(t.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")  # no lone surrogate inside
                sink.write(f'{{"group": "{g.name}", "index": {i}, "trajectory": {line}}}\n')
            except (ValueError, TypeError, UnicodeError) as exc:
                unwritable.append(f"{g.name}-{i}: {type(exc).__name__}: {exc}"[:300])

        return on_done

    shared_compiled = compile_spec(SPEC)
    lag = asyncio.create_task(loop_lag(watch))
    started = time.perf_counter()
    timed_out = False
    try:
        async with running_http(shared_compiled) as mcp_url:
            watch.count(logging.getLogger("uvicorn.error"))  # uvicorn's loggers do not propagate
            for g in groups:
                if g.transport == "http" and g.env is not None:
                    g.env = SharedServersEnv(g.env, {"s": mcp_url})
            runs = [run_batch(g.env, factory_for(g), episodes=[(1000 + i, f"{g.name}-{i}-{s}")
                                                               for i, s in enumerate(g.scenarios)],
                              concurrency=g.concurrency, on_done=on_done_for(g))
                    for g in groups if g.env is not None]  # fmt: skip
            try:
                async with asyncio.timeout(args.duration + 60):
                    await asyncio.gather(*runs)
            except TimeoutError:
                timed_out = True
    finally:
        wall = time.perf_counter() - started
        for g in groups:
            if g.env is not None:
                await g.env.close()
        await close_policy(native)
        await close_policy(text)
        sink.close()
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
    # What the closed envs may still be releasing (a subprocess reaped, a socket closed) gets a moment.
    leaks: dict[str, Any] = {}
    for _ in range(50):
        gc.collect()
        await asyncio.sleep(0.1)
        fds = open_fds()
        leaks = {
            "fds": {fd: target for fd, target in fds.items() if fd not in fds_before},
            "tasks": len(asyncio.all_tasks()) - tasks_before,
            "children": child_pids() - children_before,
        }
        if not leaks["fds"] and leaks["tasks"] <= 0 and not leaks["children"]:
            break
    return {"wall": wall, "peak": peak[0], "done": done[0], "unwritable": unwritable, "timed_out": timed_out,
            "leaks": leaks, "live_shared": shared_compiled.live_episodes,
            "live_local": sum(g.env.servers["s"].live_episodes for g in groups if g.env is not None)}  # fmt: skip


def read_back(out: Path) -> set[tuple[str, int]]:
    found = set()
    with out.open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            Trajectory.model_validate(record["trajectory"])
            found.add((record["group"], record["index"]))
    return found


def endpoint_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000, help="episodes in flight at once (default 1000)")
    parser.add_argument("--stdio-servers", type=int, default=8, help="stdio workers, each its own subprocess")
    parser.add_argument("--http-share", type=float, default=0.15, help="share of episodes on the shared HTTP server")
    parser.add_argument("--text-share", type=float, default=0.1, help="share in the Hermes text format")
    parser.add_argument("--fault-share", type=float, default=0.3, help="share of episodes given a fault")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="the env's call timeout (s)")
    parser.add_argument("--duration", type=float, default=120.0, help="episode time bound; the run's is 60 s more")
    parser.add_argument("--model-concurrency", type=int, default=64, help="requests in flight to the endpoint")
    parser.add_argument("--max-rss-mb", type=float, default=3072.0, help="peak RSS of this process (PASS below)")
    parser.add_argument("--keep", type=Path, help="keep the trajectories' JSONL here")
    args = parser.parse_args()
    servers = max(1, args.stdio_servers)
    http_n = max(1, round(args.episodes * args.http_share))
    text_n = max(1, round(args.episodes * args.text_share))
    local_n = args.episodes - servers - http_n - text_n
    if local_n < len(NATIVE_FAULTS):
        parser.error(f"--episodes {args.episodes} leaves {local_n} in-process episodes; at least "
                     f"{len(NATIVE_FAULTS)} are needed to inject every fault")  # fmt: skip
    groups = [
        Group("inprocess", "inprocess", "openai", plan(local_n, NATIVE_FAULTS, args.fault_share), local_n),
        Group("text", "inprocess", "hermes", plan(text_n, TEXT_FAULTS, args.fault_share), text_n),
        Group("http", "http", "openai", plan(http_n, HTTP_FAULTS_ORDER, args.fault_share), http_n),
        Group("stdio", "stdio", "openai", stdio_plan(servers), servers),
    ]
    os.chdir(REPO)  # stdio servers import bench._soak_fixtures from their working directory
    endpoint, port = start_endpoint()
    watch = Watch()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep or Path(tmp) / "soak.jsonl"
            result = asyncio.run(soak(args, groups, port, out, watch))
            stats = endpoint_stats(port)
            found = read_back(out)
    finally:
        endpoint.terminate()
        endpoint.wait(10)
    return report(args, groups, result, stats, found, watch)


def report(args: argparse.Namespace, groups: list[Group], result: dict[str, Any], stats: dict[str, Any],
           found: set[tuple[str, int]], watch: Watch) -> int:  # fmt: skip
    rows: list[tuple[str, str, bool | None]] = []
    requested = sum(len(g.scenarios) for g in groups)
    completed = sum(t is not None for g in groups for t in g.trajectories)
    lost = requested - len(found)
    rows.append(("episodes requested / completed", f"{requested} / {completed}", completed == requested))
    at_once = requested - sum(len(g.scenarios) - g.concurrency for g in groups)
    rows.append(("peak episodes in flight", f"{result['peak']} (planned {at_once})", result["peak"] == at_once))
    rows.append(("trajectories lost", str(lost), lost == 0))
    rows.append(("trajectories not JSON-writable", str(len(result["unwritable"])), not result["unwritable"]))
    counts = stats["counts"]
    for scenario in SCENARIOS:
        planned = [(g, i) for g in groups for i, s in enumerate(g.scenarios) if s == scenario]
        kept = [(g, g.trajectories[i]) for g, i in planned if g.trajectories[i] is not None]
        ok = sum(survived(scenario, t, g.format != "openai") for g, t in kept if t is not None)
        by = ", ".join(f"{g.name} {sum(1 for h, _ in planned if h is g)}" for g in groups
                       if any(h is g for h, _ in planned))  # fmt: skip
        if scenario == "ok":
            rows.append((f"no fault: {len(planned)} episodes", f"clean {ok} ({by})", ok == len(planned)))
            continue
        injected = counts.get("killed_server" if scenario == "killed_server" else scenario, 0)
        if scenario not in HTTP_FAULTS and scenario not in ("killed_server", "endpoint_down"):
            injected = counts.get(f"episodes:{scenario}", 0)
        elif scenario == "endpoint_down":
            injected = counts.get(f"episodes:{scenario}", 0)
        rows.append((f"fault {scenario}", f"injected {injected}/{len(planned)}, survived {ok} ({by})",
                     injected == len(planned) and ok == len(planned)))  # fmt: skip
    waits = stats["retry_waits"].get("http_429") or []
    if waits:
        rows.append(("429 retried after Retry-After", f"shortest wait {min(waits):.2f} s (asked {RETRY_AFTER_S} s)",
                     min(waits) >= RETRY_AFTER_S - 0.05))  # fmt: skip
    stdio = next(g for g in groups if g.name == "stdio")
    wave_two = stdio.trajectories[stdio.concurrency :]
    restarted = sum(1 for line in watch.logs.elements() if "reconnecting" in line)
    wave_ok = sum(t is not None and survived("ok", t, False) for t in wave_two)
    rows.append(("stdio: episodes after the kills", f"{wave_ok}/{len(wave_two)} clean, {restarted} reconnects",
                 wave_ok == len(wave_two) and (restarted > 0 or not counts.get("killed_server"))))  # fmt: skip
    rows.append(("hung work still running (naps)", str(Soak.napping), Soak.napping == 0))
    shared, local = result["live_shared"], result["live_local"]
    rows.append(("episode states left on servers", f"{shared + local} (shared HTTP {shared}, in-process {local})",
                 shared + local == 0))  # fmt: skip
    rss = peak_rss_mb()
    rows.append(("peak RSS (this process)", f"{rss:.0f} MB (limit {args.max_rss_mb:.0f})", rss <= args.max_rss_mb))
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows.append(("peak RSS of one child (stdio server, endpoint)", f"{child:.0f} MB", None))
    leaks = result["leaks"]
    rows.append(("leaked fds after close", _listed(len(leaks["fds"]), leaks["fds"].values()), not leaks["fds"]))
    rows.append(("leaked asyncio tasks after close", str(max(leaks["tasks"], 0)), leaks["tasks"] <= 0))
    rows.append(("leaked child processes after close", _listed(len(leaks["children"]), leaks["children"]),
                 not leaks["children"]))  # fmt: skip
    rows.append(("unhandled loop errors", _listed(len(watch.loop_errors), watch.loop_errors), not watch.loop_errors))
    rows.append(("ResourceWarnings", _listed(len(watch.resource_warnings), watch.resource_warnings),
                 not watch.resource_warnings))  # fmt: skip
    bound = args.duration + 60
    rows.append(("wall time", f"{result['wall']:.1f} s (bound {bound:.0f} s)", not result["timed_out"]))
    rows.append(("endpoint requests", str(counts.get("requests", 0)), None))
    lags = sorted(watch.lags) or [0.0]
    p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99)]
    rows.append(("event-loop lag (p50 / p99 / max)", f"{p50:.2f} / {p99:.2f} / {lags[-1]:.2f} s", None))
    for level in ("WARNING", "ERROR"):
        logged = sum(n for line, n in watch.logs.items() if line.startswith(level))
        rows.append((f"{level} records logged", str(logged), None))
    width = max(len(r[0]) for r in rows)
    print(f"\nsoak: {at_once} episodes at once ({requested} requested) — "
          + ", ".join(f"{g.name} {len(g.scenarios)}" for g in groups))  # fmt: skip
    for name, value, passed in rows:
        verdict = "" if passed is None else ("PASS" if passed else "FAIL")
        print(f"  {name:<{width}}  {value:<58} {verdict}")
    failed = [r[0] for r in rows if r[2] is False]
    print(f"\n{'FAIL: ' + ', '.join(failed) if failed else 'PASS'}")
    if failed:
        for g in groups:
            for i, (s, t) in enumerate(zip(g.scenarios, g.trajectories, strict=True)):
                if t is not None and not survived(s, t, g.format != "openai"):
                    last = next((c.result for turn in reversed(t.turns) for c in reversed(turn.calls)), "")
                    print(f"  not survived: {g.name}-{i} {s}: terminated={t.terminated} "
                          f"reason={t.truncation_reason} error={(t.error or '')[:160]!r}\n"
                          f"    last call: {last[:100]!r}")  # fmt: skip
        for line, n in watch.logs.most_common(10):
            print(f"  log x{n}: {line}")
    return 1 if failed else 0


def _listed(n: int, items: Any) -> str:
    shown = ", ".join(str(x) for x in list(items)[:3])
    return f"{n}" + (f" ({shown})" if n else "")


if __name__ == "__main__":
    sys.exit(main())
