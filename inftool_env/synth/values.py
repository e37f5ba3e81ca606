"""Argument values that validate and look real: enums, formats, ranges, patterns, plausible names,
dates and places, and ids that exist in the episode's seeded state.

The description's own values come first (a list it gives, its examples: hints.py reads them); then
the kind of value the name or description asks for (a standard code, a timestamp, a number or a flag
written as text), then a pool the parameter's name or description picks (a person's name, a city, a
title…). Its schema has the last word: every value is checked against it, a pattern's sampler fills in
what a pool cannot match, and the schema sampler whatever else is left (nested shapes). Everything
comes from the caller's rng.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from inftool_env.spec.sample import regex_sample, sample
from inftool_env.synth import hints

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
# Standard codes: ISO 3166-1 alpha-2, ISO 4217, ISO 639-1, locales (language, country), IANA time zones.
COUNTRY_CODES = ["PT", "KE", "JP", "CA", "PL", "CL", "GE", "VN", "NO", "GH", "US", "GB", "DE", "BR", "IN", "AU"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "BRL", "INR", "SEK", "KES", "PLN", "AUD", "CHF"]
LANGUAGES = ["en", "es", "fr", "de", "pt", "ja", "sv", "ko", "it", "pl", "sw", "fi"]
LOCALES = [("en", "US"), ("en", "GB"), ("es", "MX"), ("pt", "BR"), ("fr", "CA"), ("de", "DE"), ("ja", "JP"),
           ("sv", "SE"), ("ko", "KR"), ("it", "IT"), ("pl", "PL"), ("sw", "KE")]  # fmt: skip
TIMEZONES = ["Europe/Lisbon", "America/New_York", "Asia/Tokyo", "Africa/Nairobi", "Europe/Berlin",
             "America/Sao_Paulo", "Australia/Adelaide", "Asia/Kolkata", "America/Toronto", "Europe/Warsaw"]  # fmt: skip
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


def _url(rng: random.Random) -> str:
    return f"https://{rng.choice(NOUN)}.example.org/{rng.choice(ADJ)}"


# (words in the parameter's name, a maker); the first that matches wins.
_BY_NAME: list[tuple[tuple[str, ...], Callable[[random.Random], Any]]] = [
    (("email", "mail"), _email),
    (("firstname", "first", "given"), lambda r: r.choice(FIRST)),
    (("lastname", "last", "surname", "family"), lambda r: r.choice(LAST)),
    (("author", "artist", "owner", "person", "username", "user", "member", "contact", "organizer", "name"), _person),
    (
        ("city", "town", "location", "place", "destination", "origin", "region", "where", "near", "venue"),
        lambda r: r.choice(CITIES),
    ),
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
    (("url", "uri", "uris", "link", "website", "homepage"), _url),
    (("tag", "tags", "category", "genre", "kind", "type"), lambda r: r.choice(NOUN)),
    (("password", "secret", "token", "key", "authorization"), lambda r: f"tok-{r.randrange(16**8):08x}"),
]
# A description's words pick a pool only as phrases that name one: "first", "last", "given", "name" or
# "type" alone are a sentence's words ("the first item", "If given, …"), not a person's name.
_BY_DESCRIPTION: list[tuple[str, Callable[[random.Random], Any]]] = [
    (r"e-?mail", _email),
    (r"(?:first|given) name", lambda r: r.choice(FIRST)),
    (r"(?:last|family) name|surname", lambda r: r.choice(LAST)),
    (r"full name|person|author|artist|owner|organi[sz]er|username", _person),
    (r"city|town|(?:geographic|physical) location", lambda r: r.choice(CITIES)),
    (r"country", lambda r: r.choice(COUNTRY_CODES)),
    (r"(?:street|postal|mailing) address", lambda r: f"{r.randint(2, 240)} {r.choice(STREETS)}"),
    (r"company|organi[sz]ation|vendor|brand", lambda r: r.choice(COMPANIES)),
    (r"title|headline", _title),
    (r"colou?r", lambda r: r.choice(COLORS)),
]
_ID_WORDS = {"id", "ids", "uuid", "uuids", "identifier", "identifiers", "key", "keys", "code", "codes", "ref", "refs"}
# A string that is a number in disguise (``limit: "20"``): these words in its name, its last word not one
# that names something else (``pageToken``, ``max_date``, ``minAccessRole``).
_COUNT_WORDS = {"limit", "offset", "count", "size", "page", "per", "max", "min", "maximum", "minimum", "distance",
                "radius", "hours", "minutes", "seconds", "days", "weeks", "number", "num", "quantity", "qty", "total",
                "top", "skip", "digits", "depth"}  # fmt: skip
_NOT_COUNT_HEADS = {"token", "id", "ids", "key", "name", "names", "role", "type", "types", "url", "uri", "cursor",
                    "mode", "unit", "units", "field", "fields", "format", "order", "sort", "by", "code", "label",
                    "title", "status", "filter", "version", "zone", "currency"}  # fmt: skip
_NOT_COUNT = {"phone", "telephone", "mobile", "fax", "time", "date", "timestamp", "datetime", "timezone", "zip",
              "encrypted"}  # fmt: skip
_FLAG_PREFIXES = {"is", "has", "can", "should", "allow", "enable", "disable"}  # is_active, allowAsynch
MEDIA_TYPE_HEADERS = {"accept", "content_type", "contenttype"}  # names as lower-cased, dashes as underscores
CREDENTIALS = {"authorization", "api_key", "apikey", "x_api_key"}  # names as above
PLUMBING = MEDIA_TYPE_HEADERS | CREDENTIALS  # any tool's headers, credentials
_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "email": _email, "date": _date, "date-time": _datetime,
    "uri": _url, "url": _url,
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
        if not bounded and words & {"phone", "telephone", "mobile"} and schema.get("format") != "int32":
            return int(f"1555{self.rng.randrange(10**7):07d}")  # a phone number (Yelp's is a double), not 30.14
        if not bounded and words & {"year"}:
            return self.rng.randint(1950, 2025)
        if not bounded and kind == "integer" and words & {"limit", "count", "size", "max", "page", "per"}:
            return self.rng.choice([5, 10, 20, 25])
        return value

    def _string(self, name: str, schema: dict[str, Any], description: str) -> str:
        listed = [v for v in hints.listed(description) if self._valid(v, schema)]
        if listed:  # the spec author's own list of values
            return self.rng.choice(listed)
        said = [v for v in hints.examples(description, name) if self._valid(v, schema)]
        given = schema.get("examples")
        shown = [v for v in given if isinstance(v, str) and self._valid(v, schema)] if isinstance(given, list) else []
        value = self._text(name, schema, description, said, shown)
        if self._valid(value, schema):
            return value
        pattern = schema.get("pattern")
        for near in _tidied(value, pattern) if isinstance(pattern, str) else []:
            if self._valid(near, schema):  # the pool's value, written the way the pattern wants
                return near
        if said or shown:  # a value no pool had: the spec's examples, then the pattern's own
            return self.rng.choice(said or shown)
        text = regex_sample(pattern, self.rng) if isinstance(pattern, str) else None
        return value if text is None else text

    def _text(self, name: str, schema: dict[str, Any], description: str, said: list[str], shown: list[str]) -> str:
        rng = self.rng
        make = self._maker(name, schema, description, said)
        if said and (make is None or rng.random() < 0.5):  # its examples; half the time a value of their kind
            return rng.choice(said)
        if shown and rng.random() < 0.25:  # the schema's examples, only sometimes: tasks stay diverse
            return rng.choice(shown)
        if make is None:
            return self._unnamed(name, description)
        words = words_of(name)
        if words and words[-1].endswith("s") and not words[-1].endswith(("ss", "us")) and hints.comma_list(description):
            made = [make() for _ in range(rng.choice([1, 2, 2, 3]))]  # "a comma-separated list of URIs"
            return ",".join(dict.fromkeys(made))
        return make()

    def _maker(self, name: str, schema: dict[str, Any], description: str, said: list[str]) -> Callable[[], str] | None:
        """What makes this string's values: its format, the kind of value its name or description asks
        for, a pool its name or description picks; None for an id or a word with nothing to go on."""
        rng = self.rng
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            if fmt == "date-time":
                return lambda: _datetime_like(_datetime(rng), said)
            return lambda: _FORMATS[fmt](rng)
        if plain_name(name) in MEDIA_TYPE_HEADERS or "mime type" in description.lower():
            return lambda: "application/json"  # an HTTP header naming a format: random words would be no request's
        words = words_of(name)
        if words and words[-1] in {"id", "ids", "identifier", "identifiers"}:
            return None  # ``category_ids``, ``X-Marketplace-ID``: an id, whatever noun comes before it
        kind = self._kind(words, description, said)
        if kind is not None:
            return kind
        named = set(words) | {singular(w) for w in words}
        for keys, make in _BY_NAME:
            if named & set(keys):
                return functools.partial(_text_of, make, rng)
        if hints.says_id(description):
            return None
        head = " ".join(description.lower().split()[:12])
        for cue, make in _BY_DESCRIPTION:
            if re.search(rf"\b(?:{cue})\b", head):
                return functools.partial(_text_of, make, rng)
        return None

    def _kind(self, words: list[str], description: str, said: list[str]) -> Callable[[], str] | None:
        """Standard codes, timestamps, network names, and numbers or flags written as text."""
        rng = self.rng
        named = set(words) | {singular(w) for w in words}
        if (
            "locale" in named
            or hints.mentions(description, "locale")
            or (hints.mentions(description, r"iso[\s-]?639") and hints.mentions(description, r"iso[\s-]?3166"))
        ):
            return lambda: _locale(rng, description, said)
        if named & {"lang", "language"} or hints.mentions(description, r"iso[\s-]?639(?:-1)?", "language code"):
            return lambda: rng.choice(LANGUAGES)
        if "currency" in named or hints.mentions(description, r"iso[\s-]?4217", "currency code"):
            return lambda: rng.choice(CURRENCIES)
        if named & {"country", "market"} or hints.mentions(description, r"iso[\s-]?3166(?:-1)?", "country code"):
            if "name" in named or hints.mentions(description, "country name", "name of the country"):
                return lambda: rng.choice(COUNTRIES)
            return lambda: rng.choice(COUNTRY_CODES)
        if named & {"timezone", "tz"} or {"time", "zone"} <= named or hints.mentions(description, r"iana time ?zone"):
            return lambda: rng.choice(TIMEZONES)
        if hints.mentions(description, "unix", "epoch", "posix"):  # seconds (or milliseconds) since 1970
            scale = 1000 if hints.mentions(description, r"milli\w*") else 1
            return lambda: str(rng.randint(1_735_689_600, 1_798_761_600) * scale)
        if (
            named & {"timestamp", "datetime"}
            or {"date", "time"} <= named
            or hints.mentions(
                description, r"iso[\s-]?8601", r"rfc[\s-]?3339", "timestamp", "date-time", "date and time"
            )
        ):
            if (
                "date" in named
                and not named & {"time", "timestamp", "datetime"}
                and not hints.mentions(description, "time", "hh")
            ):
                return lambda: _date(rng)
            return lambda: _datetime_like(_datetime(rng), said)
        if named & {"ip", "ipv4"}:
            return lambda: _FORMATS["ipv4"](rng)
        if named & {"hostname", "host"}:
            return lambda: _FORMATS["hostname"](rng)
        if named & {"uuid", "guid"}:
            return lambda: _FORMATS["uuid"](rng)
        if named & {"zip", "zipcode", "postcode", "postal"}:
            return lambda: f"{rng.randint(10000, 99999)}"
        if named & {"unit", "units", "measurement"} and named & {"units", "group", "system"}:
            return lambda: rng.choice(["metric", "imperial"])
        if not named & _NOT_COUNT and (
            (named & _COUNT_WORDS and words[-1] not in _NOT_COUNT_HEADS) or hints.says_count(description)
        ):
            return lambda: self._count(named, description)
        if hints.says_flag(description) or (len(words) > 1 and words[0] in _FLAG_PREFIXES) or _adjective(words):
            return lambda: rng.choice(["true", "false"])
        return None

    def _count(self, named: set[str], description: str) -> str:
        """A number written as text, in the range its description states (``Maximum Value: 100``)."""
        rng = self.rng
        if named & {"number", "num", "digits"} and not named & {"max", "min", "maximum", "minimum", "per"}:
            return str(rng.randint(1000, 99_999_999))  # a card, account or confirmation number
        if named & {"offset", "skip"}:
            value = rng.choice([0, 10, 20, 50])
        elif "page" in named and not named & {"size", "per"}:
            value = rng.randint(1, 5)
        elif named & {"distance", "radius"}:
            value = rng.choice([5, 10, 25, 50, 100])
        elif named & {"hours", "minutes", "seconds", "days", "weeks"}:
            value = rng.choice([1, 3, 6, 12, 24])
        else:
            value = rng.choice([5, 10, 20, 25, 50])
        lo, hi = hints.bounds(description)
        if hi is not None:
            value = min(value, hi)
        if lo is not None and (hi is None or lo <= hi):
            value = max(value, lo)
        return str(value)

    def _unnamed(self, name: str, description: str) -> str:
        """An id (the name or the description says so), a date the name implies, or a plain phrase."""
        rng = self.rng
        words = words_of(name)
        named = set(words)
        if named & {"ids", "uuids", "keys", "codes", "refs"}:  # Spotify's "comma-separated list of IDs"
            stem = _stem(words, description)
            return ",".join(f"{stem}-{rng.randint(100, 999)}" for _ in range(rng.randint(2, 3)))
        if named & _ID_WORDS or hints.says_id(description):  # "The last artist ID retrieved…" for ``after``
            return f"{_stem(words, description)}-{rng.randint(100, 999)}"
        if named & {"date", "day", "start", "end", "since", "until", "from", "to", "after", "before"} or (
            plain_name(name).endswith("date") and plain_name(name) not in ("update", "validate", "candidate")
        ):  # ``startdate`` is one word to the splitter
            return _date(rng)
        return _phrase(rng)

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


def _stem(words: list[str], description: str) -> str:
    """The noun an id belongs to, cut to three letters: ``playlist_id`` -> pla, ``X-Marketplace-ID`` -> mar;
    for a name that is no noun (``after``), the description's ("The last artist ID…" -> art)."""
    nouns = [w for w in words if w not in _ID_WORDS and len(w) > 1]
    said = "" if set(words) & _ID_WORDS else hints.id_noun(description)
    return (said or (nouns[-1] if nouns else "") or "id").removesuffix("s")[:3]


