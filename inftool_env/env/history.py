"""How one assistant turn enters the episode's messages (the observation, and the trajectory's training data).

- Every call has one id, used by the assistant message's ``tool_calls`` and by the tool message that
  answers it: the model's own, else ``call_<step>_<i>`` (unique within the episode). A tool message's
  ``tool_call_id`` is always among the ids of the assistant message before it, as the OpenAI API and chat
  templates that pair calls with results require.
- A turn in a text format (Hermes, Llama 3, Mistral, BFCL) that made calls keeps them once: in
  ``tool_calls``, with ``content`` the text outside the call syntax (what the format's parser read around
  them; ``LocalChat`` builds a native-mode message the same way). A chat template renders ``tool_calls``
  back in its own syntax, so raw ``<tool_call>`` text left in ``content`` too showed Qwen2.5 every call
  twice when the history was sent again. A turn without calls (or whose calls could not be read) keeps its
  text as written.
- A turn that could not be parsed (a format error, which fails the format gate) is answered, so the model
  can correct itself and no run of bare assistant turns builds up. A message action's calls are kept as
  made (arguments as the string sent) and each is answered by id: the unreadable one with why, the others
  with why they were not run (a turn with a malformed call runs none). Where no call can be shown as made
  (text that does not parse, ``tool_calls`` that is not a list of calls), one tool message without an id
  says why: there is no call to pair it with, and text models' templates render it as a tool response.
- A turn whose calls end the episode part-way (``max_tool_calls``, a hung server, too many errors) answers
  each call it did not run, by id, with why, so the saved trajectory pairs every call with a tool message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inftool_env.parsing import ParseResult
from inftool_env.parsing.base import call_from_json
from inftool_env.trajectory import scrub


@dataclass(frozen=True)
class MadeCall:
    """A call of a message action whose turn did not parse, as the model made it."""

    id: str
    name: str
    arguments: str  # as sent (a string), or the JSON of what was sent
    error: str | None  # why this call could not be read; None: it could, another one could not


def call_ids(given: Sequence[str | None], step: int) -> list[str]:
    """One id per call: the model's own, else ``call_<step>_<i>`` (unless the model used that one)."""
    taken = {i for i in given if i}
    ids = []
    for i, call_id in enumerate(given):
        if not call_id:
            call_id = f"call_{step}_{i}"
            while call_id in taken:
                call_id += "_"
            taken.add(call_id)
        ids.append(call_id)
    return ids


def calls_as_made(action: dict[str, Any], step: int) -> tuple[list[MadeCall], int] | None:
    """The message's calls as made, and how many lone surrogates were replaced in them; None where
    one cannot be shown as a call (``tool_calls`` not a list, an entry without a string name, arguments
    JSON cannot write)."""
    raw = action.get("tool_calls")
    if not isinstance(raw, list) or not raw:
        return None
    given, names, sent, why = [], [], [], []
    for i, item in enumerate(raw):
        fn = item.get("function", item) if isinstance(item, dict) else item
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return None
        arguments = fn.get("arguments", fn.get("parameters", {}))
        if not isinstance(arguments, str):
            try:
                arguments = json.dumps(arguments, ensure_ascii=False)
            except (TypeError, ValueError, RecursionError):
                return None
        read = call_from_json(fn, f"tool_calls[{i}]")
        call_id = item.get("id") if isinstance(item, dict) else None
        given.append(call_id if isinstance(call_id, str) else None)
        names.append(fn["name"])
        sent.append(arguments)
        why.append(read if isinstance(read, str) else None)
    (ids, names, sent, why), replaced = scrub([call_ids(given, step), names, sent, why])
    return [MadeCall(*call) for call in zip(ids, names, sent, why, strict=True)], replaced


def assistant_message(
    parsed: ParseResult, text: str, ids: Sequence[str], made: Sequence[MadeCall] | None = None
) -> dict[str, Any]:
    """The turn's assistant message: its calls (``ids``, one each), or ``made`` for a turn that did not parse."""
    if parsed.calls:
        calls = [(call_id, c.name, json.dumps(c.arguments, ensure_ascii=False))
                 for call_id, c in zip(ids, parsed.calls, strict=True)]  # fmt: skip
        content = parsed.content  # the calls are in tool_calls, once
    else:
        calls = [(c.id, c.name, c.arguments) for c in made or ()]
        content = text
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls
        ]
    return message


def malformed_answers(error: str, made: Sequence[MadeCall] | None) -> list[dict[str, Any]]:
    """The tool messages answering a turn that did not parse: each call made, by id, or the turn."""
    if not made:
        return [{"role": "tool", "content": f"Malformed tool call: {error}. No call of this turn was run."}]
    first = next((c.error for c in made if c.error), error)
    return [
        {"role": "tool", "tool_call_id": c.id, "name": c.name,
         "content": f"Malformed tool call: {c.error}. It was not run." if c.error
         else f"Not run: {first}; no call of this turn was run."}
        for c in made
    ]  # fmt: skip


def unrun_answers(names: Sequence[str], ids: Sequence[str], reason: str) -> list[dict[str, Any]]:
    """The tool messages answering a turn's calls left unrun because the episode ended (``reason``) first."""
    return [
        {"role": "tool", "tool_call_id": call_id, "name": name,
         "content": f"{name} was not run: the episode ended ({reason}) before it."}
        for name, call_id in zip(names, ids, strict=True)
    ]  # fmt: skip
