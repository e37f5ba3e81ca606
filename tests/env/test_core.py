from __future__ import annotations

import asyncio
import json
import re
import tomllib

import pytest

from inftool_env.env import EnvConfig, Limits, ServerConfig, TaskSource, ToolEnv, run_batch
from inftool_env.errors import InftoolError, NameNotFound, RegistrationError, VersionNotFound
from inftool_env.policies.oracle import OraclePolicy
from inftool_env.registration import Registry, make
from inftool_env.tasks import Task, ToolCall
from tests.conftest import BOOKSHELF, child_pids

pytestmark = pytest.mark.anyio


def bookshelf_env(tasks: list[Task], **limits: object) -> ToolEnv:
    from inftool_env import compile_spec

    config = EnvConfig(
        id="test/Shelf-v0",
        servers=[ServerConfig(name="shelf", spec=str(BOOKSHELF))],
        tasks=TaskSource(source="-"),
        limits=Limits(**limits),
    )
    return ToolEnv(config, tasks, {"shelf": compile_spec(BOOKSHELF)})


ADD = Task(
    id="add",
    turns=["Add a book, please — «Les Misérables»."],
    ground_truth=[[ToolCall(name="addBook", arguments={"title": "Les Misérables", "author": "Hugo"})]],
)


def call(name: str, **args: object) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": args}}]}


async def test_reset_and_step_shapes():
    env = bookshelf_env([ADD])
    obs, info = await env.reset(seed=0)
    assert info["task_id"] == "add" and obs["messages"] == [{"role": "user", "content": ADD.turns[0]}]
    assert {t["function"]["name"] for t in obs["tools"]} >= {"addBook", "getBook"}
    step = await env.step(call("addBook", title="Les Misérables", author="Hugo"))
    assert (step.reward, step.terminated, step.truncated) == (0.0, False, False)
    assert step.observation["messages"][-1]["role"] == "tool"
    assert json.loads(step.observation["messages"][-1]["content"])["title"] == "Les Misérables"
    assert step.info["calls"][0]["server"] == "shelf"
    done = await env.step("C'est fait.")
    assert done.terminated and done.reward == 1.0
    with pytest.raises(InftoolError, match="call reset"):
        await env.step("again")
    await env.close()
    await env.close()  # idempotent


async def trace(seed: int) -> list[str]:
    env = bookshelf_env([ADD, Task(id="list", turns=["What books do you have?"])])
    out = []
    for s in (seed, seed + 1):
        obs, _ = await env.reset(seed=s)
        out.append(json.dumps(obs))
        for action in (call("listBooks", limit=2), call("addBook", title="X", author="Y"), "ok"):
            step = await env.step(action)
            out.append(json.dumps(step.observation))
            if step.terminated:
                break
    await env.close()
    return out


async def test_same_seed_same_actions_same_observations_byte_for_byte():
    assert await trace(5) == await trace(5)
    assert await trace(5) != await trace(6)


async def test_consecutive_and_total_error_limits_are_separate_counters():
    task = Task(id="t", turns=["go"])
    env = bookshelf_env([task], max_consecutive_errors=3, max_total_errors=100)
    await env.reset(seed=0)
    for _ in range(2):
        assert not (await env.step(call("getBook", bookId="nope"))).truncated
    last = await env.step(call("getBook", bookId="nope"))
    assert last.truncated and last.info["truncation_reason"] == "max_consecutive_errors"

    env = bookshelf_env([task], max_consecutive_errors=3, max_total_errors=4)
    await env.reset(seed=0)
    for action in ("bad", "bad", "good", "bad"):  # errors interleaved with successes: never 3 in a row
        step = await env.step(call("getBook", bookId="nope") if action == "bad" else call("listBooks"))
        if step.truncated:
            break
    assert not step.truncated
    step = await env.step(call("getBook", bookId="nope"))
    assert step.truncated and step.info["truncation_reason"] == "max_total_errors"
    await env.close()


