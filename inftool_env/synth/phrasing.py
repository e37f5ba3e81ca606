"""User requests written from an operation's own summary and its parameters' descriptions.

The action comes from the summary (or the description's first sentence), turned into the imperative;
each argument is said through its description (or its name in words) with its value verbatim, in one
of several phrasings; openers and joins vary. The tool's identifier never appears: a request that
names the function would teach copying, not understanding (``leaks`` checks it, and the HTTP path).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from inftool_env.spec.ir import ToolSpec
from inftool_env.synth.values import API_PREFIX, singular, words_of

_OPENERS = ["{a}.", "Please {a}.", "Could you {a}?", "I need you to {a}.", "Can you {a} for me?", "I'd like to {a}.",
            "Help me {a}.", "Go ahead and {a}.", "{A}, please."]  # fmt: skip
_ARG_FORMS = ["{label} {value}", "{label}: {value}", "{label} set to {value}", "{value} as the {label}",
              "the {label} being {value}"]  # fmt: skip
_VERB_FIX = {"is": "check whether it is", "are": "check whether they are", "has": "check whether it has"}
_SENTENCE = re.compile(r"(?<=[.!?])\s")
# A blank line, or a line that starts afresh (capital, bullet, heading): the summary ends there. A line
# that goes on in lower case is a hard wrap of the same sentence.
_BREAK = re.compile(r"\n\s*\n|\n(?=\s*[A-Z#*>|-])")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_METHODS = r"(?:get|put|post|patch|delete|head|options)"
_ROUTE = re.compile(rf"^(?:({_METHODS})\s+)?((?:https?://|/)\S*)", re.I)


def action(tool: ToolSpec) -> str:
    """The operation as an imperative clause: "Returns the books of a member." -> "return the books of a member".
    A summary that is only an endpoint path or URL says nothing a user would say: the route's method
    and nouns stand in ("get the reviews of a business"), else the operation's name in words."""
    summary = _summary(tool.description)
    if summary and not _ROUTE.match(summary):
        text = _imperative(summary)
    else:
        text = _route_action(tool) or _imperative(" ".join(words_of(_route_free(tool.original_name or tool.name))))
    return text or " ".join(words_of(tool.name)) or "do it"


def _imperative(text: str) -> str:
    text = re.sub(r"`[^`]*`|<[^>]+>", "", text).strip().rstrip(".:;")
    words = text.split()
    if not words:
        return ""
    if _is_heading(words):
        words = _unheading(words)
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
    clause = re.sub(r",\s*(and\s+)?returns?\b.*$", "", clause)  # "…, returns a summary of the build": the result
    return _clip(re.sub(r"\s+", " ", clause).strip())


_MAX_ACTION = 160  # characters of an action; a longer one ends at a clause boundary, else a word's end
_MIN_CLAUSE = 20  # a clause boundary closer to the start than this leaves too little
# Before a comma, semicolon, colon, parenthesis or dash, or a word that starts a subordinate clause.
_CLAUSE_BREAK = re.compile(r"\s*[,;:(]|\s+[-–—]\s|\s+(?=(?:which|such as|including|so that|in order to|where|while)\b)")
_DANGLING = re.compile(r"(?:[\s,;:(–—-]+(?:and|or|but|nor|the|a|an|of|to|for|with|in|on|by|at|from|as|its|their)\b)+$"
                       r"|[\s,;:(–—-]+$", re.I)  # fmt: skip


def _clip(text: str, limit: int = _MAX_ACTION) -> str:
    """``text`` up to ``limit`` characters, cut at the last clause boundary within them, else at the last
    word's end (never mid-word); no dangling "and"/"of" left at the end."""
    if len(text) <= limit:
        return text
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(text, 0, limit + 1) if m.start() >= _MIN_CLAUSE]
    cut = breaks[-1] if breaks else text.rfind(" ", 0, limit + 1)
    clipped = text[:cut] if cut > 0 else text[:limit]
    return _DANGLING.sub("", clipped).strip()


