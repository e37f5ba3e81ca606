"""SkyRL-gym 0.4 through its own registry: ``skyrl_gym.make`` of our registered id plays a multi-turn
Bookshelf episode with Qwen's text tool-call format (hermes), and its reward equals what our eval
runner (``inftool eval``) gives for the same text actions."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

skyrl_gym = pytest.importorskip("skyrl_gym", reason="skyrl-gym is not installed (pip install skyrl-gym==0.4.0)")

from inftool_env.env.config import NO_DEADLINE_S  # noqa: E402
from inftool_env.errors import InftoolError  # noqa: E402
from inftool_env.eval.runner import evaluate  # noqa: E402
from inftool_env.policies import close_policy, resolve_policy  # noqa: E402
from inftool_env.registration import make  # noqa: E402
from inftool_env.train.skyrl import dataset_rows, register_envs  # noqa: E402
from tests.train.forking import in_fork  # noqa: E402

ENV = "inftool/Bookshelf-v0"
TASK = "bookshelf-register-and-borrow"


def _call(tool: str, **arguments: object) -> str:
    return f"<tool_call>\n{json.dumps({'name': tool, 'arguments': arguments})}\n</tool_call>"


RIGHT = [_call("registerMember", name="Ada Lovelace", email="ada@example.com"), "You are member mem_7.",
         _call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-03-01"), "Lent until 2025-03-01."]  # fmt: skip
WRONG_DUE = [*RIGHT[:2], _call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-04-01"), "Lent."]


def _play(actions: list[str], seed: int) -> tuple[float, list[list[dict]], dict]:
    register_envs([ENV])
    env = skyrl_gym.make(ENV, env_config=None, extras={"task_id": TASK, "seed": seed, "format": "hermes"})
    try:
        prompt, _ = env.init([])
        assert prompt[0]["role"] == "system" and "<tools>" in prompt[0]["content"]  # hermes renders the tools
        assert prompt[-1] == {
            "role": "user",
            "content": "Register me as a member please: Ada Lovelace, ada@example.com.",
        }
        observations, out = [], None
        for action in actions:
            out = env.step(action)
            observations.append(out["observations"])
            if out["done"]:
                break
        assert out is not None and out["done"]
        return float(out["reward"]), observations, env.get_metrics()
    finally:
        env.close()


def _inftool_eval(actions: list[str], seed: int, tmp_path: Path) -> float:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(actions))

    async def run() -> float:
        env = make(ENV, format="hermes")
        policy = resolve_policy(f"scripted:{script}")
        task = next(t for t in env.tasks if t.id == TASK)
        try:
            summary, trajectories = await evaluate(env, policy, tasks=[task], seed=seed, progress=False)
        finally:
            await env.close()
            await close_policy(policy)
        return float(trajectories[0].reward.reward)

    return anyio.run(run)


@pytest.mark.parametrize(("actions", "expected"), [(RIGHT, 1.0), (WRONG_DUE, 0.5)], ids=["right", "wrong-due-date"])
def test_skyrl_make_plays_a_multi_turn_episode_with_the_gated_reward(actions, expected, tmp_path):
    reward, observations, metrics = _play(actions, seed=3)
    assert reward == expected == _inftool_eval(actions, seed=3, tmp_path=tmp_path)
    tool_result = observations[0]
    assert [m["role"] for m in tool_result] == ["tool"] and '"mem_7"' in tool_result[0]["content"]
    assert observations[1] == [{"role": "user", "content": "Thanks! Now lend me book boo_2 until 2025-03-01."}]
    assert observations[-1] == []  # the episode is over: nothing more to read
    # per user turn: the wrong due date fails the second of two, so state (and the reward) is 0.5
    assert metrics["gate_format"] == metrics["gate_execution"] == 1.0 and metrics["state"] == expected


def test_bad_text_fails_the_format_gate_and_episodes_are_isolated():
    register_envs([ENV])
    envs = [skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": 3, "format": "hermes"}) for _ in range(2)]
    try:
        for env in envs:
            env.init([])
        # The trainer's generation between steps is not the env's to bound (no 600 s cut mid-batch).
        assert envs[0].core.config.limits.episode_timeout_s == NO_DEADLINE_S
        first = envs[0].step(RIGHT[0])
        second = envs[1].step(RIGHT[0])  # the same call in another episode: its own state, same member id
        assert first["observations"][0]["content"] == second["observations"][0]["content"]
        broken = envs[0].step('<tool_call>{"name": "borrowBook", "arguments": </tool_call>')
        assert broken["metadata"]["parse_error"] and not broken["done"]
        (why,) = broken["observations"]  # the model reads why its turn did nothing, as a tool response
        assert why == {"role": "tool", "content": f"Malformed tool call: {broken['metadata']['parse_error']}. "
                                                  "No call of this turn was run."}  # fmt: skip
        for action in RIGHT[1:]:
            out = envs[0].step(action)
        assert out["done"] and out["reward"] == 0.0  # right from then on, but the format gate failed
        assert envs[0].get_metrics()["gate_format"] == 0.0 and envs[0].get_metrics()["state"] == 1.0
    finally:
        for env in envs:
            env.close()


def test_dataset_rows_and_generic_id():
    rows = dataset_rows(ENV, fmt="hermes")
    assert [r["task_id"] for r in rows][:1] == ["bookshelf-add"] and rows[3]["seed"] == 3
    assert rows[3]["env_class"] == rows[3]["env_id"] == ENV  # a registered id names its own env class
    register_envs([ENV])
    env = skyrl_gym.make("inftool", extras={"env_id": ENV, "task_id": rows[3]["task_id"], "seed": rows[3]["seed"],
                                             "format": "hermes"})  # fmt: skip
    try:
        prompt, info = env.init(rows[3]["prompt"])
        assert prompt == rows[3]["prompt"] and info["task_id"] == TASK
    finally:
        env.close()


def _trajectory(actions: list[str]) -> tuple[float, str | None]:
    """One trajectory as SkyRL's generator runs it: a fresh env, init, steps until done, close."""
    env = skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": 3, "format": "hermes"})
    try:
        env.init([])
        for action in actions:
            out = env.step(action)
            if out["done"]:
                return float(out["reward"]), out["metadata"]["truncation_reason"]
        raise AssertionError("the episode did not end")
    finally:
        env.close()


