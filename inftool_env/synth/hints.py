"""What a parameter's description says about its values: the values it lists ("one of a, b, c"),
the examples it gives ("e.g. es_MX"), and the kind of value it asks for (a count, a flag, an id, a
timestamp, a standard code).

Spec text only, read conservatively: a list or an example is taken when it reads as values (single
tokens, or quoted), never prose. No randomness here; values.py chooses, and its schema check still
has the last word.
"""

from __future__ import annotations

import re

# Words that open prose, not a value: "one of the user's calendars", "e.g. if the offset is set…".
FUNCTION_WORDS = frozenset(
    "a an the this that these those it its their your our his her any each every some etc more other others "
    "following if when what which who how where to of in on at by for with from and or be is are was were "
    "can may must should will you we they".split()
)
_TOKEN = re.compile(r"[\w./:+#@,=&-]{1,60}")  # one value as a spec writes it: en_US, EBAY_US, 2014-10-23T09:00:00
_QUOTED = re.compile(r"[\"`\u201c]([^\"`\u201d\n]{1,60})[\"`\u201d]|(?<!\w)'([\w./:+#@-]{1,40})'")
_RANGE = re.compile(r"-?\d+(\.\d+)?\s*-\s*\d+(\.\d+)?")  # "1-10" is a range to stay within, not a value

# "Allowed values: a, b", "Possible values are:\n- a\n- b", "must be one of a, b or c".
_LIST_CUE = re.compile(
    r"\b(?:allowed|valid|possible|supported|accepted|acceptable|permitted|available)\s+(?:values?|options?)"
    r"(?:\s+(?:are|is|include))?(?:\s+the\s+following)?\s*:?"
    r"|\bone\s+of(?:\s+the\s+following)?\s*:?",
    re.I,
)
_EITHER = re.compile(
    r"\beither\s+[`\"']?([\w./:+#@-]+)[`\"']?\s+or\s+[`\"']?([\w./:+#@-]+)[`\"']?(?=[\s.,;:)]|$)", re.I
)
_EXAMPLE_CUE = re.compile(
    r"\be\.g\.|\beg\.|\bi\.e\.|\bfor (?:example|instance)\b|\bsuch as\b|\bexamples?(?:\s+values?)?\s*:", re.I
)
_BULLET = re.compile(r"\s*[-*\u2022]\s+(.*)")


def listed(description: str) -> list[str]:
    """The values a description enumerates, in its order; [] when it lists none."""
    for cue in _LIST_CUE.finditer(description):
        after = description[cue.end() :]
        values = _values_after(after, loose=True)
        said = cue.group(0).rstrip().endswith(":") or after.lstrip()[:1] in "\"`'\u201c"
        if len(values) >= (1 if said else 2):  # one bare word is no list: "Only valid values are accepted."
            return values
    either = _EITHER.search(description)
    if either and not {either.group(1).lower(), either.group(2).lower()} & FUNCTION_WORDS:
        return [either.group(1), either.group(2)]
    return []


def examples(description: str, name: str = "") -> list[str]:
    """The example values a description gives ("e.g. X", "for example: X, Y", "Example: "X""). An example
    written as a query string (``q=abc&type=album,track``) gives this parameter's part, if any."""
    out: list[str] = []
    for cue in _EXAMPLE_CUE.finditer(description):
        after = description[cue.end() :]
        found = _values_after(after, loose=False)
        if not found and description[: cue.start()].rstrip().endswith("("):  # "(e.g. visa, mc, or amex)"
            found = _values_after(after.split(")", 1)[0], loose=True) if ")" in after else []
            found = found if len(found) >= 2 else []
        for value in found:
            if "=" in value or "&" in value:
                own = re.search(rf"(?:^|[?&]){re.escape(name)}=([^&\s]+)", value) if name else None
                if own is None:
                    continue
                value = own.group(1)
            if value not in out:
                out.append(value)
    return out


def _values_after(text: str, *, loose: bool) -> list[str]:
    """Values at the start of ``text``: a bulleted list (one leading token a line), quoted tokens, or a
    comma/or list of tokens. ``loose``: a listing cue, where plain words are values; an example cue
    takes only code-like tokens (``es_MX``, ``EBAY_US``, ``2014-10-23``), so prose after "e.g." is left."""
    text = text.lstrip(" \t:,")
    first, _, more = text.partition("\n")
    if not first.strip() or (_BULLET.match(first) and _BULLET.match(more.split("\n", 1)[0])):
        return _bullets(text)
    if not loose:
        return _leading_examples(text)
    line = re.split(r"\.(?:\s|$)|\n|;|\)|\(", text, maxsplit=1)[0]
    quoted = [a or b for a, b in _QUOTED.findall(line)]
    if quoted:
        return quoted
    parts = [p.strip().strip("\"'`") for p in re.split(r",|\bor\b|\band\b|\|", line)]
    parts = [p for p in parts if p]
    if parts and all(
        _TOKEN.fullmatch(p) and p.lower() not in FUNCTION_WORDS and not _RANGE.fullmatch(p) for p in parts
    ):
        return parts
    return []