def _is_heading(words: list[str]) -> bool:
    """Title Case ("Get an Artist's Top Tracks"): most longer words after the first are capitalised."""
    longer = [w for w in words[1:] if len(w) > 3 and w[0].isalpha()]
    return bool(longer) and 2 * sum(w[0].isupper() for w in longer) >= len(longer)


def _unheading(words: list[str]) -> list[str]:
    return [w if w.isupper() else w.lower() for w in words]  # acronyms (JWT, API) keep their capitals


def _sentences(text: str) -> list[str]:
    """Sentences in order, a paragraph or fresh line ending one too (a summary runs into its description
    otherwise); a markdown link keeps its text (a heading, lower-cased: Spotify's only summary)."""
    text = _LINK.sub(lambda m: " ".join(_unheading(m.group(1).split())), text or "")
    return [s.strip() for block in _BREAK.split(text) for s in _SENTENCE.split(" ".join(block.split())) if s.strip()]


def _first_sentence(text: str) -> str:
    sentences = _sentences(text)
    return sentences[0] if sentences else ""


_TOOL_NOUN = r"(?:tool|endpoint|operation|method|function|api|call|request)s?"
_PREAMBLE = re.compile(rf"^(this|these) {_TOOL_NOUN}\b", re.I)
_LABEL = re.compile(r"^[A-Za-z][\w ]{0,30}:\s+")
_NOT_A_VERB = {"the", "a", "an", "this", "these", "that", "it", "its", "their", "our", "your", "all", "each", "any"}
# A section title run into the next sentence (eBay: "Request headers This method uses …"), a few words
# before a capitalised "This method": the title goes, the sentence is judged on its own.
_HEADING = re.compile(rf"^[A-Z][\w'-]*(?: [\w'-]+){{0,3}}? (?=(?:This|These) (?i:{_TOOL_NOUN})\b)")
_SECTION_TITLES = {"request headers", "response headers", "headers", "restrictions", "limitations", "note", "notes",
                   "important", "warning", "example", "examples", "overview", "usage", "parameters", "errors",
                   "permissions", "authorization", "authentication", "scopes", "rate limits", "see also", "deprecated",
                   "request", "response", "responses"}  # fmt: skip
# What a preamble says of the tool itself, not of what it does: "This method uses …", "… requires …", "… can …".
_ABOUT_ITSELF = {"is", "are", "was", "were", "be", "belongs", "belong", "requires", "require", "uses", "use", "can",
                 "cannot", "may", "might", "will", "must", "should", "has", "have", "does", "do", "only", "also",
                 "supports", "support", "needs", "need", "works", "work", "accepts", "accept", "takes", "take",
                 "applies", "apply", "expects", "expect"}  # fmt: skip
# A preamble that goes on to the action: "This operation is used to add …", "This endpoint allows you to create …".
_ENABLES = re.compile(r"^(?:(?:is|are|can be|may be|should be) used (?:to|for)|(?:allows|lets|enables|helps)"
                      r"(?: (?:you|users|clients|callers|the caller|the user))?(?: to)?)\s+", re.I)  # fmt: skip


def _summary(text: str) -> str:
    """The sentence that says what the operation does: past a label ("Tool description: …"), a section
    title ("Request headers"), and a preamble about the tool itself ("This tool belongs to …", "This method
    uses …"); a preamble that says what it does is the summary, its subject dropped ("This method returns
    the orders of a customer." -> "Gets the orders of a customer.")."""
    for sentence in _sentences(text):
        if ";" in sentence and _PREAMBLE.match(sentence):
            sentence = sentence.split(";", 1)[1].strip()
        sentence = _LABEL.sub("", _HEADING.sub("", sentence))
        if sentence.rstrip(".:").lower() in _SECTION_TITLES:
            continue
        if _PREAMBLE.match(sentence):
            sentence = _what_it_does(sentence)
        if sentence:
            return sentence
    return ""