def _adjective(words: list[str]) -> bool:
    """``commissionable``, ``refundable``: a one-word name that says what a thing can be, a flag."""
    return (
        len(words) == 1
        and len(words[0]) >= 8
        and words[0].endswith(("able", "ible"))
        and words[0] not in ("variable", "timetable", "deliverable", "receivable")
    )


def _datetime_like(value: str, said: list[str]) -> str:
    """``value`` (…T10:15:00Z) in the form the description's example uses: no zone, an offset, fractions."""
    for example in said:
        form = re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", example)
        if form:
            seconds, fraction, zone = form.groups()
            return (
                value[:16]
                + (":00" if seconds else "")
                + ("." + "0" * (len(fraction) - 1) if fraction else "")
                + (zone or "")
            )
    return value


def _locale(rng: random.Random, description: str, said: list[str]) -> str:
    """A locale in the description's form: es_MX where its example or words say underscore, else en-US."""
    shapes = [e for e in said if re.fullmatch(r"[a-z]{2}[_-][A-Z]{2}", e)]
    underscore = shapes[0][2] == "_" if shapes else hints.mentions(description, "underscores?")
    language, country = rng.choice(LOCALES)
    return f"{language}{'_' if underscore else '-'}{country}"


def _tidied(value: str, pattern: str) -> list[str]:
    """``value`` rewritten the ways a pattern commonly wants: a phone number without separators
    (E.164), a dot escaped where the spec escaped its pattern twice (``\\\\.`` for ``\\.``)."""
    out = []
    if re.fullmatch(r"\+?[\d\s().-]+", value):
        out.append(re.sub(r"[\s().-]", "", value))
    if "\\\\." in pattern and "." in value:
        i = value.rindex(".")
        out.append(value[:i] + "\\" + value[i:])
    return out


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


def _text_of(make: Callable[[random.Random], Any], rng: random.Random) -> str:
    return str(make(rng))
