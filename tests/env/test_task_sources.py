"""Tasks handed to reset(), pluggable task sources, and make() on a manifest path."""

from __future__ import annotations

from pathlib import Path

import pytest

from inftool_env.env.config import TaskSource
from inftool_env.errors import RegistrationError
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import make
from inftool_env.task_sources import load_task_source, register_task_source, task_source_prefixes
from inftool_env.tasks import Task, ToolCall

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


def _new_task() -> Task:
    call = ToolCall(name="addBook", arguments={"title": "Solaris", "author": "Stanislaw Lem"})
    return Task(id="handed-in", category="simple", turns=["Add 'Solaris' by Stanislaw Lem."], ground_truth=[[call]])


@pytest.mark.parametrize("as_dict", [False, True])
async def test_reset_takes_a_task_that_is_not_the_envs(as_dict):
    env = make("inftool/Bookshelf-v0")
    try:
        task = _new_task()
        obs, info = await env.reset(seed=0, options={"task": task.model_dump() if as_dict else task})
        assert info["task_id"] == "handed-in" and obs["messages"][-1]["content"] == task.turns[0]
        assert "handed-in" not in {t.id for t in env.tasks}
        policy = OraclePolicy(task)
        while True:
            result = await env.step(await policy.act(obs))
            obs = result.observation
            if result.terminated or result.truncated:
                break
        assert result.reward == 1.0
    finally:
        await env.close()


async def test_reset_rejects_a_malformed_task():
    env = make("inftool/Bookshelf-v0")
    try:
        with pytest.raises(RegistrationError, match="turns"):
            await env.reset(options={"task": {"id": "x", "turns": []}})
        with pytest.raises(RegistrationError, match="Task or a dict"):
            await env.reset(options={"task": 3})
    finally:
        await env.close()


async def test_make_accepts_a_manifest_path(tmp_path):
    manifest = tmp_path / "Mine-v0.toml"
    spec = REPO / "servers" / "bookshelf" / "openapi.yaml"
    (tmp_path / "tasks.jsonl").write_text(_new_task().model_dump_json() + "\n")
    manifest.write_text(
        f'id = "local/Mine-v0"\nservers = [{{ name = "b", spec = "{spec}" }}]\n[tasks]\nsource = "tasks.jsonl"\n'
    )
    for target in (manifest, str(manifest)):
        env = make(target)
        try:
            assert env.config.id == "local/Mine-v0" and [t.id for t in env.tasks] == ["handed-in"]
        finally:
            await env.close()
    with pytest.raises(RegistrationError, match="no manifest"):
        make(tmp_path / "Absent-v0.toml")


def test_a_task_naming_a_server_the_env_lacks_is_refused_at_load(tmp_path):
    # Found only as its episodes ran, and reported as broken infrastructure.
    spec = REPO / "servers" / "bookshelf" / "openapi.yaml"
    elsewhere = _new_task().model_copy(update={"id": "elsewhere", "servers": ["library"]})
    (tmp_path / "tasks.jsonl").write_text(_new_task().model_dump_json() + "\n" + elsewhere.model_dump_json() + "\n")
    manifest = tmp_path / "Mine-v0.toml"
    manifest.write_text(
        f'id = "local/Mine-v0"\nservers = [{{ name = "b", spec = "{spec}" }}]\n[tasks]\nsource = "tasks.jsonl"\n'
    )
    with pytest.raises(RegistrationError, match=r"^local/Mine-v0: task elsewhere names servers \['library'\] the env"):
        make(manifest)


def test_task_sources_are_pluggable(tmp_path):
    assert {"bfcl", "synth"} <= set(task_source_prefixes())
    register_task_source("fixed-test", lambda source, base, config: [_new_task()])
    assert [t.id for t in load_task_source(TaskSource(source="fixed-test:anything"), tmp_path)] == ["handed-in"]
    with pytest.raises(RegistrationError, match="already registered"):
        register_task_source("fixed-test", lambda source, base, config: [])
    with pytest.raises(RegistrationError, match="unknown task source"):
        load_task_source(TaskSource(source="nope:x"), tmp_path)


async def test_a_synthesized_task_source(tmp_path):
    spec = REPO / "servers" / "bookshelf" / "openapi.yaml"
    manifest = tmp_path / "Synth-v0.toml"
    manifest.write_text(f'id = "local/Synth-v0"\nservers = [{{ name = "bookshelf", spec = "{spec}" }}]\n'
                        '[tasks]\nsource = "synth:n=6&categories=simple,multi_step&seed=1"\n')  # fmt: skip
    env = make(manifest)
    try:
        assert len(env.tasks) == 6 and {t.category for t in env.tasks} == {"simple", "multi_step"}
    finally:
        await env.close()


def test_registry_and_builder_do_not_import_each_other():
    source = (REPO / "inftool_env" / "env" / "build.py").read_text()
    assert "registration" not in source


def test_a_task_file_with_a_misspelt_field_or_a_repeated_id_is_refused_by_line(tmp_path):
    # Silently dropped before: a misspelt ground truth made a task whose oracle "failed", and of two tasks
    # with one id the env only ever reached the second.
    import json

    from inftool_env.errors import SpecError
    from inftool_env.tasks import load_tasks

    good = _new_task().model_dump(exclude_defaults=True)
    typo = {**{k: v for k, v in good.items() if k != "ground_truth"}, "id": "typo", "ground_truht": []}
    call_typo = {**good, "id": "call-typo", "ground_truth": [[{"name": "addBook", "argument": {}}]]}
    for lines, message in (
        ([good, typo], r"line 2: .*ground_truht"),
        ([good, call_typo], r"line 2: .*argument"),
        ([good, {**good, "turns": ["Again."]}], r"line 2: task id 'handed-in' is also on line 1"),
    ):
        path = tmp_path / "tasks.jsonl"
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        with pytest.raises(SpecError, match=message):
            load_tasks(path)