def test_closing_one_env_leaves_its_siblings_running():
    register_envs([ENV])
    first, second = (skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": 3, "format": "hermes"}) for _ in range(2))
    try:
        first.init([])
        second.init([])
        second.step(RIGHT[0])
        first.close()  # its trajectory is over; the sibling's tool calls go on over the same servers
        for action in RIGHT[1:]:
            out = second.step(action)
        assert out["done"] and out["metadata"]["truncation_reason"] is None and out["reward"] == 1.0
    finally:
        first.close()
        second.close()


def test_trajectories_on_a_thread_pool_each_get_their_own_reward():
    # SkyRL's generator calls init/step/close through run_in_executor and closes each env as its
    # trajectory ends, while the others are still running.
    register_envs([ENV])
    plays = [(RIGHT, 1.0), (WRONG_DUE, 0.5), (["I cannot help with that."] * 3, 0.0)] * 6
    threads = threading.active_count()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(_trajectory, [actions for actions, _ in plays]))
    assert results == [(expected, None) for _, expected in plays]  # no server_error, no one else's state
    assert threading.active_count() <= threads + 1  # closed envs leave no thread behind (one loop at most)


def _in_fork(parents: Any) -> tuple[str, tuple[float, str | None]]:
    """A forked worker: the parent's env refuses to run; one made here plays its episode."""
    from inftool_env.errors import InftoolError

    try:
        parents.step(RIGHT[0])
        refused = "ran"
    except InftoolError as exc:
        refused = str(exc)
    return refused, _trajectory(RIGHT)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # forking a process with threads (Python 3.12+)
def test_a_forked_process_makes_its_own_loop_and_refuses_the_parents_env():
    # The parent's loop thread does not exist in a fork: before, a call there waited forever.
    register_envs([ENV])
    parents = skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": 3, "format": "hermes"})
    try:
        parents.init([])
        refused, played = in_fork(_in_fork, parents)
        assert "is a fork of it" in refused
        assert played == (1.0, None)
        for action in RIGHT:  # the parent's own env is untouched
            out = parents.step(action)
        assert out["done"] and out["reward"] == 1.0
    finally:
        parents.close()


def test_by_default_prompts_list_the_tools_and_text_calls_are_run():
    """With no format given, rows and envs use hermes: the manifests' ``openai`` renders no tools and
    reads no text call, so every episode would end on its first reply with reward 0."""
    rows = dataset_rows(ENV)
    assert {r["format"] for r in rows} == {"hermes"} and "<tools>" in rows[1]["prompt"][0]["content"]
    register_envs([ENV])
    env = skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": 3})
    try:
        prompt, _ = env.init([])
        assert "<tools>" in prompt[0]["content"]
        out = env.step(RIGHT[0])
        assert not out["done"] and out["observations"][0]["role"] == "tool"
    finally:
        env.close()


