"""``inftool rollout --workers W``: Ray actors on one local cluster (started here, module-wide)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from inftool_env.rollout import WORKER_LOST, JsonlSink, plan_episodes, rollout
from tests.conftest import BOOKSHELF
from tests.rollout._policies import HangOnWorker, LineCounter, answer

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from inftool_env.rollout.ray_workers import RayRollout  # noqa: E402 - after the skip

ENV = "inftool/Bookshelf-v0"


@pytest.fixture(scope="module")
def cluster():
    # The shared server for the HTTP test starts here too, so its start-up overlaps Ray's.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "inftool_env.cli", "serve", str(BOOKSHELF), "--transport",
                               "http", "--port", str(port), "--quiet"])  # fmt: skip
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield (server, port)
        finally:
            ray.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_workers_run_every_episode_once_streamed_with_ids_unique_across_actors(tmp_path, cluster):
    # Each episode's closing answer says how many lines the file had when it began (in the actor's process).
    out = tmp_path / "r.jsonl"
    summary = rollout(ENV, LineCounter(out), n=12, workers=2, concurrency=2, out=out)
    records = read(out)
    assert sorted(r["rollout"]["index"] for r in records) == list(range(12))
    assert {r["rollout"]["worker"] for r in records} == {"ray-0", "ray-1"}
    assert all(r["reward"]["reward"] == 1.0 for r in records)
    ids = [r["rollout"]["episode_id"] for r in records]
    assert None not in ids and len(set(ids)) == 12, ids
    assert (summary.episodes, summary.success_rate, summary.errors) == (12, 1.0, {})
    # Written as they end: 4 episodes start at once, and episode k >= 4 is handed out only after k-3 have
    # ended and been written, so it saw at least k-3 lines.
    seen = {r["rollout"]["index"]: int(answer(r).removeprefix("lines=")) for r in records}
    assert all(seen[k] >= k - 3 for k in range(4, 12)), seen


def test_a_killed_worker_loses_no_episode(tmp_path, cluster):
    # Worker 0's episodes hang; once worker 1 has finished one, worker 0 is killed. Its two episodes in
    # flight come back as trajectories with the error; every other episode runs on worker 1.
    pool = RayRollout(ENV, HangOnWorker(0), workers=2, concurrency=2)
    sink = JsonlSink(tmp_path / "r.jsonl")
    finished = []

    def on_finished(f):
        sink.write(f)
        finished.append(f)
        if len(finished) == 1:
            ray.kill(pool.actors[0], no_restart=True)

    try:
        pool.run(plan_episodes(10), on_finished)
    finally:
        pool.close()
        sink.close()
    assert sorted(f.index for f in finished) == list(range(10))
    lost = [f for f in finished if f.trajectory.error is not None]
    assert [(f.worker, f.trajectory.truncation_reason) for f in lost] == [("ray-0", WORKER_LOST)] * 2
    assert all("died" in f.trajectory.error for f in lost)
    kept = [f for f in finished if f.trajectory.error is None]
    assert {f.worker for f in kept} == {"ray-1"} and all(f.trajectory.reward.reward == 1.0 for f in kept)
    assert len(read(tmp_path / "r.jsonl")) == 10


def test_workers_share_servers_over_http_each_episode_isolated(tmp_path, cluster):
    server, port = cluster
    _wait_listening(port, server)
    out = tmp_path / "r.jsonl"
    urls = {"bookshelf": f"http://127.0.0.1:{port}/mcp"}
    summary = rollout(ENV, "oracle", n=10, workers=2, concurrency=3, out=out, server_urls=urls)
    records = read(out)
    assert (summary.episodes, summary.success_rate, summary.errors) == (10, 1.0, {})
    ids = [r["rollout"]["episode_id"] for r in records]
    assert None not in ids and len(set(ids)) == 10, ids


def test_workers_that_do_not_fit_fail_with_a_clear_error(cluster):
    from inftool_env.errors import InftoolError

    with pytest.raises(InftoolError, match="did not start within 1 s"):
        RayRollout(ENV, "oracle", workers=1, worker_cpus=64, start_timeout_s=1)


def _wait_listening(port, process):
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"inftool serve exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("inftool serve did not listen within 30 s")