def _leading_examples(text: str) -> list[str]:
    """``"X", "Y"`` or ``X, Y or Z`` at the start of ``text``, each a quoted or code-like token."""
    out: list[str] = []
    rest = text
    while rest:
        quoted = re.match(r"[\"`'\u201c]([^\"`'\u201d\n]{1,60})[\"`'\u201d]([.,;:)]*)", rest)
        token = quoted or re.match(r"(\S+?)([.,;:)]*)(?=\s|$)", rest)
        if token is None or (not quoted and not _code_like(token.group(1))):
            break
        out.append(token.group(1))
        rest = rest[token.end() :]
        ends = token.group(2)
        joined = len(rest) - len(re.sub(r"^\s*(?:(?:or|and)\s+)?", "", rest))  # the "or "/", " that joins
        if any(c in ends for c in ".;:)") or ("," not in ends and not rest[:joined].strip()):
            break  # the sentence goes on in prose
        rest = rest[joined:]
    return out


def _code_like(token: str) -> bool:
    """A token that reads as a value, not a word of prose: digits, _-:/.@, or capitals inside."""
    if not _TOKEN.fullmatch(token) or token.lower() in FUNCTION_WORDS:
        return False
    return bool(re.search(r"[\d_:/@.#+=-]", token) or re.search(r".[A-Z]", token))


def _bullets(text: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        bullet = _BULLET.match(line)
        if bullet is None:
            break
        item = bullet.group(1).strip()
        quoted = re.match(r"[\"`'\u201c]([^\"`'\u201d]{1,40})[\"`'\u201d]", item)
        token = quoted.group(1) if quoted else (re.match(r"[\w./:+#@-]+", item) or [""])[0]
        if not token or token.lower() in FUNCTION_WORDS:
            return []
        out.append(token)
    return out


# -- what kind of value the description asks for ------------------------------------------------------

_COUNT = re.compile(
    r"^\W*(?:the\s+|a\s+)?(?:maximum\s+|minimum\s+|max\.?\s+|min\.?\s+|total\s+)?(?:number|count)\s+of\b"
    r"|^\W*how\s+many\b",
    re.I,
)
_FLAG = re.compile(
    r"\btrue\b[^.]{0,40}\bfalse\b|\bfalse\b[^.]{0,40}\btrue\b|^\W*(?:\w+\s+){0,3}whether\b|\bboolean\b"
    r"|\bif (?:set to )?true\b",
    re.I,
)
_ID = re.compile(r"\b(?:ids?|identifiers?|uuids?)\b", re.I)
_ID_NOUN = re.compile(r"\b([a-z]{3,})\s+(?:ids?|identifiers?)\b", re.I)
_MAX = re.compile(r"\b(?:max(?:imum)?|up to)(?:\s+value)?\s*(?:is|of|:)?\s*(\d+)\b", re.I)
_MIN = re.compile(r"\bmin(?:imum)?(?:\s+value)?\s*(?:is|of|:)?\s*(\d+)\b", re.I)


def first_sentence(description: str) -> str:
    return re.split(r"\.(?:\s|$)|\n", description.strip(), maxsplit=1)[0]


def says_count(description: str) -> bool:
    """A number, whatever the type says: "The maximum number of items…", "How many…"."""
    return bool(_COUNT.search(description))


def says_flag(description: str) -> bool:
    """A flag, whatever the type says: "true or false", "Whether to…", "If true, …"."""
    return bool(_FLAG.search(description))


def says_id(description: str) -> bool:
    """The first sentence names an id ("The last artist ID retrieved…", "The merchant account identifier")."""
    return bool(_ID.search(first_sentence(description)))


def id_noun(description: str) -> str:
    """The noun before "ID" in the first sentence ("artist ID" -> artist); "" when none is a plain word."""
    for match in _ID_NOUN.finditer(first_sentence(description)):
        word = match.group(1)
        if word.islower() and word not in FUNCTION_WORDS and word not in ("unique", "the"):
            return word
    return ""


def bounds(description: str) -> tuple[int | None, int | None]:
    """The range a number written as text keeps to: "Maximum Value: 100", "up to 50", "Minimum 1"."""
    hi = _MAX.search(description)
    lo = _MIN.search(description)
    return (int(lo.group(1)) if lo else None, int(hi.group(1)) if hi else None)


def comma_list(description: str) -> bool:
    return bool(re.search(r"\bcomma[- ](?:separated|delimited)\b|\bseparated by commas\b", description, re.I))


def mentions(description: str, *patterns: str) -> bool:
    """Whether any of the patterns (regexes, case-insensitive, on word boundaries) occurs."""
    return any(re.search(rf"\b(?:{p})\b", description, re.I) for p in patterns)