def test_rows_of_tasks_not_the_envs_own_carry_their_task_and_play_it():
    """Synthesized tasks, in the env their servers are: each row carries its task, and the env plays that one."""
    own = next(t for t in make(ENV).tasks if t.id == TASK)
    mine = own.model_copy(update={"id": "synth-borrow-1", "provenance": {"generator": "schema"}})
    (row,) = dataset_rows(ENV, tasks=[mine], seed=3)
    assert row["task_id"] == "synth-borrow-1" and json.loads(row["task"])["id"] == "synth-borrow-1"
    register_envs([ENV])
    env = skyrl_gym.make(ENV, extras=row)
    try:
        prompt, _ = env.init([])
        assert prompt == row["prompt"]
        for action in RIGHT:
            out = env.step(action)
            if out["done"]:
                break
        assert out["done"] and out["reward"] == 1.0
    finally:
        env.close()
    with pytest.raises(InftoolError, match=r"task elsewhere names servers \['library'\] the env does not have"):
        dataset_rows(ENV, tasks=[mine.model_copy(update={"id": "elsewhere", "servers": ["library"]})])


def test_a_manifest_that_names_a_text_format_keeps_it(tmp_path):
    """Only a format that renders no tools falls back to hermes: a user's manifest may be written for llama3."""
    shelf = Path(__file__).resolve().parents[2] / "servers" / "bookshelf"
    manifest = tmp_path / "Shelf-v0.toml"
    manifest.write_text(f"""id = "mine/Shelf-v0"
format = "llama3"
servers = [{{ name = "bookshelf", spec = "{shelf / "openapi.yaml"}" }}]
[tasks]
source = "{shelf / "tasks.jsonl"}"
""")
    rows = dataset_rows(str(manifest))
    assert {r["format"] for r in rows} == {"llama3"}
    assert dataset_rows(str(manifest), fmt="hermes")[0]["format"] == "hermes"  # the one given wins


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (lambda: dataset_rows(ENV, fmt="openai"), "format 'openai' renders no tools into the prompt; SkyRL trains"),
        (lambda: skyrl_gym.make(ENV, extras={"task_id": TASK, "format": "openai"}), "format 'openai' renders no"),
        (lambda: dataset_rows(ENV, seed=-1), "^seed must be 0 or more, not -1$"),
        (lambda: skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": -2}), "row's seed must be 0 or more, not -2"),
        (lambda: dataset_rows("inftool/BfclTravelAPI-v0"), "BFCL's, and BFCL is for evaluation only"),
        (lambda: register_envs(["inftool/BfclTravelAPI-v0"]), "BFCL's, and BFCL is for evaluation only"),
    ],
    ids=["openai-rows", "openai-env", "negative-seed-rows", "negative-seed-env", "bfcl-rows", "bfcl-register"],
)
def test_what_cannot_train_is_refused_up_front(call, why):
    register_envs([ENV])
    with pytest.raises(InftoolError, match=why):
        call()


def test_registering_every_env_leaves_bfcl_out():
    from skyrl_gym.envs.registration import registry

    register_envs()
    assert ENV in registry and not [i for i in registry if i.startswith("inftool/Bfcl")]


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``inftool synth`` writes for Bookshelf: tasks.jsonl beside a manifest whose paths are relative to it."""
    from inftool_env.synth import synthesize

    run = synthesize(ENV, n=2, categories=["simple"], seed=1)
    return run.write(tmp_path_factory.mktemp("synth-out") / "synth")


def _oracle_reward(row: dict[str, Any], env_class: str, tasks: Path) -> float:
    """A SkyRL trajectory of ``row``, made as SkyRL makes it (``env_class``, the row as extras), playing
    its task's own calls (from ``tasks``): a synthesized one-shot task, so it ends on that reply."""
    from inftool_env.tasks import load_tasks

    task = next(t for t in load_tasks(tasks) if t.id == row["task_id"])
    env = skyrl_gym.make(env_class, env_config=None, extras=row)
    try:
        prompt, info = env.init(row["prompt"])
        assert prompt == row["prompt"] and info["task_id"] == row["task_id"]
        out = env.step("\n".join(_call(c.name, **c.arguments) for c in task.ground_truth[0]))
        assert out["done"] and out["metadata"]["truncation_reason"] is None
        return float(out["reward"])
    finally:
        env.close()