async def test_format_errors_and_unknown_tools_are_recorded_not_raised():
    env = bookshelf_env([ADD])
    await env.reset(seed=0)
    step = await env.step({"content": None, "tool_calls": [{"function": {"name": "addBook", "arguments": "{oops"}}]})
    assert step.info["parse_error"] and not step.truncated
    step = await env.step(call("fly", to="moon"))
    assert step.info["calls"][0]["error_kind"] == "unknown_tool"
    step = await env.step(call("addBook", title=3))
    assert step.info["calls"][0]["error_kind"] == "schema"
    done = await env.step("done")
    breakdown = done.info["reward_breakdown"]
    assert breakdown["gates"] == {"format": False, "schema": False, "execution": True}
    assert breakdown["reward"] == 0.0 and breakdown["components"]["state"] == 0.0  # logged though gated
    await env.close()


async def test_a_call_written_as_text_fails_the_format_gate_and_bfcls_verdict_stands():
    """A fenced JSON call makes no call, so relevance reads it as a decline; rewarded, a policy learnt to write
    its calls so (README, Measured). The gate refuses it; the verdict (``correct``) stays BFCL's."""
    from inftool_env.parsing.base import call_in_text

    task = Task(id="irr", category="irrelevance", turns=["What is the capital of Peru?"], one_shot=True)
    fenced = '```json\n{"name": "listBooks", "arguments": {}}\n```'
    for reply, reward in ((fenced, 0.0), ("I cannot look that up with these tools.", 1.0)):
        env = bookshelf_env([task])
        await env.reset(seed=0)
        breakdown = (await env.step({"role": "assistant", "content": reply})).info["reward_breakdown"]
        assert breakdown["reward"] == reward and breakdown["correct"] is True
        assert breakdown["gates"]["format"] == (reward == 1.0)
        assert any("writes a call as text" in n for n in breakdown["notes"]) == (reward == 0.0)
        await env.close()
    assert call_in_text('Sure: {"name": "f", "parameters": "{}"} done') and call_in_text(
        '{"name": "f", "arguments": {}}'
    )
    # GRPO then found the next form: XML inside the tags, which the local model's parser leaves as text.
    assert call_in_text("```xml\n<tool_call>\n  <name>addBook</name>\n  <arguments>…</arguments>\n</tool_call>\n```")
    assert not call_in_text('{"name": "Ann", "age": 3} and "arguments" aside') and not call_in_text("{" * 10_000)


async def test_the_manifest_chooses_the_gates():
    from inftool_env.env.config import RewardConfig

    env = bookshelf_env([ADD])
    strict_config = env.config.model_copy(update={"reward": RewardConfig(gates=("format", "schema", "execution"))})
    lenient_config = env.config.model_copy(update={"reward": RewardConfig(gates=("execution",))})
    for config, expected in ((strict_config, 0.0), (lenient_config, 1.0)):
        gated = ToolEnv(config, [ADD], env.servers)
        await gated.reset(seed=0)
        await gated.step(call("addBook", title=7))  # a schema failure
        await gated.step(call("addBook", title="Les Misérables", author="Hugo"))
        done = await gated.step("done")
        assert done.info["reward_breakdown"]["gates"]["schema"] is False
        assert done.reward == expected, config.reward.gates
        await gated.close()
    with pytest.raises(ValueError, match="Input should be 'format', 'schema' or 'execution'"):
        RewardConfig(gates=("vibes",))


async def test_max_turns_truncates():
    env = bookshelf_env([Task(id="t", turns=["a", "b", "c", "d"])], max_turns=2)
    await env.reset(seed=0)
    assert not (await env.step("one")).truncated
    step = await env.step("two")
    assert step.truncated and not step.terminated and step.info["truncation_reason"] == "max_turns"
    await env.close()


async def test_a_dead_server_truncates_with_the_error_recorded():
    env = bookshelf_env([ADD])
    await env.reset(seed=0)

    async def broken(*_: object, **__: object) -> None:
        from inftool_env.errors import ServerError

        raise ServerError("server died")

    env._episode.clients["shelf"].call = broken  # the connection breaks mid-episode
    step = await env.step(call("listBooks"))
    assert step.truncated and step.info["truncation_reason"] == "server_error"
    assert step.info["trajectory"].error == "ServerError: server died"
    await env.close()


