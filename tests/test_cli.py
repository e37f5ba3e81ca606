from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import anyio
import pytest

from inftool_env import compile_spec, load_spec
from inftool_env.cli import main
from inftool_env.mcp import StdioCommand, open_client
from tests.conftest import BOOKSHELF, REPO, child_pids

INFTOOL = [sys.executable, "-m", "inftool_env.cli"]


def test_inspect_lists_tools_and_skips(capsys, tmp_path):
    assert main(["inspect", str(BOOKSHELF)]) == 0
    out = capsys.readouterr().out
    assert "9 tools, 0 skipped" in out
    assert "borrowBook      (memberId, bookId, due)  <- POST /members/{memberId}/loans" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.0.0\npaths:\n  /a: {get: {parameters: [{name: q, in: nowhere}]}}\n  /b: {get: {}}\n")
    assert main(["inspect", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "1 tool, 1 skipped" in out and "GET /a  at #/paths/~1a/get/parameters/0: unknown parameter location" in out
    assert main(["inspect", str(bad), "--strict"]) == 2
    assert "inftool: error:" in capsys.readouterr().err


def test_inspect_json_round_trips():
    out = subprocess.run([*INFTOOL, "inspect", str(BOOKSHELF), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["tools"][0]["name"] == "listBooks"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "/no/such.yaml"], "cannot read spec: No such file or directory"),
        (["serve", str(BOOKSHELF), "--backend", "nope"], "unknown backend 'nope'"),
        (["serve", "bfcl:NoSuchAPI"], "unknown BFCL domain 'NoSuchAPI'"),
        (["serve", "python:os.path:join"], "is not a class"),
        (["serve", str(BOOKSHELF), "--transport", "http", "--port", "99999"], "expected a port number from 0 to 65535"),
        (["serve", str(BOOKSHELF), "--transport", "http", "--port", "²"], "expected a port number from 0 to 65535"),
        (["inspect", str(REPO / "registry/Bookshelf-v0.toml")], "this is an environment manifest, not an API spec"),
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message):
    proc = subprocess.run([*INFTOOL, *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [
    ["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "1"],
    ["synth", "inftool/Bookshelf-v0", "--n", "2"],
    ["rollout", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "1"],
    ["export-openrlhf", "inftool/Bookshelf-v0"],
    ["demo"],
])  # fmt: skip
def test_an_out_that_cannot_be_made_is_a_one_line_error(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([*command, "--out", str(blocker / "out")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after any progress bar
    assert (
        last.startswith("inftool: error:")
        and str(blocker) in last
        and last.endswith(("a folder is needed", "is a file, not a folder"))
    )


def test_function_docs_without_an_executor_say_what_to_do(tmp_path):
    docs = tmp_path / "f.json"
    docs.write_text(json.dumps([{"name": "f", "parameters": {"type": "object", "properties": {}}}]))
    proc = subprocess.run([*INFTOOL, "serve", str(docs)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--backend python:MODULE:CLASS" in proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BROKEN_REF = """openapi: 3.0.0
info: {title: Refs, version: "1"}
paths:
  /a:
    get:
      operationId: getA
      parameters: [{name: q, in: query, schema: {$ref: "#/components/schemas/Gone"}}]
      responses: {"200": {description: ok}}
"""


def test_serve_names_the_operations_it_skipped(tmp_path):
    # Served without a word, a spec that lost operations to broken $refs looked whole; one that lost all served nothing.
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_REF)
    proc = subprocess.run([*INFTOOL, "serve", str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no operation could be served; 1 operation skipped: GET /a ($ref '#/components/schemas/Gone'" in proc.stderr
    partial = tmp_path / "partial.yaml"
    partial.write_text(
        BROKEN_REF
        + """  /b:
    get:
      operationId: getB
      responses: {"200": {description: ok}}
"""
    )
    proc = subprocess.run([*INFTOOL, "serve", str(partial)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert "serving 1 tool of Refs on stdio; 1 operation skipped: GET /a" in proc.stderr


def test_the_skipped_line_counts_one_operation_and_names_at_most_three():
    from inftool_env.cli import _skipped
    from inftool_env.spec.ir import SkippedOperation, ToolSuite

    def suite(n: int) -> ToolSuite:
        skips = [SkippedOperation(name=f"op{i}", pointer=f"/{i}", reason="why") for i in range(n)]
        return ToolSuite(name="s", format="functions", source="s.json", tools=[], skipped=skips)

    assert _skipped(suite(0), 3) == ""
    assert _skipped(suite(1), 3) == "; 1 operation skipped: op0 (why)"  # was "1 operations"
    assert _skipped(suite(5), 3) == (
        "; 5 operations skipped: op0 (why), op1 (why), op2 (why) and 2 more (inftool inspect lists them)"
    )


def test_serve_http_subprocess_and_a_busy_port():
    port = free_port()
    proc = subprocess.Popen(
        [*INFTOOL, "serve", str(BOOKSHELF), "--transport", "http", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"

        async def call() -> str:
            for _ in range(100):
                try:
                    async with open_client(url) as client:
                        return (await client.call("listMembers", {"limit": 1})).text
                except Exception:
                    await anyio.sleep(0.1)
            raise AssertionError("server did not come up")

        assert json.loads(anyio.run(call))[0]["id"].startswith("mem_")
        busy = subprocess.run(
            [*INFTOOL, "serve", str(BOOKSHELF), "--transport", "http", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Only the error: "serving …" is said once the port is bound (it came first, then the error).
        assert busy.returncode == 2 and busy.stderr.startswith(f"inftool: error: cannot listen on 127.0.0.1:{port}")
        assert "serving" not in busy.stderr
    finally:
        proc.terminate()
        _, said = proc.communicate(timeout=10)
    assert said.startswith(f"inftool: serving 9 tools of Bookshelf on http://127.0.0.1:{port}/mcp\n")


def test_dns_rebinding_protection_refuses_foreign_hosts():
    from starlette.testclient import TestClient

    from inftool_env.mcp import http_app

    with TestClient(http_app(compile_spec(BOOKSHELF)), base_url="http://127.0.0.1:8000") as web:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        refused = web.post("/mcp", json=body, headers={**headers, "host": "evil.example:8000"})
        assert refused.status_code == 421


def test_wrap_a_live_stdio_server(capsys):
    """`stdio:` sources: list a running server's tools, and proxy calls to it."""
    live = "stdio:" + " ".join([sys.executable, "-m", "inftool_env.cli", "serve", str(BOOKSHELF)])
    suite = load_spec(live)
    assert suite.format == "mcp" and "borrowBook" in suite.tool_names

    async def through_proxy() -> tuple[str, bool]:
        proxy = StdioCommand(sys.executable, ("-m", "inftool_env.cli", "serve", live, "--transport", "stdio"))
        async with open_client(proxy) as client:
            added = await client.call("addBook", {"title": "Proxied", "author": "P"})
            got = await client.call("getBook", {"bookId": added.structured["id"]})
            bad = await client.call("getBook", {"bookId": "missing"})
            return got.structured["title"], bad.is_error

    assert anyio.run(through_proxy) == ("Proxied", True)


def test_no_subprocess_outlives_its_client():
    before = child_pids()

    async def session() -> None:
        async with open_client(StdioCommand.inftool_serve(str(BOOKSHELF))) as client:
            await client.call("listBooks", {})

    for _ in range(3):
        anyio.run(session)
    deadline = time.monotonic() + 10
    while child_pids() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert child_pids() - before == set()


def test_repo_layout_installs_policies_and_train_under_the_namespace():
    import inftool_env.policies
    import inftool_env.train

    assert inftool_env.policies.__file__.startswith(str(REPO / "policies"))
    assert inftool_env.train.__file__.startswith(str(REPO / "train"))


def test_a_manifests_unknown_format_or_user_names_the_env(tmp_path, capsys):
    manifest = (REPO / "registry/Bookshelf-v0.toml").read_text().replace("../servers", str(REPO / "servers"))
    for old, new, message in (('format = "openai"', 'format = "hermez"', "unknown tool-call format 'hermez'"),
                              ('user = "scripted"', 'user = "robot"', "unknown user simulator 'robot'")):  # fmt: skip
        (tmp_path / "Shelf-v0.toml").write_text(manifest.replace(old, new))
        assert main(["check", str(tmp_path / "Shelf-v0.toml")]) == 2
        assert f"inftool/Bookshelf-v0: {message}" in capsys.readouterr().err


def _shelf_with(tmp_path, *extra: dict) -> tuple[str, list[dict]]:
    """A manifest in ``tmp_path``: the Bookshelf env, its tasks and ``extra`` ones (the first task, updated)."""
    from inftool_env.env.config import TaskSource
    from inftool_env.registration import default_registry
    from inftool_env.synth.run import to_toml

    shelf = default_registry().entry("inftool/Bookshelf-v0")
    tasks = [json.loads(line) for line in (shelf.base_dir / shelf.config.tasks.source).read_text().splitlines()]
    tasks += [{**tasks[0], **task} for task in extra]
    (tmp_path / "tasks.jsonl").write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    manifest = shelf.config.model_copy(update={"id": "test/Shelf-v0", "tasks": TaskSource(source="tasks.jsonl")})
    servers = [s.model_copy(update={"spec": str((shelf.base_dir / s.spec).resolve())}) for s in shelf.config.servers]
    manifest = manifest.model_copy(update={"servers": servers})
    (tmp_path / "Shelf-v0.toml").write_text(to_toml(manifest, tmp_path))
    return str(tmp_path / "Shelf-v0.toml"), tasks


def test_check_names_each_task_its_own_ground_truth_fails(capsys, tmp_path):
    # It played the first task only: a task file's later mistakes passed, then read as the policy's failures.
    manifest, tasks = _shelf_with(tmp_path, {"id": "ghost-tool", "ground_truth": [[{"name": "noSuchTool"}]]})
    assert main(["check", manifest]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  the oracle solves {len(tasks) - 1} of {len(tasks)} tasks; not:" in out
    assert "ghost-tool: reward 0" in out


def test_check_says_why_each_task_failed_not_only_which_gate(capsys, tmp_path):
    # It printed the gates' dict ({'format': True, 'schema': False, ...}) though the trajectory held the reason.
    remove = {"name": "removeBook", "arguments": {"bookId": "boo_1"}}
    manifest, _ = _shelf_with(
        tmp_path,
        {"id": "typo-tool", "ground_truth": [[{"name": "removeBooks", "arguments": {"bookId": "boo_1"}}]]},
        {"id": "typo-arg", "ground_truth": [[{"name": "removeBook", "arguments": {"bookID": "boo_1"}}]]},
        {"id": "no-such-book", "ground_truth": [[{"name": "getBook", "arguments": {"bookId": "boo_99"}}]]},
        {"id": "excluded", "ground_truth": [[remove]], "excluded_tools": ["removeBook"]},
    )
    assert main(["check", manifest]) == 1
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("FAIL  the oracle solves 5 of 9 tasks; not:")
    failed = lines[at + 1 :]
    assert failed[0].startswith("      typo-tool: reward 0; schema gate: removeBooks: Unknown tool 'removeBooks'.")
    assert failed[1].startswith("      typo-arg: reward 0; schema gate: removeBook: Invalid arguments for 'removeBook'")
    assert "'bookID' was unexpected" in failed[1]
    assert failed[2].startswith("      no-such-book: reward 0; execution gate: getBook: ") and "boo_99" in failed[2]
    assert failed[3].startswith("      excluded: reward 0; schema gate: removeBook: Unknown tool 'removeBook'.")
    assert failed[4] == "        its ground truth calls removeBook, which its own excluded_tools lists"
    assert len(failed) == 5 and all(len(line) < 240 for line in failed)


def test_a_task_naming_a_server_the_env_lacks_is_refused_before_any_episode(capsys, tmp_path):
    # Reported per episode as "broke on infrastructure" (and a FAIL of check_env for the whole env).
    manifest, tasks = _shelf_with(tmp_path, {"id": "elsewhere", "servers": ["bookshelve"]})
    for argv in (["check", manifest], ["eval", manifest, "--policy", "oracle", "--out", str(tmp_path / "out")]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.splitlines() == [
            "inftool: error: test/Shelf-v0: task elsewhere names servers ['bookshelve'] the env does not have;"
            " is it another env's task?"
        ]
    assert not (tmp_path / "out").exists()
    # The same task in a file given to a registered env's eval.
    (tmp_path / "other.jsonl").write_text(json.dumps(tasks[-1]) + "\n")
    assert main(["eval", "inftool/Bookshelf-v0", "--tasks", str(tmp_path / "other.jsonl"), "--policy", "oracle",
                 "--out", str(tmp_path / "out")]) == 2  # fmt: skip
    assert "task elsewhere names servers ['bookshelve'] the env does not have" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_list_check_and_eval(capsys, tmp_path):
    assert main(["list"]) == 0
    assert "inftool/BfclMathAPI-v0" in capsys.readouterr().out
    assert main(["check", "inftool/Bookshelf-v0"]) == 0
    out = capsys.readouterr().out
    assert "PASS  check_env(inftool/Bookshelf-v0)" in out and "PASS  the oracle solves all 5 tasks" in out

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({"id": "mine", "turns": ["Remove boo_2."],
                    "ground_truth": [[{"name": "removeBook", "arguments": {"bookId": "boo_2"}}]]}) + "\n"
    )  # fmt: skip
    assert (
        main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--tasks", str(tasks), "--out", str(tmp_path)]) == 0
    )
    assert "success rate   100.0%" in capsys.readouterr().out
    [line] = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert json.loads(line)["task_id"] == "mine"
    assert json.loads((tmp_path / "summary.json").read_text())["mean_reward"] == 1.0

    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "7", "--out", str(tmp_path)]) == 0
    assert "7 episodes" in capsys.readouterr().out
    # Another env's eval into the same folder would replace these results: refused before any episode.
    kept = (tmp_path / "trajectories.jsonl").read_text()
    assert main(["eval", "inftool/YelpFusion-v0", "--policy", "oracle", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"inftool: error: {tmp_path} holds another env's results (inftool/Bookshelf-v0); pick another --out"
    ]
    assert (tmp_path / "trajectories.jsonl").read_text() == kept


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "inftool/Bookshelf-v9"], "no version 9"),
        (["check", "inftool/Bookshelv-v0"], "Did you mean inftool/Bookshelf-v0"),
        (["eval", "inftool/Bookshelf-v0", "--policy", "gpt"], "unknown policy 'gpt'"),
        (["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--tasks", "/no/tasks.jsonl"], "cannot read tasks"),
    ],
)
def test_env_command_mistakes(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_eval_help_names_every_policy_kind_the_code_resolves(capsys):
    from inftool_env.llm import MODEL_KINDS
    from inftool_env.policies import MODEL_PREFIXES, resolve_policy

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for kind in ("oracle", *MODEL_KINDS):
        assert kind in help_text
    # Every listed prefix really resolves (a bad path fails later, never as "unknown policy") …
    for prefix in MODEL_PREFIXES:
        try:
            resolve_policy(prefix + "does-not-exist")
        except Exception as exc:
            assert "unknown policy" not in str(exc)
    # … and one not listed does not.
    with pytest.raises(Exception, match="unknown policy"):
        resolve_policy("nosuchkind:x")


def test_every_command_help_shows_an_example(capsys):
    from inftool_env.cli import _parser

    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  inftool {name}" in capsys.readouterr().out, name


def test_bfcl_categories_comma_or_space_separated(tmp_path, capsys):
    spellings = (["simple_python,irrelevance"], ["simple_python", "irrelevance"], ["simple_python,", "irrelevance"])
    for categories in spellings:
        out = tmp_path / "_".join(categories).replace(",", "-")
        assert main(["eval", "bfcl", "--policy", "oracle", "--categories", *categories, "--limit", "1",
                     "--out", str(out)]) == 0  # fmt: skip
        report = json.loads((out / "report.json").read_text())
        assert sorted(report["categories"]) == ["irrelevance", "simple_python"]
    assert main(["eval", "bfcl", "--policy", "oracle", "--categories", "simple_python,nope"]) == 2
    assert "unknown BFCL category 'nope'" in capsys.readouterr().err
