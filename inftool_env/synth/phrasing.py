"""User requests written from an operation's own summary and its parameters' descriptions.

The action comes from the summary (or the description's first sentence), turned into the imperative;
each argument is said through its description (or its name in words) with its value verbatim, in one
of several phrasings; openers and joins vary. The tool's identifier never appears: a request that
names the function would teach copying, not understanding (``leaks`` checks it).
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from inftool_env.spec.ir import ToolSpec
from inftool_env.synth.values import words_of

_OPENERS = ["{a}.", "Please {a}.", "Could you {a}?", "I need you to {a}.", "Can you {a} for me?", "I'd like to {a}.",
            "Help me {a}.", "Go ahead and {a}.", "{A}, please."]  # fmt: skip
_ARG_FORMS = ["{label} {value}", "{label}: {value}", "{label} set to {value}", "{value} as the {label}",
              "the {label} being {value}"]  # fmt: skip
_VERB_FIX = {"is": "check whether it is", "are": "check whether they are", "has": "check whether it has"}
_SENTENCE = re.compile(r"(?<=[.!?])\s")


def action(tool: ToolSpec) -> str:
    """The operation as an imperative clause: "Returns the books of a member." -> "return the books of a member"."""
    text = _summary(tool.description) or " ".join(words_of(tool.original_name or tool.name))
    text = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)|<[^>]+>", "", text).strip().rstrip(".:;")
    words = text.split()
    if not words:
        return "do it"
    head = words[0]
    lower = head.lower()
    if lower in _VERB_FIX:
        words[0] = _VERB_FIX[lower]
    elif lower.endswith(("ches", "shes", "sses", "xes", "zes")):
        words[0] = lower[:-2]
    elif lower.endswith("ies") and len(lower) > 4:
        words[0] = lower[:-3] + "y"
    elif lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and head[0].isupper():
        words[0] = lower[:-1]
    elif head[0].isupper() and not head.isupper():
        words[0] = lower
    if words[0].lower() in _NOT_A_VERB:
        words.insert(0, "take care of")
        words[1] = words[1].lower()
    clause = " ".join(words)
    clause = re.sub(r"\b(this (endpoint|operation|method|function|api)|the api)\b", "", clause, flags=re.I)
    return re.sub(r"\s+", " ", clause).strip()[:160] or "do it"


def _first_sentence(text: str) -> str:
    text = " ".join((text or "").split())
    return _SENTENCE.split(text, maxsplit=1)[0] if text else ""


_PREAMBLE = re.compile(r"^(this|these) (tool|endpoint|operation|method|function|api)s?\b", re.I)
_LABEL = re.compile(r"^[A-Za-z][\w ]{0,30}:\s+")
_NOT_A_VERB = {"the", "a", "an", "this", "these", "that", "it", "its", "their", "our", "your", "all", "each", "any"}


def _summary(text: str) -> str:
    """The sentence that says what the operation does: past a preamble about the tool itself
    ("This tool belongs to …"), and past a label ("Tool description: …")."""
    sentences = [s.strip() for s in _SENTENCE.split(" ".join((text or "").split())) if s.strip()]
    for sentence in sentences:
        if ";" in sentence and _PREAMBLE.match(sentence):
            sentence = sentence.split(";", 1)[1].strip()
        sentence = _LABEL.sub("", sentence)
        if sentence and not _PREAMBLE.match(sentence):
            return sentence
    return ""


def label(tool: ToolSpec, param: str) -> str:
    """How a user would name the parameter: its short description, else its name in words."""
    schema = tool.input_schema.get("properties", {}).get(param, {})
    desc = _first_sentence(str(schema.get("description", "")) if isinstance(schema, dict) else "").rstrip(".")
    words = desc.split()
    if 1 <= len(words) <= 6 and not re.search(r"[`{}<>|]", desc):
        return re.sub(r"^(the|a|an) ", "", desc[0].lower() + desc[1:])
    return " ".join(words_of(param)) or param


def say_value(value: Any, rng: random.Random) -> str:
    """The value as a user writes it, verbatim inside (the verifier looks for it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return rng.choice(["'{}'", '"{}"', "'{}'"]).format(value) if " " in value or rng.random() < 0.6 else value
    if isinstance(value, list):
        return _series([say_value(v, rng) for v in value])
    if isinstance(value, dict):
        return "(" + ", ".join(f"{' '.join(words_of(k)) or k} {say_value(v, rng)}" for k, v in value.items()) + ")"
    return str(value)


def details(tool: ToolSpec, arguments: dict[str, Any], rng: random.Random) -> str:
    parts = []
    for name, value in arguments.items():
        form = rng.choice(_ARG_FORMS)
        parts.append(form.format(label=label(tool, name), value=say_value(value, rng)))
    return _series(parts) if parts else ""


def clause(tool: ToolSpec, arguments: dict[str, Any], rng: random.Random, *, reference: str = "") -> str:
    """One operation: its action, then what the user knows of its arguments (and a reference such as
    "for the one just created" for a value an earlier step yields)."""
    text = action(tool)
    said = details(tool, arguments, rng)
    if reference:
        text += f" {reference}"
    if said:
        text += rng.choice([" with ", ", using ", " — ", "; "]) + said
    return text


def opener(text: str, rng: random.Random) -> str:
    form = rng.choice(_OPENERS)
    out = form.format(a=text, A=text[:1].upper() + text[1:])
    return out[:1].upper() + out[1:]


def join_steps(clauses: list[str], rng: random.Random) -> str:
    """Several operations in one request, in order."""
    if len(clauses) == 1:
        return opener(clauses[0], rng)
    glue = rng.choice([", then ", ". After that, ", "; once that's done, ", ", and then "])
    return opener(glue.join(clauses), rng)


def join_parallel(clauses: list[str], rng: random.Random) -> str:
    """Independent operations asked for at once."""
    if len(clauses) == 2 and rng.random() < 0.5:
        return opener(clauses[0], rng) + " " + rng.choice(["Also ", "And also ", "In addition, "]) + clauses[1] + "."
    numbered = " ".join(f"({i}) {c};" for i, c in enumerate(clauses, 1)).rstrip(";") + "."
    return rng.choice(["Please do these: ", "A few things: ", "I need all of this done: "]) + numbered


def ask_several(tool: ToolSpec, calls: list[dict[str, Any]], rng: random.Random) -> str:
    """One operation asked for with several argument sets, as people ask: mostly the action said once and
    then what differs ("... for Boston, Paris and Tokyo", "..., then again with ...", "... respectively");
    a third of the time each operation in full. A model that has seen only the full form learns that
    a numbered list means several calls, not that several values do."""
    shared, varying = _split(calls)
    compact = ["again"]
    if varying and all(_scalar(tool, k) for k in varying):
        compact += {1: ["list"], 2: ["respectively"]}.get(len(varying), [])
    form = "full" if rng.random() < 1 / 3 else rng.choice(compact)
    if form == "full":
        return join_parallel([clause(tool, args, rng) for args in calls], rng)
    head = action(tool)
    if form == "again":
        sets = [details(tool, args, rng) or "the defaults" for args in calls]
        glue = rng.choice([", then again with ", ", and once more with ", "; repeat it with "])
        return opener(f"{head} with {sets[0]}{glue}{sets[1]}" + "".join(f", and with {d}" for d in sets[2:]), rng)
    said = details(tool, shared, rng) if shared else ""
    lead = head + (rng.choice([" with ", ", using "]) + said if said else "")
    if form == "list":
        (key,) = varying
        name, values = label(tool, key), _series([say_value(args[key], rng) for args in calls])
        return opener(lead + rng.choice([f", for {name} {values}", f", once for each {name}: {values}"]), rng)
    a, b = varying
    return opener(f"{lead}, for {label(tool, a)} {_series([say_value(x[a], rng) for x in calls])}, with "
                  f"{label(tool, b)} {_series([say_value(x[b], rng) for x in calls])} respectively", rng)  # fmt: skip


def _split(calls: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The arguments every call gives alike, and the names that differ (none where the calls give
    different arguments: then no one list of names says what differs)."""
    keys = set(calls[0])
    if any(set(args) != keys for args in calls):
        return {}, []
    same = {k for k in keys if len({json.dumps(args[k], sort_keys=True) for args in calls}) == 1}
    return {k: v for k, v in calls[0].items() if k in same}, [k for k in calls[0] if k not in same]


def _scalar(tool: ToolSpec, param: str) -> bool:
    """A value listed beside others reads as one per call only where the parameter takes one value
    (a list parameter would take the whole list in one call)."""
    schema = tool.input_schema.get("properties", {}).get(param, {})
    return isinstance(schema, dict) and schema.get("type") in ("string", "integer", "number")


def _series(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def leaks(text: str, tool_names: list[str]) -> list[str]:
    """Identifiers of tools that appear in the text (plain dictionary words like ``mean`` cannot be helped)."""
    found = []
    lower = text.lower()
    for name in tool_names:
        is_identifier = bool(re.search(r"[_\d]|[a-z][A-Z]", name)) or name.isupper()
        if is_identifier and re.search(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])", lower):
            found.append(name)
    return found