async def test_256_concurrent_episodes_see_only_their_own_writes():
    tasks = [
        Task(id=f"t{i}", turns=[f"add book {i}"],
             ground_truth=[[ToolCall(name="addBook", arguments={"title": f"unique-{i}", "author": "concurrency"})]])
        for i in range(256)
    ]  # fmt: skip
    env = bookshelf_env(tasks)

    class Checker(OraclePolicy):
        async def act(self, observation):
            action = await super().act(observation)
            if not action.get("tool_calls"):  # after its own write: list what this episode can see
                return call("listBooks", author="concurrency", limit=50)
            return action

    class Finish(Checker):
        seen = None

        async def act(self, observation):
            last = observation["messages"][-1]
            if last["role"] == "tool" and "unique-" in last["content"] and last["content"].startswith("["):
                titles = [b["title"] for b in json.loads(last["content"])]
                assert titles == [f"unique-{self.task.id[1:]}"], titles
                return {"role": "assistant", "content": "checked"}
            return await super().act(observation)

    trajectories = await run_batch(env, Finish, episodes=[(i, f"t{i}") for i in range(256)], concurrency=256)
    assert all(t.error is None and t.terminated for t in trajectories), [t.error for t in trajectories if t.error][:3]
    assert [t.task_id for t in trajectories] == [f"t{i}" for i in range(256)]
    await env.close()


async def test_one_broken_policy_does_not_cancel_its_siblings():
    env = bookshelf_env([ADD])

    class Flaky(OraclePolicy):
        async def act(self, observation):
            if observation["messages"][0]["content"] and self.task.id == "add" and Flaky.count == 1:
                Flaky.count += 1
                raise RuntimeError("endpoint down")
            Flaky.count += 1
            return await super().act(observation)

    Flaky.count = 0
    results = await run_batch(env, Flaky, episodes=[(i, None) for i in range(4)], concurrency=2)
    assert sum(t.error is not None for t in results) == 1
    assert sum(t.reward is not None and t.reward.reward == 1.0 for t in results) == 3


async def test_close_leaves_no_task_or_subprocess_behind():
    tasks_before, children_before = set(asyncio.all_tasks()), child_pids()
    env = make("inftool/Bookshelf-v0", transport="stdio")
    await env.reset(seed=0)
    await env.step(call("listBooks"))
    assert child_pids() - children_before  # the stdio server is a real subprocess
    await env.close()
    assert set(asyncio.all_tasks()) - tasks_before == set()
    for _ in range(100):
        if not child_pids() - children_before:
            break
        await asyncio.sleep(0.05)
    assert child_pids() - children_before == set()


async def test_raw_text_actions_in_the_hermes_format():
    env = make("inftool/Bookshelf-v0", format="hermes")
    obs, _ = await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    assert obs["messages"][0]["role"] == "system" and "<tools>" in obs["messages"][0]["content"]
    text = 'Sure.\n<tool_call>\n{"name": "removeBook", "arguments": {"bookId": "boo_1"}}\n</tool_call>'
    step = await env.step(text)
    assert step.info["calls"][0]["name"] == "removeBook" and not step.info["calls"][0]["is_error"]
    assert step.observation["messages"][-2]["tool_calls"][0]["function"]["name"] == "removeBook"
    bad = await env.step("<tool_call>{broken</tool_call>")
    assert bad.info["parse_error"].startswith("<tool_call> 0: invalid JSON")
    done = await env.step("Removed.")
    assert done.terminated and done.info["reward_breakdown"]["gates"]["format"] is False
    await env.close()


def assert_answers_pair(messages: list[dict]) -> None:
    """Each tool message answers, by id, a call of the assistant message before it (one without an id
    answers a turn that made no readable call), every call is answered, and ids are unique in the episode;
    no assistant turn follows another unanswered."""
    roles = [m["role"] for m in messages]
    assert ["assistant", "assistant"] not in [roles[i : i + 2] for i in range(len(roles) - 1)], roles
    seen: list[str] = []
    asked: list[str] = []
    answered: list[str] = []
    for m in [*messages, {"role": "end"}]:
        if m["role"] != "tool":
            assert answered == asked, (asked, answered)  # the previous assistant turn's calls, all answered
            asked, answered = [], []
        if m["role"] == "assistant":
            asked = [c["id"] for c in m.get("tool_calls") or []]
            seen += asked
        elif m["role"] == "tool" and asked:
            answered.append(m["tool_call_id"])
        elif m["role"] == "tool":
            assert "tool_call_id" not in m
    assert len(seen) == len(set(seen)), seen


