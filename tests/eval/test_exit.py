"""`inftool eval` and `inftool eval bfcl` exit non-zero, naming the cause in one line, when episodes broke
on infrastructure (here: an endpoint nobody listens on), and still write their report."""

from __future__ import annotations

import json
import socket

from inftool_env.cli import main


def unreachable() -> str:
    """An endpoint URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("inftool: error:")]


def test_eval_exits_non_zero_when_the_endpoint_is_down(capsys, tmp_path):
    url = unreachable()
    argv = ["eval", "inftool/Bookshelf-v0", "--policy", f"openai:{url}#m?retries=0", "--n", "3", "--out", str(tmp_path)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    [line] = error_lines(err)
    assert line.startswith(f"inftool: error: 3/3 episodes broke on infrastructure: PolicyError: {url}: ")
    assert "APIConnectionError after 1 try" in line
    assert "success rate" in out  # the summary is still printed
    assert len((tmp_path / "trajectories.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["broken"] == line.removeprefix("inftool: error: ")


def test_eval_bfcl_exits_non_zero_when_the_endpoint_is_down(capsys, tmp_path):
    url = unreachable()
    argv = ["eval", "bfcl", "--policy", f"openai:{url}#m?retries=0", "--categories", "simple_python,multi_turn_base",
            "--limit", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 1
    _, err = capsys.readouterr()
    [line] = error_lines(err)
    assert line.startswith(f"inftool: error: 4/4 episodes broke on infrastructure: PolicyError: {url}: ")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["broken"] == line.removeprefix("inftool: error: ")
    assert report["categories"]["simple_python"]["total"] == 2


def test_a_healthy_run_still_exits_zero(capsys, tmp_path):
    assert main(["eval", "inftool/Bookshelf-v0", "--policy", "oracle", "--n", "2", "--out", str(tmp_path)]) == 0
    assert error_lines(capsys.readouterr().err) == []
    assert json.loads((tmp_path / "summary.json").read_text())["broken"] is None
