"""Argument values that validate and look real: enums, formats, ranges, patterns, plausible names,
dates and places, and ids that exist in the episode's seeded state.

The parameter's name and description pick a pool (a person's name, a city, a title…); its schema
has the last word: every value is checked against it, and the schema sampler fills in whatever a
pool cannot (patterns, nested shapes). Everything comes from the caller's rng.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from inftool_env.spec.sample import regex_sample, sample

FIRST = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Maya",
    "Nikhil",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Costa",
    "Novak",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Schmidt",
    "Ibrahim",
    "Larsen",
    "Petrov",
    "Nakamura",
    "Silva",
    "Fischer",
    "Mensah",
    "Rossi",
    "Kim",
    "Dubois",
]
CITIES = [
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Montreal",
    "Krakow",
    "Valparaiso",
    "Tbilisi",
    "Hanoi",
    "Bergen",
    "Accra",
    "Porto",
    "Seville",
    "Leeds",
    "Adelaide",
    "Quito",
    "Tallinn",
    "Dakar",
    "Ljubljana",
    "Cusco",
    "Da Nang",
]
COUNTRIES = ["Portugal", "Kenya", "Japan", "Canada", "Poland", "Chile", "Georgia", "Vietnam", "Norway", "Ghana"]
ADJ = [
    "quiet",
    "amber",
    "northern",
    "silver",
    "hidden",
    "early",
    "bright",
    "distant",
    "gentle",
    "wild",
    "last",
    "little",
    "open",
    "winter",
    "paper",
    "lucky",
    "hollow",
    "second",
    "velvet",
    "iron",
]
NOUN = [
    "harbor",
    "garden",
    "signal",
    "lantern",
    "river",
    "orchard",
    "atlas",
    "meadow",
    "engine",
    "compass",
    "archive",
    "bridge",
    "canvas",
    "falcon",
    "island",
    "ledger",
    "mirror",
    "valley",
    "beacon",
    "summit",
]
TOPICS = [
    "solar panels",
    "sourdough",
    "chess openings",
    "bike repair",
    "jazz piano",
    "tide pools",
    "rust lang",
    "urban gardening",
    "marathon training",
    "bird migration",
    "coffee roasting",
    "night photography",
]
COLORS = ["red", "teal", "amber", "navy", "olive", "crimson", "ivory", "slate"]
COMPANIES = ["Northwind", "Bluefin Labs", "Copperleaf", "Orbital Bakery", "Kestrel & Co", "Greyhaven", "Tidewater"]
STREETS = ["Rua Augusta", "Elm Street", "Harbour Road", "Via Roma", "Mill Lane", "Kings Avenue", "Calle Mayor"]

_WORDS = re.compile(r"[a-z]+")


def plain_name(name: str) -> str:
    """A parameter's name as the header and credential lists spell it: ``Content-Type`` -> content_type."""
    return name.lower().replace("-", "_")