async def test_calls_without_ids_pair_with_their_results():
    """The README's action has no call ids: the assistant message said call_0 and its result answered call_0_0."""
    env = make("inftool/Bookshelf-v0")
    await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    two = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "removeBook", "arguments": {"bookId": "boo_1"}}},
        {"function": {"name": "listBooks", "arguments": {}}},
    ]}  # fmt: skip
    await env.step(two)
    step = await env.step(call("listBooks", limit=1))
    messages = step.observation["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert_answers_pair(messages)
    given = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "mine", "function": {"name": "listBooks", "arguments": {}}},
        {"function": {"name": "listBooks", "arguments": {}}},
    ]}  # fmt: skip
    step = await env.step(given)  # the model's own id is kept
    assert [c["id"] for c in step.observation["messages"][-3]["tool_calls"]][0] == "mine"
    assert_answers_pair(step.observation["messages"])
    await env.close()


async def test_hermes_text_calls_pair_with_their_results_and_appear_once():
    # Qwen2.5's template renders both content and tool_calls: the call was in each, so shown twice.
    env = make("inftool/Bookshelf-v0", format="hermes")
    await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    one = '{"name": "removeBook", "arguments": {"bookId": "boo_1"}}'
    step = await env.step(f"Sure.\n<tool_call>\n{one}\n</tool_call>\n<tool_call>\n{one}\n</tool_call>")
    assert_answers_pair(step.observation["messages"])
    assistant = step.observation["messages"][-3]
    assert assistant["content"] == "Sure." and len(assistant["tool_calls"]) == 2
    done = await env.step("Removed.")
    assert done.terminated and done.info["reward_breakdown"]["gates"]["format"] is True
    await env.close()


async def test_a_malformed_call_is_answered_and_still_fails_the_format_gate():
    """Arguments that are not JSON: the call vanished from the history and nothing said why, so the model saw
    only empty assistant turns in a row until max_consecutive_errors."""
    env = make("inftool/Bookshelf-v0")
    await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    for k in range(2):
        bad = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{k}", "type": "function", "function": {"name": "removeBook", "arguments": "{not: json"}},
            {"type": "function", "function": {"name": "listBooks", "arguments": "{}"}},
        ]}  # fmt: skip
        step = await env.step(bad)
        assert step.info["parse_error"].startswith("tool_calls[0]: arguments are not valid JSON")
        assert step.info["calls"] == [] and not step.truncated  # nothing was run
    messages = step.observation["messages"]
    assert_answers_pair(messages)
    made, answer, sibling = messages[-3:]
    assert made["tool_calls"][0]["function"] == {"name": "removeBook", "arguments": "{not: json"}  # as sent
    assert answer["tool_call_id"] == "c1" and "arguments are not valid JSON" in answer["content"]
    assert sibling["content"].startswith("Not run: tool_calls[0]: arguments are not valid JSON")
    await env.step(call("removeBook", bookId="boo_1"))
    done = await env.step("Removed.")
    assert done.terminated and done.info["reward_breakdown"]["gates"]["format"] is False
    assert done.reward == 0.0 and done.info["reward_breakdown"]["components"]["state"] == 1.0
    await env.close()


async def test_a_text_turn_that_does_not_parse_is_answered_and_still_fails_the_format_gate():
    env = make("inftool/Bookshelf-v0", format="hermes")  # no call could be read, so none to answer by id
    await env.reset(seed=0, options={"task_id": "bookshelf-remove"})
    for _ in range(2):
        step = await env.step("<tool_call>{broken</tool_call>")
    assert_answers_pair(step.observation["messages"])
    assert step.observation["messages"][-1]["content"].startswith("Malformed tool call: <tool_call> 0: invalid JSON")
    await env.step('<tool_call>{"name": "removeBook", "arguments": {"bookId": "boo_1"}}</tool_call>')
    done = await env.step("Removed.")
    assert done.terminated and done.info["reward_breakdown"]["gates"]["format"] is False
    await env.close()


async def test_reset_refuses_unknown_options_and_both_task_and_task_id():
    env = bookshelf_env([ADD])
    await env.reset(seed=0, options={"task_id": "add"})
    refused = {
        "bogus": ({"bogus": 1}, r"^test/Shelf-v0: unknown reset option 'bogus'; known: task, task_id$"),
        "both": ({"task_id": "add", "task": {"id": "other", "turns": ["hi"]}},
                 r"^test/Shelf-v0: reset\(options=...\) takes 'task' or 'task_id', not both$"),
    }  # fmt: skip
    for options, message in refused.values():
        with pytest.raises(RegistrationError, match=message):
            await env.reset(seed=0, options=options)
    assert env.task is not None and env.task.id == "add"  # the running episode was not let go
    obs, info = await env.reset(seed=0, options={"task": {"id": "other", "turns": ["hi"]}})
    assert info["task_id"] == "other"
    await env.close()


