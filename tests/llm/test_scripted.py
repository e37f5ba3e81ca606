"""The scripted chat model (the fake at the LLM boundary): a bad script is refused, naming the reply."""

from __future__ import annotations

import json

import pytest

from inftool_env.errors import PolicyError
from inftool_env.llm import resolve_model
from inftool_env.llm.scripted import ScriptedChat

pytestmark = pytest.mark.anyio
SHAPE = "expected a string (the assistant's text) or an object (an assistant message: "


@pytest.mark.parametrize(
    "replies, message",
    [
        ([42, {"tool_calls": "add_note"}], "reply [0] is 42 (int); "),
        (["Hi.", ["Done."]], 'reply [1] is ["Done."] (list); '),
        (["Hi.", None], "reply [1] is null (NoneType); "),
    ],
)
def test_a_bad_reply_is_refused_when_the_script_is_read(tmp_path, replies, message):
    # It was found only at the turn that reached it: "PolicyError: TypeError: 'int' object is not iterable".
    script = tmp_path / "s.json"
    script.write_text(json.dumps(replies))
    with pytest.raises(PolicyError) as caught:
        resolve_model(f"scripted:{script}")
    assert str(caught.value).startswith(f"scripted:{script}: {message}{SHAPE}")


async def test_a_reply_function_that_returns_a_bad_reply_is_named_by_its_index():
    chat = ScriptedChat(["Hi.", lambda messages, tools: 7])
    await chat.complete([{"role": "user", "content": "a"}])
    with pytest.raises(PolicyError, match=r"^scripted: reply \[1\] is 7 \(int\); expected a string"):
        await chat.complete([{"role": "user", "content": "b"}])


CALL = {"tool_calls": [{"function": {"name": "listBooks", "arguments": {}}}]}


def shapes(path):
    """Per episode, in plan order, its assistant turns: C a call, T text."""
    rows = sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["rollout"]["index"])
    return ["".join("C" if m.get("tool_calls") else "T" for m in r["messages"] if m["role"] == "assistant")
            for r in rows]  # fmt: skip


def test_each_episode_replays_the_script_from_its_start_at_any_concurrency(tmp_path):
    # One counter on one model served every episode: --concurrency 8 gave ['CCCCT', 'T', 'T', …].
    from inftool_env.rollout import rollout

    script = tmp_path / "s.json"
    script.write_text(json.dumps([CALL, "All done."]))
    runs = {c: tmp_path / f"c{c}.jsonl" for c in (1, 8)}
    for concurrency, out in runs.items():
        rollout("inftool/Bookshelf-v0", f"scripted:{script}", n=12, out=out, concurrency=concurrency)
    one, eight = shapes(runs[1]), shapes(runs[8])
    assert one == eight
    assert all(s.startswith("CT") for s in one)  # every episode opens with the script's first reply


async def test_shared_keeps_one_sequence_across_episodes(tmp_path):
    from inftool_env.policies import resolve_policy
    from inftool_env.tasks import Task

    script = tmp_path / "s.json"
    script.write_text(json.dumps(["one", "two", "three"]))
    task = Task(id="t", turns=["hi"])
    observation = {"messages": [{"role": "user", "content": "hi"}], "tools": []}

    async def first_words(spec):
        factory = resolve_policy(spec)
        return [(await factory(task).act(observation))["content"] for _ in range(3)]

    assert await first_words(f"scripted:{script}") == ["one", "one", "one"]
    assert await first_words(f"scripted:{script}?shared=1") == ["one", "two", "three"]
    with pytest.raises(PolicyError, match="shared must be 1/true or 0/false, not 'yes'"):
        resolve_policy(f"scripted:{script}?shared=yes")
