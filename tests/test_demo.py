import json

from inftool_env.demo import run_demo


def test_demo_runs_every_domain_over_every_transport(tmp_path, capsys):
    report = run_demo(out_dir=tmp_path, model_limit=0)  # the model stage: tests/llm/test_embedded_model.py
    rows = report["transports"]
    assert {r["transport"] for r in rows} == {"in-process", "stdio", "http"}
    assert len(rows) == 27  # Bookshelf + 8 BFCL domains, 3 transports each
    assert all(r["failure"] is None and r["calls"] == r["tools"] > 0 for r in rows)
    envs = {r["env"]: r for r in report["environments"]}
    assert envs["inftool/Bookshelf-v0"]["success_rate"] == 1.0
    assert envs["inftool/BfclMathAPI-v0"]["episodes"] == 25
    assert report["embedded_model"] is None
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert (tmp_path / "latency.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "borrowBook(" in out and "isError: No books with bookId='boo_404'" in out
    assert "median latency per call: in-process" in out