async def test_a_message_of_another_role_is_refused_and_the_episode_goes_on():
    env = bookshelf_env([ADD])
    obs, _ = await env.reset(seed=0)
    for role in ("user", "tool", "system"):
        refused = rf"^step\(\) takes the assistant's turn; this message's role is '{role}'$"
        with pytest.raises(InftoolError, match=refused):
            await env.step({"role": role, "content": "Add it."})
    assert env.trajectory is not None and env.trajectory.messages == obs["messages"]  # nothing taken as a turn
    step = await env.step(call("addBook", title="Les Misérables", author="Hugo"))
    assert step.info["calls"][0]["error_kind"] is None
    await env.close()


async def test_stdio_and_http_transports_run_the_same_episode():
    texts = []
    for transport in ("inprocess", "stdio", "http"):
        env = make("inftool/Bookshelf-v0", transport=transport)
        await env.reset(seed=3, options={"task_id": "bookshelf-add"})
        step = await env.step(call("listBooks", limit=1))
        texts.append(step.observation["messages"][-1]["content"])
        await env.close()
    assert texts[0] == texts[1] == texts[2]


def test_make_validates_its_overrides_as_a_manifest_is():
    # model_copy took max_turns=3 (ignored: a field of limits), transport="carrier-pigeon", and raised
    # AttributeError on limits={...}.
    shorter = make("inftool/Bookshelf-v0", limits={"max_turns": 3})
    assert shorter.config.limits.max_turns == 3
    assert shorter.config.limits.call_timeout_s == make("inftool/Bookshelf-v0").config.limits.call_timeout_s
    refused = {
        "max_turns": (3, r"override max_turns: a field of limits; pass limits=\{'max_turns': ...\}"),
        "transport": ("carrier-pigeon", r"override transport: Input should be 'inprocess', 'stdio' or 'http'"),
        "limits": ({"max_turnz": 3}, r"override limits.max_turnz: Extra inputs are not permitted"),
        "colour": ("red", r"override colour: Extra inputs are not permitted"),
    }
    for field, (value, message) in refused.items():
        with pytest.raises(RegistrationError, match=f"^inftool/Bookshelf-v0: {message}$"):
            make("inftool/Bookshelf-v0", **{field: value})


def test_registry_errors_suggest_names(tmp_path):
    registry = Registry()
    (tmp_path / "a.toml").write_text(
        'id = "ns/Shelf-v1"\nservers = [{name = "s", spec = "x.yaml"}]\n[tasks]\nsource = "t.jsonl"\n'
    )
    registry.register_dir(tmp_path)
    with pytest.raises(NameNotFound, match="Did you mean ns/Shelf-v1"):
        registry.entry("ns/Shelv-v1")
    with pytest.raises(VersionNotFound, match="registered: ns/Shelf-v1"):
        registry.entry("ns/Shelf-v2")
    with pytest.raises(RegistrationError, match=r"already registered \(by .*a.toml, then by .*a.toml\)"):
        registry.register_dir(tmp_path)
    # Names are compared within the namespace: every id sharing "ns/" made unrelated ones look close.
    (tmp_path / "c.toml").write_text(
        'id = "ns/Catalogue-v1"\nservers = [{name = "s", spec = "x.yaml"}]\n[tasks]\nsource = "t.jsonl"\n'
    )
    wider = Registry()
    wider.register_dir(tmp_path)
    with pytest.raises(NameNotFound, match=r"no environment 'ns/Weather-v1'\. \(`inftool list`"):
        wider.entry("ns/Weather-v1")
    with pytest.raises(NameNotFound, match="Did you mean ns/Catalogue-v1"):
        wider.entry("ns/Catalog-v1")
    (tmp_path / "b.toml").write_text('id = "ns/Bad-v0"\nservers = []\n[tasks]\nsource = "t.jsonl"\n')
    with pytest.raises(RegistrationError, match=r"b.toml: servers: List should have at least 1 item"):
        Registry().register_dir(tmp_path)