@pytest.mark.parametrize("given", ["absolute", "relative"])
def test_rows_of_a_synthesized_manifest_play_after_register_envs(given, synth_manifest, tmp_path, monkeypatch):
    """The README's flow with ``inftool synth``'s manifest in place of an id: ``register_envs()`` then
    ``skyrl_gym.make(row["env_class"], extras=row)``. Rows name the generic class and the manifest's absolute
    path, so a worker in another directory plays them too."""
    if given == "relative":
        monkeypatch.chdir(synth_manifest.parent.parent)
        path = str(Path(synth_manifest.parent.name) / synth_manifest.name)
    else:
        path = str(synth_manifest)
    rows = dataset_rows(path)
    monkeypatch.chdir(tmp_path)  # the worker's directory is not the one the rows were made in
    register_envs()  # as the README says: no ids named
    tasks = synth_manifest.parent / "tasks.jsonl"
    assert [_oracle_reward(row, row["env_class"], tasks) for row in rows] == [1.0, 1.0]
    assert {(r["env_class"], r["env_id"]) for r in rows} == {("inftool", str(synth_manifest.resolve()))}
    # A manifest may be registered by name too, however written: its class runs its absolute path.
    monkeypatch.chdir(synth_manifest.parent.parent)
    register_envs([path])
    monkeypatch.chdir(tmp_path)
    assert _oracle_reward({k: v for k, v in rows[0].items() if k != "env_id"}, path, tasks) == 1.0


BFCL_TASK = {"id": "t", "turns": ["hi"], "provenance": {"source": "bfcl-eval 2026.3.23"}}
NOT_JSON = (
    r"the row's task must be a task as JSON \(as dataset_rows writes it\), but it is not JSON "
    r"\(Expecting property name .*\): '\{oops' \(str\)$"
)
OTHER_SERVERS = r"the row's task: task t names servers \['library'\] the env does not have; is it another env's task\?$"


@pytest.mark.parametrize(
    ("extras", "why"),
    [
        ({"seed": "abc"}, r"the row's seed must be an integer, 0 or more, not 'abc' \(str\)$"),
        ({"seed": 2.7}, r"the row's seed must be an integer, 0 or more, not 2.7 \(float\)$"),
        ({"seed": True}, r"the row's seed must be an integer, 0 or more, not True \(bool\)$"),
        ({"task": "{oops"}, NOT_JSON),
        ({"task": '["hi"]'}, r"the row's task must be a task \(a JSON object\), not \['hi'\] \(list\)$"),
        ({"task": '{"id": "t"}'}, r"the row's task is not a task: turns: Field required$"),
        ({"task": json.dumps(BFCL_TASK)}, r"the row's task: task t is BFCL's, and BFCL is for evaluation only$"),
        ({"task": BFCL_TASK}, r"the row's task: task t is BFCL's, and BFCL is for evaluation only$"),
        ({"task": {"id": "t", "turns": ["hi"], "servers": ["library"]}}, OTHER_SERVERS),
        ({"task_id": 5}, r"the row's task_id must be a string, not 5 \(int\)$"),
        ({"format": ["hermes"]}, r"the row's format must be a string, not \['hermes'\] \(list\)$"),
    ],
    ids=(
        "seed-text seed-float seed-bool task-not-json task-not-object task-invalid task-bfcl task-bfcl-dict "
        "task-other-servers task-id-number format-list"
    ).split(),
)
def test_a_hand_built_rows_wrong_field_is_refused_in_one_line(extras, why):
    """SkyRL hands the env its row as it is: each field is checked when the env is made, in one line naming the
    field, its value and what it must be; not a raw ValueError or JSONDecodeError, not a seed silently cut."""
    register_envs([ENV])
    with pytest.raises(InftoolError, match=f"^{ENV}: {why}"):
        skyrl_gym.make(ENV, extras={"task_id": TASK, **extras})


def test_a_datasets_integer_seed_is_taken():
    """A seed read from a dataset column may be numpy's integer: it is an integer, so it is taken."""
    import numpy as np

    register_envs([ENV])
    env = skyrl_gym.make(ENV, extras={"task_id": TASK, "seed": np.int64(3)})
    try:
        assert env.seed == 3 and type(env.seed) is int
    finally:
        env.close()