def _what_it_does(sentence: str) -> str:
    """ "This method returns X" -> "Gets X", "This endpoint retrieves X" -> "Retrieves X", "This operation is
    used to add X" -> "Add X"; "" for what a preamble says of the tool itself ("This method uses …")."""
    rest = _PREAMBLE.sub("", sentence).strip()
    enables = _ENABLES.match(rest)
    if enables:
        rest = rest[enables.end() :]
    elif not rest or rest.split()[0].lower() in _ABOUT_ITSELF:
        return ""
    verb, _, tail = rest.partition(" ")
    if not enables and verb.lower() in ("returns", "return"):  # a user asks to get it, not to return it
        verb = "Gets"
    return f"{verb[:1].upper()}{verb[1:]} {tail}".strip()


_DOING = {"search", "autocomplete", "lookup", "find", "query", "match", "validate", "verify", "cancel", "retry",
          "refresh", "count", "export", "import", "upload", "download", "publish", "archive", "restore"}  # fmt: skip
_METHOD_VERB = {"get": "get", "post": "create", "put": "replace", "patch": "update", "delete": "delete"}


def _route_action(tool: ToolSpec) -> str:
    """The route as a request: "GET /businesses/{id}/reviews" -> "get the reviews of a business",
    "/businesses/search/phone" -> "search businesses by phone". A route written as the summary or
    operation name is preferred (it keeps ``{id}`` where the real path may have a literal)."""
    written = next((m for m in map(_ROUTE.match, (_summary(tool.description), tool.original_name)) if m), None)
    method = ((written and written.group(1)) or (tool.http.method if tool.http else "")).lower()
    path = written.group(2) if written else tool.http.path if tool.http else ""
    nouns: list[tuple[str, bool]] = []  # (words, names one record)
    for segment in re.sub(r"^https?://[^/]*", "", path).split("?")[0].split("/"):
        if re.fullmatch(r"\{[^}]*\}|:\w+", segment):
            if nouns:
                nouns[-1] = (nouns[-1][0], True)
        elif segment and not API_PREFIX.fullmatch(segment) and words_of(segment):
            nouns.append((" ".join(words_of(segment)), False))
    if not nouns:
        return ""
    doing = next((i for i in reversed(range(len(nouns))) if nouns[i][0] in _DOING), None)
    if doing is not None:
        by = " and ".join(n for n, _ in nouns[doing + 1 :])
        return " ".join([nouns[doing][0], *(n for n, _ in nouns[:doing]), *([f"by {by}"] if by else [])])
    last, one = nouns[-1]
    owner, owner_is_one = nouns[-2] if len(nouns) > 1 else ("", False)
    if owner and not owner_is_one:
        last, owner = f"{owner} {last}", ""  # "/oauth2/token": an oauth2 token
    thing = _a(_singular(last)) if one or method == "post" else f"the {last}"
    return f"{_METHOD_VERB.get(method, 'get')} {thing}" + (f" of {_a(_singular(owner))}" if owner else "")


def _route_free(name: str) -> str:
    """An operation name that is a route ("GET /albums") is no better than the route: empty."""
    return "" if _ROUTE.match(name) else name


def _singular(noun: str) -> str:
    *rest, word = noun.split()
    return " ".join([*rest, singular(word)])


def _a(noun: str) -> str:
    vowel = noun[:1] in "aeiou" and not noun.startswith(("uni", "use", "usu", "one"))
    return ("an " if vowel else "a ") + noun


def label(tool: ToolSpec, param: str) -> str:
    """How a user would name the parameter: its short description, else its name in words."""
    return _labels(tool).get(param) or " ".join(words_of(param)) or param