def test_two_servers_of_one_name_are_refused_at_load(tmp_path):
    # The env keeps its servers by name: the second replaced the first, and `inftool check` passed.
    (tmp_path / "d.toml").write_text('id = "ns/Dup-v0"\nservers = [{name = "s", spec = "a.yaml"}, '
                                     '{name = "s", spec = "b.yaml"}]\n[tasks]\nsource = "t.jsonl"\n')  # fmt: skip
    with pytest.raises(RegistrationError, match=r"d.toml: servers: duplicate server name 's' \(servers.0.name and "
                                                r"servers.1.name\)$"):  # fmt: skip
        Registry().register_dir(tmp_path)
    with pytest.raises(ValueError, match=r"servers\n  duplicate server name 's'"):
        EnvConfig(id="ns/Dup-v0", servers=[ServerConfig(name="s", spec="a.yaml")] * 2, tasks=TaskSource(source="-"))


READ = Task(
    id="read",
    turns=["What is book 1?"],
    initial_state={"shelf": {"collections": {"/books": {"1": {"id": 1, "title": "Emma", "author": "Austen"}}}}},
    ground_truth=[[ToolCall(name="getBook", arguments={"bookId": 1})]],
)


async def test_a_read_only_task_is_not_won_by_calling_nothing():
    env = bookshelf_env([READ])
    await env.reset(seed=0)
    done = await env.step("It is a book.")  # state unchanged, as the ground truth leaves it
    breakdown = done.info["reward_breakdown"]
    assert breakdown["components"]["state"] == 1.0 and breakdown["components"]["response"] == 0.0
    assert done.reward == 0.0 and breakdown["correct"] is False
    assert breakdown["error_type"] == "multi_turn:empty_turn_model_response"
    await env.close()


async def test_an_episode_making_the_ground_truths_calls_is_scored_without_a_replay(replayed):
    env = bookshelf_env([ADD, READ])
    right, wrong = {"title": "Les Misérables", "author": "Hugo"}, {"title": "Les Misérables", "author": "V. Hugo"}
    for task, arguments, reward, replays in (
        ("add", right, 1.0, []),
        ("add", wrong, 0.0, ["addBook", "addBook"]),  # both sides
        ("read", {"bookId": 1}, 0.0, ["getBook"]),  # the truth's own call, refused live: replayed once
    ):
        del replayed[:]
        await env.reset(seed=0, options={"task_id": task})
        name = next(c.name for c in env.task.ground_truth[0])
        await env.step(call(name, **arguments))
        done = await env.step("Done.")
        assert done.reward == reward and replayed == replays, (task, arguments)
    await env.close()


async def test_weights_in_the_manifest_give_partial_credit():
    from inftool_env.env.config import RewardConfig

    env = bookshelf_env([READ])
    for reward, expected in ((RewardConfig(), 0.0), (RewardConfig(weights={"state": 1, "response": 3}), 0.25),
                             (RewardConfig(basis=("state",)), 1.0)):  # fmt: skip
        config = env.config.model_copy(update={"reward": reward})
        weighted = ToolEnv(config, [READ], env.servers)
        await weighted.reset(seed=0)
        done = await weighted.step("It is a book.")
        assert done.reward == expected, reward
        await weighted.close()
    with pytest.raises(ValueError, match="Input should be 'ast', 'calls', 'relevance', 'state' or 'response'"):
        RewardConfig(weights={"vibes": 1.0})


async def test_withheld_tools_are_offered_from_their_turn_and_one_shot_tasks_end_at_once():
    later = Task(id="later", turns=["First.", "Now add one."], tools_added={1: ["addBook"]},
                 ground_truth=[[], [ToolCall(name="addBook", arguments={"title": "T", "author": "A"})]])  # fmt: skip
    env = bookshelf_env([later])
    obs, _ = await env.reset(seed=0)
    assert "addBook" not in {t["function"]["name"] for t in obs["tools"]}
    step = await env.step(call("addBook", title="T", author="A"))
    assert step.info["calls"][0]["error_kind"] == "unknown_tool"
    step = await env.step("ok")
    assert "addBook" in {t["function"]["name"] for t in step.observation["tools"]}
    await env.close()

    once = bookshelf_env([ADD.model_copy(update={"one_shot": True})])
    await once.reset(seed=0)
    done = await once.step(call("getBook", bookId=1))
    assert done.terminated and len(done.info["trajectory"].turns) == 1
    await once.close()


