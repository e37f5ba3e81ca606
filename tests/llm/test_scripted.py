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
