"""The ``inftool`` command: inspect and serve specs, run the demo.

A user mistake (bad spec, unknown backend, port in use) ends with one line on stderr and exit
status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from inftool_env.argtypes import port, positive_int, seed_arg
from inftool_env.compiler import BACKEND_KINDS, compile_spec, load_suite
from inftool_env.errors import InftoolError, os_reason
from inftool_env.spec.loader import DEFAULT_MAX_BYTES

SPEC_HELP = "a spec file (OpenAPI 2/3/3.1, OpenAI/BFCL function JSON), bfcl:CLASS, python:MODULE:CLASS, stdio:COMMAND or an MCP URL"  # noqa: E501


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except InftoolError as exc:
        print(f"inftool: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`
        return 0
    except OSError as exc:
        if exc.filename is None:  # not a file the user named or we were told to write (a socket, a bug): raise
            raise
        # A path that cannot be made, read or written (an --out under a file, a read-only or full disk): which and why.
        print(f"inftool: error: {exc.filename}: {os_reason(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def policy_help() -> str:
    """Every policy kind ``resolve_policy`` accepts, read from the code that resolves them."""
    from inftool_env.policies import KNOWN

    return f"the assistant: {KNOWN} (model options after '?', e.g. gguf:embedded?max_tokens=128)"


def _example(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def _words(values: list[str] | None) -> list[str] | None:
    """``--categories a b`` and ``--categories a,b`` (and mixes of both) give the same list."""
    if values is None:
        return None
    return [w.strip() for v in values for w in v.split(",") if w.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inftool", description="An MCP-native gym for tool-calling agents.")
    sub = parser.add_subparsers(dest="command")

    def add(name: str, summary: str, example: tuple[str, ...], **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=summary, epilog=_example(*example),
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)  # fmt: skip

    inspect = add("inspect", "compile a spec and print its tools and any skipped operations",
                  ("inftool inspect servers/bookshelf/openapi.yaml",))  # fmt: skip
    inspect.add_argument("spec", help=SPEC_HELP)
    inspect.add_argument("--json", action="store_true", help="print the ToolSuite as JSON")
    _compile_options(inspect)
    inspect.set_defaults(run=cmd_inspect)

    serve = add("serve", "compile a spec and serve it as an MCP server",
                ("inftool serve servers/bookshelf/openapi.yaml --transport http --port 8000",))  # fmt: skip
    serve.add_argument("spec", help=SPEC_HELP)
    serve.add_argument("--backend", help=f"what executes calls: {', '.join(BACKEND_KINDS)} (default: by source)")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: loopback only)")
    serve.add_argument("--port", type=port, default=8000)
    serve.add_argument("--seed", type=seed_arg, default=0, help="seed of the default episode's state")
    serve.add_argument("--token", default=os.environ.get("INFTOOL_TOKEN"),
                       help="HTTP: require 'Authorization: Bearer TOKEN' (default: $INFTOOL_TOKEN, "
                            "which, unlike an argument, other users' `ps` does not show)")  # fmt: skip
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="HTTP: another Host name for clients (besides the bind address and loopback)")  # fmt: skip
    serve.add_argument("--call-timeout", type=float, default=30.0, help="seconds a call may run (0: no limit)")
    serve.add_argument("--max-episodes", type=positive_int, default=1024, help="live episodes at once")
    serve.add_argument("--episode-ttl", type=float, default=3600.0, help="seconds before an idle episode is released")
    serve.add_argument("--quiet", action="store_true", help="no start-up line on stderr")
    _compile_options(serve)
    serve.set_defaults(run=cmd_serve)

    list_cmd = add("list", "the registered environments", ("inftool list",))
    list_cmd.set_defaults(run=cmd_list)

    check = add("check", "run Gymnasium's check_env, and the oracle on every task of an environment",
                ("inftool check inftool/Bookshelf-v0",))  # fmt: skip
    check.add_argument("env_id")
    check.set_defaults(run=cmd_check)

    evaluate = add(
        "eval", "run a policy on an environment's tasks, or on BFCL v4 (`eval bfcl`)",
        ("inftool eval inftool/Bookshelf-v0 --policy oracle          # writes out/eval/inftool/Bookshelf-v0",
         "inftool eval bfcl --policy gguf:embedded --categories simple_python,parallel --limit 10",
         "inftool eval bfcl --from-results out/bfcl/results    # score BFCL-format result files"),
    )  # fmt: skip
    evaluate.add_argument("env_id", help="a registered env id, an env manifest (.toml, e.g. inftool synth's), "
                          "or `bfcl` for the BFCL v4 benchmark")  # fmt: skip
    evaluate.add_argument("--policy", help=policy_help())
    evaluate.add_argument("--categories", nargs="+", help="bfcl: categories or groups (all, non_live, live, "
                          "relevance, multi_turn), space- or comma-separated; default all")  # fmt: skip
    evaluate.add_argument("--limit", type=positive_int, help="bfcl: the first N entries of each category")
    evaluate.add_argument("--from-results", help="bfcl: score BFCL-format result files (a file or a directory)")
    evaluate.add_argument("--format", help="bfcl: the tool-call format the policy answers in (default: openai)")
    evaluate.add_argument("--tasks", help="env: a JSONL file of tasks instead of the env's own")
    evaluate.add_argument("--n", type=positive_int,
                          help="env: episodes with seeded task sampling (default: each task once)")  # fmt: skip
    evaluate.add_argument("--seed", type=seed_arg, help="env: the first episode's seed (default: 0)")
    evaluate.add_argument("--concurrency", type=positive_int, help="episodes at once (default: 8)")
    evaluate.add_argument("--out", help="env: where summary.json and trajectories.jsonl go (default: "
                          "out/eval/ENV_ID); bfcl: report.json, summary.txt, accuracy.png and results/ "
                          "(default: out/bfcl), replacing all an earlier bfcl run wrote there (every category's "
                          "result file) and leaving other files")  # fmt: skip
    evaluate.set_defaults(run=cmd_eval)

    # The loop's commands live beside their code; each module imports its heavy parts (torch) lazily.
    from inftool_env.rollout.cli import add_commands as add_rollout_commands
    from inftool_env.synth.cli import add_commands as add_synth_commands
    from inftool_env.train.grpo.cli import add_commands as add_train_commands
    from inftool_env.train.loop.cli import add_commands as add_evolve_commands
    from inftool_env.train.openrlhf.dataset import add_commands as add_openrlhf_commands

    for add_commands in (add_rollout_commands, add_synth_commands, add_train_commands, add_evolve_commands,
                         add_openrlhf_commands):  # fmt: skip
        add_commands(sub)

    demo = add("demo", "compile the embedded specs, serve them over every transport, call every tool",
               ("inftool demo --model-limit 0    # without the embedded model's stage",))  # fmt: skip
    demo.add_argument("--out", default="out/demo", help="where the report (JSON) and plot go")
    demo.add_argument("--model-limit", type=int, default=10,
                      help="BFCL entries per category for the embedded model (0 skips it)")  # fmt: skip
    demo.set_defaults(run=cmd_demo)
    return parser


def _compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail on the first operation that cannot be compiled, or the first mistake worked around",
    )
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger spec files")


def cmd_inspect(args: argparse.Namespace) -> int:
    suite = load_suite(args.spec, strict=args.strict, max_bytes=args.max_bytes)
    if args.json:
        print(suite.model_dump_json(indent=2))
        return 0
    print(f"{suite.name} {suite.version} ({suite.format}) from {suite.source}")
    warned = f", {len(suite.warnings)} warnings" if suite.warnings else ""
    print(f"{_many(len(suite.tools), 'tool')}, {len(suite.skipped)} skipped{warned}\n")
    width = max((len(t.name) for t in suite.tools), default=4)
    for tool in suite.tools:
        props = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        args_text = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        origin = f"{tool.http.method} {tool.http.path}" if tool.http else tool.original_name
        hints = [k for k, v in tool.annotations.model_dump().items() if v]
        print(f"  {tool.name:<{width}}  ({args_text})  <- {origin}" + (f"  [{', '.join(hints)}]" if hints else ""))
    if suite.skipped:
        print("\nskipped:")
        for skip in suite.skipped:
            print(f"  {skip.name}  at #{skip.pointer}: {skip.reason}")
    if suite.warnings:
        print("\nwarnings (worked around; --strict refuses them):")
        for warning in suite.warnings:
            print(f"  {warning.name}  at #{warning.pointer}: {warning.message}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    compiled = compile_spec(args.spec, backend=args.backend, seed=args.seed, strict=args.strict,
                            max_bytes=args.max_bytes)  # fmt: skip
    from inftool_env.mcp import ServerLimits
    from inftool_env.mcp.transports import serve_http, serve_stdio

    compiled.limits = ServerLimits(call_timeout_s=args.call_timeout or None, max_episodes=args.max_episodes,
                                   episode_ttl_s=args.episode_ttl or None)  # fmt: skip

    suite = compiled.suite
    if not suite.tools:
        raise InftoolError(f"{args.spec}: no operation could be served{_skipped(suite, 3)}")
    where = "stdio" if args.transport == "stdio" else f"http://{args.host}:{args.port}/mcp"

    def serving() -> None:
        if not args.quiet:
            print(f"inftool: serving {_many(len(suite.tools), 'tool')} of {suite.name} on {where}{_skipped(suite, 3)}",
                  file=sys.stderr)  # fmt: skip

    if args.transport == "stdio":
        serving()
        anyio.run(serve_stdio, compiled)
    else:  # said once the port is bound: a busy one gets only the error

        async def run_http() -> None:
            await serve_http(compiled, host=args.host, port=args.port, token=args.token or None,
                             allowed_hosts=args.allow_host, on_listening=serving)  # fmt: skip

        anyio.run(run_http)
    return 0


def _skipped(suite: Any, shown: int) -> str:
    """ "; 2 operations skipped: a (why), b (why)" for a start-up line; past ``shown``, "and 2 more"
    (``inspect`` lists a spec's; the skips a backend class adds are named only here)."""
    if not suite.skipped:
        return ""
    count = len(suite.skipped)
    named = ", ".join(f"{s.name} ({s.reason})" for s in suite.skipped[:shown])
    more = f" and {count - shown} more (inftool inspect lists them)" if count > shown else ""
    return f"; {_many(count, 'operation')} skipped: {named}{more}"


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def warn_lost_operations(servers: Mapping[str, Any]) -> None:
    """A WARN line for each server whose spec lost operations: the env works, but without them."""
    for name, server in servers.items():
        if server.suite.skipped:
            print(f"WARN  server {name}: {_skipped(server.suite, 3).removeprefix('; ')}")


def cmd_list(args: argparse.Namespace) -> int:
    from inftool_env.registration import default_registry

    registry = default_registry()
    ids = registry.ids()
    width = max(map(len, ids), default=0)
    for env_id in ids:
        config = registry.entry(env_id).config
        print(f"{env_id:<{width}}  {config.description}")
    if registry.problems:  # on stderr: stdout stays one env a line, for scripts
        print("could not load:", file=sys.stderr)
        for problem in registry.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gymnasium.utils.env_checker import check_env

    from inftool_env.env.batch import run_batch
    from inftool_env.env.gym import GymToolEnv
    from inftool_env.policies.oracle import OraclePolicy
    from inftool_env.registration import make

    failures = 0
    gym_env = GymToolEnv(env=make(args.env_id))
    warn_lost_operations(gym_env.core.servers)
    try:
        check_env(gym_env, skip_render_check=True)
        print(f"PASS  check_env({args.env_id})")
    except Exception as exc:  # report what failed, whatever it is
        failures += 1
        print(f"FAIL  check_env({args.env_id}): {type(exc).__name__}: {exc}")
    finally:
        gym_env.close()

    async def oracle_episodes() -> tuple[list[Any], Any]:
        # Every task's ground truth, played: a task file's mistakes (a tool the env lacks, arguments its
        # schema refuses) show here by task, not later as the policy's failures.
        env = make(args.env_id)
        try:
            played = await run_batch(env, OraclePolicy, episodes=[(0, t.id) for t in env.tasks], concurrency=16,
                                     progress=True)  # fmt: skip
            return played, env
        finally:
            await env.close()

    trajectories, env = anyio.run(oracle_episodes)
    tasks = {t.id: t for t in env.tasks}
    wrong = [t for t in trajectories if t.error is not None or t.reward is None or t.reward.reward != 1.0]
    # BFCL entries its own data makes unpassable (eval/bfcl_known.py), failed for that reason: said, not failures.
    known: list[tuple[str, str]] = []
    for t in wrong:
        why = _known_miss(t, tasks[t.task_id], env.config.reward.gates)
        if why is not None:
            known.append((t.task_id, why))
    wrong = [t for t in wrong if t.task_id not in {task_id for task_id, _ in known}]
    solved = len(trajectories) - len(wrong) - len(known)
    if not wrong and known:
        other = "is a known issue" if len(known) == 1 else "are known issues"
        print(f"PASS  the oracle solves {solved} of {len(trajectories)} tasks; the other {len(known)} {other} "
              "of BFCL's data:")  # fmt: skip
    elif not wrong:
        print(f"PASS  the oracle solves all {len(trajectories)} tasks (reward 1.0)")
    else:
        failures += 1
        print(f"FAIL  the oracle solves {solved} of {len(trajectories)} tasks; not:")
        for t in wrong[:5]:
            print(f"      {t.task_id}: {_oracle_miss(t, env.config.reward.gates)}")
            if excluded := _excluded_ground_truth(tasks[t.task_id]):
                print(f"        its ground truth calls {', '.join(excluded)}, which its own excluded_tools lists")
        if len(wrong) > 5:
            print(f"      and {len(wrong) - 5} more")
    for task_id, why in known:
        print(f"KNOWN {task_id}: {why} (inftool_env/eval/bfcl_known.py)")
    return 1 if failures else 0


def _known_miss(trajectory: Any, task: Any, gates: Sequence[str]) -> str | None:
    """Why BFCL's own data keeps the oracle from passing ``task``, when it is a listed BFCL entry and its
    episode failed for the listed reason (failing otherwise, it is a failure like any other)."""
    from inftool_env.eval.bfcl_known import SCHEMA_VIOLATIONS, UNPASSABLE, known_issue

    why = known_issue(task)
    listed = SCHEMA_VIOLATIONS.get(task.id) or UNPASSABLE.get(task.id)
    if why is None or listed is None or trajectory.error is not None or trajectory.reward is None:
        return None
    said = " ".join([_oracle_miss(trajectory, gates), *trajectory.reward.notes, trajectory.reward.error_type or ""])
    return why if listed in said else None


_SHOWN_CHARS = 200  # of the text that failed a task, on its line of `inftool check`


def _oracle_miss(trajectory: Any, gates: Sequence[str]) -> str:
    """Why the oracle's episode of a task scored below 1, in one line: broken infrastructure, or the
    first failing gate (of those the env's reward requires) with the text that failed it (the turn the
    parser could not read, the first call refused or failed and its error), else the reward's notes."""
    from inftool_env.rewards import FAILED_BY

    reward = trajectory.reward
    if trajectory.error or reward is None:
        return str(trajectory.error or trajectory.truncation_reason)
    failed = next((g for g in gates if reward.gates.get(g) is False), None)
    if failed is None:
        return f"reward {reward.reward:g}; {'; '.join(reward.notes) or f'components {reward.components}'}"
    if failed == "format":
        unread = next((t for t in trajectory.turns if t.parse_error is not None), None)
        as_text = (n.removeprefix("format: ") for n in reward.notes if n.startswith("format: "))
        why = f"turn {unread.step}: {unread.parse_error}" if unread else next(as_text, "no assistant turn")
    else:
        kinds = FAILED_BY.get(failed, ())
        call = next((c for t in trajectory.turns for c in t.calls if c.error_kind in kinds), None)
        why = f"{call.name}: {call.result}" if call else ""
    why = " ".join(why.split())
    if len(why) > _SHOWN_CHARS:
        why = why[: _SHOWN_CHARS - 1] + "…"
    return f"reward {reward.reward:g}; {failed} gate" + (f": {why}" if why else "")


def _excluded_ground_truth(task: Any) -> list[str]:
    """The tools a task's ground truth calls that the task itself excludes (never offered: never callable)."""
    return sorted({c.name for turn in task.ground_truth for c in turn} & set(task.excluded_tools))


# The flags of `inftool eval` that only one kind of eval reads: given to another, they are refused, not ignored.
ENV_FLAGS = ("tasks", "n", "seed")
BFCL_RUN_FLAGS = ("categories", "limit", "format")


def _refuse_flags(args: argparse.Namespace, names: Sequence[str], belongs: str, kind: str) -> None:
    for name in names:
        if getattr(args, name) is not None:
            raise InftoolError(f"--{name.replace('_', '-')} is for {belongs}, not {kind}")


def eval_out(env_id: str) -> Path:
    """An env eval's default ``--out``: ``out/eval/<env id>`` (``out/eval/inftool/Bookshelf-v0``)."""
    return Path("out", "eval", *(p for p in env_id.split("/") if p not in ("", ".", "..")))


def cmd_eval(args: argparse.Namespace) -> int:
    if args.env_id == "bfcl":
        return cmd_eval_bfcl(args)
    _refuse_flags(args, (*BFCL_RUN_FLAGS, "from_results"), "`inftool eval bfcl`", "an env's eval")
    if args.policy is None:
        raise InftoolError("--policy is required (e.g. --policy oracle)")

    from inftool_env.env import ToolEnv
    from inftool_env.eval.runner import evaluate, format_summary, task_warnings
    from inftool_env.policies import close_policy, resolve_policy
    from inftool_env.registration import default_registry, make
    from inftool_env.tasks import load_tasks

    # The env's format: a policy that cannot act on it (tools=prompt on an openai-format env) is refused now.
    policy = resolve_policy(args.policy, env_format=default_registry().resolve(args.env_id).config.format)
    tasks = load_tasks(args.tasks) if args.tasks else None
    outs: list[Path] = []  # where this run writes, once known (a Ctrl-C says what it kept there)

    async def run() -> Any:
        env = played = make(args.env_id)
        try:
            warn_lost_operations(env.servers)
            if tasks is not None:  # refuses a task naming servers the env lacks, before anything is written
                played = ToolEnv(env.config, tasks, env.servers, user=env.user, reward_fn=env.reward_fn)
            for line in task_warnings(played):
                print(line)
            outs.append(Path(args.out) if args.out else eval_out(env.config.id))
            return await evaluate(played, policy, n=args.n, seed=args.seed or 0, concurrency=args.concurrency or 8,
                                  out=outs[0])  # fmt: skip
        finally:
            if played is not env:
                await played.close()
            await env.close()
            await close_policy(policy)

    try:
        summary, _ = anyio.run(run)
    except KeyboardInterrupt:
        if outs:
            _kept(outs[0])
        raise
    print(format_summary(summary))
    print(f"  trajectories   {outs[0] / 'trajectories.jsonl'}")
    return _broken(summary.broken)


def _kept(out: Path) -> None:
    """After Ctrl-C: how many episodes the interrupted eval kept, and where (its summary.json says)."""
    import json

    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(summary, dict) and summary.get("incomplete"):
        print(f"inftool: interrupted: {summary.get('episodes')} of {summary.get('planned')} episodes finished, "
              f"kept in {out / 'trajectories.jsonl'} ({out / 'summary.json'} marked incomplete)",
              file=sys.stderr)  # fmt: skip


def _broken(cause: str | None) -> int:
    """Exit 1, naming the cause, when episodes broke on infrastructure: a 0% is not the policy's score."""
    if cause is None:
        return 0
    print(f"inftool: error: {cause}", file=sys.stderr)
    return 1


def cmd_eval_bfcl(args: argparse.Namespace) -> int:
    from inftool_env.eval.bfcl import evaluate_bfcl, score_path
    from inftool_env.eval.bfcl_data import resolve_categories
    from inftool_env.eval.bfcl_report import format_report, interrupted_line
    from inftool_env.eval.bfcl_results import check_out
    from inftool_env.policies import check_policy, resolve_policy

    _refuse_flags(args, ENV_FLAGS, "an env's eval (`inftool eval ENV_ID`)", "`inftool eval bfcl`")
    out = Path(args.out or "out/bfcl")
    if args.from_results:
        if args.policy:
            raise InftoolError("give either --policy (run it) or --from-results (score files), not both")
        _refuse_flags(args, (*BFCL_RUN_FLAGS, "concurrency"), "`inftool eval bfcl --policy`",
                      "--from-results (which scores every entry of the files given)")  # fmt: skip
        report = anyio.run(lambda: score_path(Path(args.from_results), out=out))
    else:
        if args.policy is None:
            raise InftoolError("--policy is required (e.g. --policy oracle), or --from-results FILE_OR_DIR")
        categories = resolve_categories(_words(args.categories))
        check_policy(args.policy)
        check_out(out)  # a busy or unwritable --out refused now, not after the model has loaded
        policy = resolve_policy(args.policy)
        try:
            report = anyio.run(lambda: evaluate_bfcl(args.policy, policy, categories, limit=args.limit, out=out,
                                                     format=args.format or "openai",
                                                     concurrency=args.concurrency or 8))  # fmt: skip
        except KeyboardInterrupt:  # what the interrupted run kept, and where (main exits 130)
            if (line := interrupted_line(out)) is not None:
                print(line, file=sys.stderr)
            raise
    print(format_report(report))
    results = out / "results"
    print(
        f"report: {out / 'report.json'}"
        + (f"; results: {results}" if results.is_dir() and not args.from_results else "")
    )
    return _broken(report.broken)


def cmd_demo(args: argparse.Namespace) -> int:
    from inftool_env.demo import run_demo

    run_demo(out_dir=args.out, model_limit=args.model_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