def words_of(name: str) -> list[str]:
    """``bookId`` -> [book, id]; ``max_results`` -> [max, results]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return _WORDS.findall(spaced.lower())


# A path segment that names the API's version or prefix, not a resource (/v3/businesses, /api/rest/…).
API_PREFIX = re.compile(r"v\d+(\.\d+)*|api|rest", re.I)


def singular(word: str) -> str:
    """``files`` -> file, ``businesses`` -> business, ``categories`` -> category; ``status`` stays."""
    if len(word) <= 3:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _title(rng: random.Random) -> str:
    return f"The {rng.choice(ADJ).title()} {rng.choice(NOUN).title()}"


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.org"


def _date(rng: random.Random) -> str:
    return f"{rng.choice([2025, 2026])}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _datetime(rng: random.Random) -> str:
    return f"{_date(rng)}T{rng.randint(7, 20):02d}:{rng.choice([0, 15, 30, 45]):02d}:00Z"


def _phrase(rng: random.Random) -> str:
    return f"{rng.choice(ADJ)} {rng.choice(NOUN)}"


# (words in the parameter's name or description, a maker); the first that matches wins.
_BY_NAME: list[tuple[tuple[str, ...], Callable[[random.Random], Any]]] = [
    (("email", "mail"), _email),
    (("firstname", "first", "given"), lambda r: r.choice(FIRST)),
    (("lastname", "last", "surname", "family"), lambda r: r.choice(LAST)),
    (("author", "artist", "owner", "person", "username", "user", "member", "contact", "organizer", "name"), _person),
    (("city", "town", "location", "place", "destination", "origin", "region", "locale"), lambda r: r.choice(CITIES)),
    (("country",), lambda r: r.choice(COUNTRIES)),
    (("address", "street"), lambda r: f"{r.randint(2, 240)} {r.choice(STREETS)}"),
    (("company", "organization", "organisation", "vendor", "brand"), lambda r: r.choice(COMPANIES)),
    (("title", "subject", "summary", "headline", "label"), _title),
    (("color", "colour"), lambda r: r.choice(COLORS)),
    (("query", "term", "search", "keyword", "keywords", "text", "q", "topic"), lambda r: r.choice(TOPICS)),
    (
        ("description", "note", "notes", "comment", "message", "body", "content", "reason"),
        lambda r: f"Please check the {r.choice(NOUN)} before {r.choice(['Friday', 'noon', 'the meeting', 'launch'])}",
    ),
    (("phone", "telephone", "mobile"), lambda r: f"+1-555-{r.randint(100, 999)}-{r.randint(1000, 9999)}"),
    (("url", "uri", "link", "website", "homepage"), lambda r: f"https://{r.choice(NOUN)}.example.org/{r.choice(ADJ)}"),
    (("tag", "tags", "category", "genre", "kind", "type"), lambda r: r.choice(NOUN)),
    (("password", "secret", "token", "key", "authorization"), lambda r: f"tok-{r.randrange(16**8):08x}"),
]
MEDIA_TYPE_HEADERS = {"accept", "content_type", "contenttype"}  # names as lower-cased, dashes as underscores
PLUMBING = MEDIA_TYPE_HEADERS | {"authorization", "api_key", "apikey", "x_api_key"}  # any tool's headers, credentials
_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "email": _email, "date": _date, "date-time": _datetime,
    "uri": lambda r: f"https://{r.choice(NOUN)}.example.org/{r.choice(ADJ)}",
    "url": lambda r: f"https://{r.choice(NOUN)}.example.org/{r.choice(ADJ)}",
    "uuid": lambda r: "-".join(f"{r.randrange(16**n):0{n}x}" for n in (8, 4, 4, 4, 12)),
    "time": lambda r: f"{r.randint(7, 20):02d}:{r.choice([0, 15, 30, 45]):02d}:00",
    "ipv4": lambda r: f"198.51.100.{r.randint(1, 254)}",
    "hostname": lambda r: f"{r.choice(NOUN)}.example.org",
}  # fmt: skip


class ValueMaker:
    """Values for one schema at a time; ``ids`` maps a parameter name to the ids it may take."""

    def __init__(self, rng: random.Random, root: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.root = root or {}

    def value(self, name: str, schema: Any, *, description: str = "", depth: int = 0) -> Any:
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or not schema:
            return self._string(name, {}, description)
        candidate = self._candidate(name, schema, description, depth)
        if self._valid(candidate, schema):
            return candidate
        fallback = sample(schema, self.rng, root=self.root, optional=0.0)
        return fallback

    def _candidate(self, name: str, schema: dict[str, Any], description: str, depth: int) -> Any:
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice([v for v in schema["enum"] if v is not None] or schema["enum"])
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                branch = self._resolve(self.rng.choice(schema[key]))
                merged = {
                    **{k: v for k, v in schema.items() if k != key},
                    **(branch if isinstance(branch, dict) else {}),
                }
                return self._candidate(name, merged, description, depth)
        kind = _type(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind in ("integer", "number"):
            return self._number(name, schema, kind)
        if kind == "array":
            items = schema.get("items", {})
            lo = schema.get("minItems", 1) if isinstance(schema.get("minItems"), int) else 1
            count = max(lo, 1) if depth > 1 else max(lo, self.rng.choice([1, 1, 2]))
            values = [
                self.value(name.rstrip("s"), items, description=description, depth=depth + 1) for _ in range(count)
            ]
            out: list[Any] = []
            for v in values:  # distinct items read naturally (and satisfy uniqueItems)
                if v not in out:
                    out.append(v)
            return out
        if kind == "object":
            return self._object(name, schema, depth)
        return self._string(name, schema, description)

    def _object(self, name: str, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        if not props:
            return {self.rng.choice(["note", "label", "source"]): self.rng.choice(NOUN)}
        required = set(schema.get("required", [])) if isinstance(schema.get("required"), list) else set()
        out = {}
        for key, sub in props.items():
            sub = self._resolve(sub)
            if isinstance(sub, dict) and sub.get("readOnly"):
                continue
            if key in required or (depth == 0 and self.rng.random() < 0.25):
                desc = sub.get("description", "") if isinstance(sub, dict) else ""
                out[key] = self.value(key, sub, description=str(desc), depth=depth + 1)
        return out

    def _number(self, name: str, schema: dict[str, Any], kind: str) -> int | float:
        value = sample(schema, self.rng, root=self.root)
        words = set(words_of(name))
        bounded = any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
        if not bounded and words & {"lat", "latitude"}:
            return round(self.rng.uniform(-60, 60), 4)
        if not bounded and words & {"lon", "lng", "longitude"}:
            return round(self.rng.uniform(-150, 150), 4)
        if not bounded and words & {"year"}:
            return self.rng.randint(1950, 2025)
        if not bounded and kind == "integer" and words & {"limit", "count", "size", "max", "page", "per"}:
            return self.rng.choice([5, 10, 20, 25])
        return value

    def _string(self, name: str, schema: dict[str, Any], description: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt](self.rng)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            text = regex_sample(pattern, self.rng)
            if text is not None:
                return text
        if plain_name(name) in MEDIA_TYPE_HEADERS or "mime type" in description.lower():
            return "application/json"  # an HTTP header naming a format: random words would be no request's
        words = set(words_of(name))
        for keys, make in _BY_NAME:
            if words & set(keys):
                return str(make(self.rng))
        desc_words = set(words_of(description)[:12])
        for keys, make in _BY_NAME[:10]:
            if desc_words & set(keys):
                return str(make(self.rng))
        if words & {"ids", "uuids", "keys", "codes", "refs"}:  # Spotify's "comma-separated list of IDs"
            stem = (words_of(name) or ["x"])[0].removesuffix("s")[:3]
            return ",".join(f"{stem}-{self.rng.randint(100, 999)}" for _ in range(self.rng.randint(2, 3)))
        if words & {"id", "uuid", "key", "code", "ref"}:
            return f"{(words_of(name) or ['x'])[0][:3]}-{self.rng.randint(100, 999)}"
        if words & {"date", "day", "start", "end", "since", "until", "from", "to", "after", "before"}:
            return _date(self.rng)
        return _phrase(self.rng)

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, dict) and "$ref" in schema:
            target = self.root.get("$defs", {}).get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _valid(self, value: Any, schema: dict[str, Any]) -> bool:
        with_defs = {**schema, "$defs": self.root.get("$defs", {})} if "$defs" in self.root else schema
        try:
            return bool(Draft202012Validator(with_defs).is_valid(value))
        except Exception:  # an unusable schema keyword (a bad pattern) constrains nothing we can check
            return True


def _type(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    types: Sequence[Any] = declared if isinstance(declared, list) else [declared] if declared else []
    for t in types:
        if t != "null":
            return str(t)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"