def _labels(tool: ToolSpec) -> dict[str, str]:
    """Every parameter's label, no two alike: a label two parameters share (CircleCI describes both
    ``username`` and ``project`` as "XXXXXXXXX") would not say which value goes where, so those fall
    back to their names in words, and then to the names themselves."""
    props = tool.input_schema.get("properties", {})
    labels = {p: _described(schema) or " ".join(words_of(p)) or p for p, schema in props.items()}
    for fallback in (lambda p: " ".join(words_of(p)) or p, lambda p: p):
        counts = Counter(labels.values())
        labels = {p: fallback(p) if counts[text] > 1 else text for p, text in labels.items()}
    return labels


def _described(schema: Any) -> str:
    """The description as a label when it is short and made of words, else ""."""
    desc = _first_sentence(str(schema.get("description", "")) if isinstance(schema, dict) else "").rstrip(".")
    if not 1 <= len(desc.split()) <= 6 or re.search(r"[`{}<>|]", desc) or not _is_words(desc):
        return ""
    first = desc.split()[0]
    if not (first.isupper() and len(first) > 1):  # "UUID of the call" keeps its acronym
        desc = desc[0].lower() + desc[1:]
    return re.sub(r"^(the|a|an) ", "", desc)


_PLACEHOLDERS = {"todo", "tbd", "fixme", "xxx", "na", "none", "null", "string", "integer", "number", "boolean",
                 "object", "array", "description", "placeholder", "lorem", "ipsum", "foo", "bar", "baz"}  # fmt: skip


def _is_words(text: str) -> bool:
    """Some real word and no filler: "XXXXXXXXX", "TODO", "string" or "N/A" describe nothing."""
    tokens = re.findall(r"[A-Za-z]+", text)
    filler = [t for t in tokens if len(t) > 2 and len(set(t.lower())) == 1]
    real = [t for t in tokens if len(t) > 1 and re.search(r"[aeiouy]", t, re.I) and t.lower() not in _PLACEHOLDERS]
    return bool(real) and not filler


def say_value(value: Any, rng: random.Random) -> str:
    """The value as a user writes it, verbatim inside (the verifier looks for it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return rng.choice(["'{}'", '"{}"', "'{}'"]).format(value) if " " in value or rng.random() < 0.6 else value
    if isinstance(value, list):
        return _series([say_value(v, rng) for v in value]) or "an empty list"
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        return "(" + ", ".join(f"{' '.join(words_of(k)) or k} {say_value(v, rng)}" for k, v in value.items()) + ")"
    return str(value)


def details(tool: ToolSpec, arguments: dict[str, Any], rng: random.Random) -> str:
    parts = []
    labels = _labels(tool)
    for name, value in arguments.items():
        form = rng.choice(_ARG_FORMS)
        parts.append(form.format(label=labels.get(name) or label(tool, name), value=say_value(value, rng)))
    return _series(parts)


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
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def leaks(text: str, tools: Iterable[str | ToolSpec]) -> list[str]:
    """Identifiers of tools that appear in the text (plain dictionary words like ``mean`` cannot be helped),
    and, for a tool given as a ToolSpec, its HTTP path or a route its summary spells ("/businesses/{id}")."""
    found = []
    lower = text.lower()
    for tool in tools:
        name = tool if isinstance(tool, str) else tool.name
        is_identifier = bool(re.search(r"[_\d]|[a-z][A-Z]", name)) or name.isupper()
        if is_identifier and re.search(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])", lower):
            found.append(name)
        if not isinstance(tool, str):
            found += [r for r in _routes(tool) if _spells(lower, r)]
    return found


def _spells(text: str, route: str) -> bool:
    return bool(re.search(r"(?<![\w/.-])" + re.escape(route.lower()) + r"(?![\w-])", text))


def _routes(tool: ToolSpec) -> list[str]:
    """The paths a request could spell for the tool (the bare root "/" says nothing)."""
    written = [m.group(2) for m in map(_ROUTE.match, (_summary(tool.description), tool.original_name)) if m]
    routes = {tool.http.path if tool.http else "", *written}
    return sorted(r for r in routes if re.search(r"\w", r))