def _plugin(monkeypatch, load) -> None:
    """One installed plugin (entry point 'mine' of package my-tools) whose entry loads ``load()``; a fresh default
    registry."""
    from types import SimpleNamespace

    from inftool_env import registration

    ep = SimpleNamespace(name="mine", value="my_tools:MANIFESTS", dist=SimpleNamespace(name="my-tools"), load=load)
    monkeypatch.setattr(registration.metadata, "entry_points", lambda group: [ep])
    monkeypatch.setattr(registration, "_DEFAULT", None)


PLUGIN = "entry point 'mine' = my_tools:MANIFESTS (package my-tools)"


def _manifest(env_id: str, servers: str = f'[{{name = "shelf", spec = "{BOOKSHELF.as_posix()}"}}]') -> str:
    return f'id = "{env_id}"\ndescription = "d"\nservers = {servers}\n[tasks]\nsource = "tasks.jsonl"\n'


async def test_a_bad_plugin_manifest_leaves_the_good_envs_and_is_named_with_its_reason(monkeypatch, tmp_path, capsys):
    # One broken file in one plugin made every registry command fail, `inftool list` and making any env included.
    from inftool_env import registration
    from inftool_env.cli import main

    (tmp_path / "tasks.jsonl").write_text(ADD.model_dump_json() + "\n")
    (tmp_path / "Good-v0.toml").write_text(_manifest("mine/Good-v0"))
    (tmp_path / "Broken-v0.toml").write_text('id = "mine/Broken-v0"\nservers = [\n')  # not TOML
    (tmp_path / "Empty-v0.toml").write_text(_manifest("mine/Empty-v0", servers="[]"))  # fails validation
    (tmp_path / "Bookshelf-v0.toml").write_text(_manifest("inftool/Bookshelf-v0"))  # an id registry/ has
    _plugin(monkeypatch, lambda: tmp_path)

    registry = registration.default_registry()
    assert "mine/Good-v0" in registry.ids() and "inftool/Bookshelf-v0" in registry.ids()
    assert not {"mine/Broken-v0", "mine/Empty-v0"} & set(registry.ids())
    env = registration.make("mine/Good-v0")
    await env.reset(seed=0)
    await env.close()
    assert registry.entry("inftool/Bookshelf-v0").base_dir.name == "registry"  # the first one stays

    where = f"(from {PLUGIN}): "
    dup, broken, empty = map(str, registry.problems)
    assert dup == (
        f"{tmp_path / 'Bookshelf-v0.toml'} {where}inftool/Bookshelf-v0 is already registered (by "
        f"{registration.MANIFEST_DIR / 'Bookshelf-v0.toml'}, then by {tmp_path / 'Bookshelf-v0.toml'})"
    )
    assert broken.startswith(f"{tmp_path / 'Broken-v0.toml'} {where}cannot read manifest: Invalid ")
    assert (
        empty
        == f"{tmp_path / 'Empty-v0.toml'} {where}servers: List should have at least 1 item after validation, not 0"
    )

    # Asking for a broken one raises its own error, not "no environment" (by its id, or by its file name).
    for env_id, reason in (("mine/Empty-v0", "Empty-v0.toml .*: servers: List should have at least 1 item"),
                           ("mine/Broken-v0", "Broken-v0.toml .*: cannot read manifest: Invalid"),
                           ("other/Broken-v0", "Broken-v0.toml .*: cannot read manifest: Invalid")):  # fmt: skip
        with pytest.raises(RegistrationError, match=f"^{env_id} could not be loaded: .*{reason}") as caught:
            registration.make(env_id)
        assert not isinstance(caught.value, NameNotFound)
    # An id that is nowhere says which manifests could not be loaded: it may be in one under another name.
    with pytest.raises(NameNotFound, match=r"no environment 'mine/Else-v0'.*Could not load .*Broken-v0.toml"):
        registry.entry("mine/Else-v0")
    with pytest.raises(VersionNotFound, match=r"registered: mine/Good-v0\. Could not load .*Empty-v0.toml"):
        registry.entry("mine/Good-v1")

    # `inftool list`: exactly the envs that loaded, then each manifest that did not, one line, path and reason.
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == registry.ids()
    assert err.splitlines() == ["could not load:", *(f"  {p}" for p in registry.problems)]
    assert "Traceback" not in err

    # Explicit calls still raise at once: a folder the user names, a manifest path.
    with pytest.raises(RegistrationError, match=r"inftool/Bookshelf-v0 is already registered"):
        registry.register_dir(tmp_path)  # the default registry too, once built
    with pytest.raises(RegistrationError, match=r"Broken-v0.toml: cannot read manifest"):
        Registry().register_dir(tmp_path)
    with pytest.raises(RegistrationError, match=r"Empty-v0.toml: servers: List should have at least 1 item"):
        registry.resolve(tmp_path / "Empty-v0.toml")
    with pytest.raises(RegistrationError, match=r"nowhere: not a folder of manifests"):
        Registry().register_dir(tmp_path / "nowhere")


def test_a_plugin_that_cannot_be_loaded_is_named_and_the_rest_still_load(monkeypatch, tmp_path, capsys):
    # Every command builds the default registry: a broken plugin must not stop it, and must say which package to fix.
    from inftool_env import registration
    from inftool_env.cli import main

    def broken_load() -> None:
        raise ImportError("No module named 'my_tools'\n(more)")

    def half_done(registry: Registry) -> None:
        registry.register(EnvConfig.model_validate(tomllib.loads(_manifest("mine/Early-v0"))), tmp_path)
        raise RuntimeError("bug in my_tools")

    plugins = {
        broken_load: ("cannot be loaded: ImportError: No module named 'my_tools' (more)", []),
        lambda: half_done: ("cannot be loaded: RuntimeError: bug in my_tools", ["mine/Early-v0"]),
        lambda: tmp_path / "gone": (f"{tmp_path / 'gone'}: not a folder of manifests", []),
    }
    for load, (reason, loaded) in plugins.items():
        _plugin(monkeypatch, load)
        registry = registration.default_registry()
        assert "inftool/Bookshelf-v0" in registry.ids()
        assert [i for i in registry.ids() if i.startswith("mine/")] == loaded
        assert [str(p) for p in registry.problems] == [f"{PLUGIN}: {reason}"]
        with pytest.raises(NameNotFound, match=rf"Could not load \(`inftool list` says why\): {re.escape(PLUGIN)}$"):
            registry.entry("mine/Tools-v0")
        assert main(["list"]) == 0
        assert capsys.readouterr().err == f"could not load:\n  {PLUGIN}: {reason}\n"


async def test_a_manifest_spec_path_names_an_environment_variable(monkeypatch, tmp_path):
    # A corpus kept elsewhere (CI's clone, an installed wheel) was reachable only by a path relative to the manifest.
    (tmp_path / "tasks.jsonl").write_text(ADD.model_dump_json() + "\n")
    shelf = '[{name = "shelf", spec = "${SHELF_DIR:-../servers/bookshelf}/openapi.yaml"}]'
    (tmp_path / "Shelf-v0.toml").write_text(_manifest("vars/Shelf-v0", servers=shelf))
    (tmp_path / "Bare-v0.toml").write_text(
        _manifest("vars/Bare-v0", servers=shelf.replace(":-../servers/bookshelf", ""))
    )
    registry = Registry()
    registry.register_dir(tmp_path)
    monkeypatch.setenv("SHELF_DIR", str(BOOKSHELF.parent))
    for env_id in ("vars/Shelf-v0", "vars/Bare-v0"):
        env = registry.make(env_id)
        assert env.config.servers[0].spec == str(BOOKSHELF)
        await env.close()
    monkeypatch.delenv("SHELF_DIR")
    with pytest.raises(InftoolError, match=r"/servers/bookshelf/openapi\.yaml: cannot read spec"):
        registry.make("vars/Shelf-v0")  # the default, relative to the manifest: tmp_path has no servers/
    unset = r"^vars/Bare-v0: server 'shelf': its spec '\$\{SHELF_DIR\}/openapi\.yaml' names \$\{SHELF_DIR\}, which is"
    unset += r" not set"
    with pytest.raises(RegistrationError, match=unset + r" \(set it, or give a default: \$\{SHELF_DIR:-PATH\}\)$"):
        registry.make("vars/Bare-v0")
