"""Synthesized argument values look like what the parameter asks for: the values its description lists
or shows, standard codes, numbers and flags written as text, places, pools before patterns.

Each case is a real parameter (name, schema, a short quote of its description) from the corpus specs
(Spotify, eBay Buy Deal, Visual Crossing, Amadeus Hotel Booking, Google Calendar, Nexmo Voice, Ably).
Every value must still validate against its schema.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from inftool_env.synth.values import CITIES, FIRST, LAST, ValueMaker

STR: dict[str, Any] = {"type": "string"}
SEEDS = range(12)


def alpha2(v: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{2}", v))


def numeric(v: str) -> bool:
    return isinstance(v, str) and int(v) >= 0


def iso_datetime(v: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}.*", v)) and bool(
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    )


def one_of(*allowed: str) -> Callable[[str], bool]:
    return lambda v: v in allowed


def no_person(v: str) -> bool:
    return not any(part in FIRST or part in LAST for part in v.split())


def id_like(v: str) -> bool:
    return bool(re.fullmatch(r"[a-z]{2,3}-\d{3}(,[a-z]{2,3}-\d{3})*", v))


# (case id, name, schema, description, what every value must be)
CASES: list[tuple[str, str, dict[str, Any], str, Callable[[str], bool]]] = [
    # Spotify
    ("spotify-market", "market", STR,
     "The market (an ISO 3166-1 alpha-2 country code).  If given, only items with content playable in that "
     "market will be returned.", alpha2),
    ("spotify-country", "country", STR, "The country (an ISO 3166-1 alpha-2 country code)", alpha2),
    ("spotify-locale", "locale", STR,
     "The desired language, consisting of an ISO 639 language code and an ISO 3166-1 alpha-2 country code, "
     'joined by an underscore. For example: es_MX, meaning "Spanish (Mexico)".',
     lambda v: bool(re.fullmatch(r"[a-z]{2}_[A-Z]{2}", v))),
    ("spotify-timestamp", "timestamp", STR,
     "A timestamp in ISO 8601 format (yyyy-MM-dd'T'HH:mm:ss) with the user's local time to get results "
     'tailored to a specific date and time in the day. Example: "2014-10-23T09:00:00" for a user whose local '
     "time is 9AM.",
     lambda v: iso_datetime(v) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", v))),
    ("spotify-uris", "uris", STR,
     "A comma-separated list of Spotify track URIs to add. A maximum of 100 tracks can be added in one request.",
     lambda v: all(re.fullmatch(r"https?://\S+", part) for part in v.split(","))),
    ("spotify-artist-id", "id", STR, "The Spotify ID for the artist", id_like),
    ("spotify-after", "after", STR, "The last artist ID retrieved from the previous request.",
     lambda v: id_like(v) and no_person(v)),
    ("spotify-search-type", "type", STR,
     "A comma-separated list of item types to search across. Search results will include hits from all the "
     "specified item types; for example q=name:abacab&type=album,track will return both albums and tracks.",
     lambda v: "=" not in v and "&" not in v),
    # eBay Buy Deal
    ("ebay-limit", "limit", STR,
     "The maximum number of items, from the current result set, returned on a single page. Default: 20 "
     "Maximum Value: 100", lambda v: numeric(v) and int(v) <= 100),
    ("ebay-offset", "offset", STR,
     "The number of items that will be skipped in the result set. This is used with the limit field to "
     "control the pagination of the output.", numeric),
    ("ebay-commissionable", "commissionable", STR,
     "A filter for commissionable deals. Restriction: This filter is currently only supported for the US "
     "marketplace.", one_of("true", "false")),
    ("ebay-delivery-country", "delivery_country", STR,
     "A filter for items that can be shipped to the specified country.", alpha2),
    ("ebay-category-ids", "category_ids", STR, "The unique identifier of the eBay category for the search.",
     id_like),
    ("ebay-marketplace-header", "X_EBAY_C_MARKETPLACE_ID", STR, "A header used to specify the eBay marketplace ID.",
     lambda v: bool(re.fullmatch(r"mar-\d{3}", v))),
    # Visual Crossing (several parameters have no description at all)
    ("vc-lang", "lang", STR, "Language to use for weather descriptions", lambda v: bool(re.fullmatch(r"[a-z]{2}", v))),
    ("vc-content-type", "contentType", STR, "data format of the output either json or CSV", one_of("json", "CSV")),
    ("vc-unit-group", "unitGroup", STR, "", one_of("metric", "imperial")),
    ("vc-max-distance", "maxDistance", STR, "", numeric),
    ("vc-aggregate-hours", "aggregateHours", STR, "", numeric),
    ("vc-max-stations", "maxStations", STR, "", numeric),
    ("vc-locations", "locations", STR, "", lambda v: v in CITIES),
    ("vc-location", "location", STR,
     "Locaton of interest as an address, partial address or decimal latitude,longtude value", lambda v: v in CITIES),
    ("vc-start-date-time", "startDateTime", STR, "", iso_datetime),
    # Amadeus Hotel Booking
    ("amadeus-card-vendor", "vendorCode", {"type": "string", "minLength": 2, "maxLength": 2, "pattern": "^[A-Z]{2}$"},
     "card type (CA, VI, AX, DC...)\nExamples:\n  * CA - MasterCard\n  * VI - Visa\n  * AX - American Express\n",
     one_of("CA", "VI", "AX")),
    ("amadeus-phone", "phone", {"type": "string", "minLength": 6, "maxLength": 20, "pattern": "^[+][1-9][0-9]{4,18}$"},
     "Phone Number in standard E.123(https://en.wikipedia.org/wiki/E.123)", lambda v: v.startswith("+1555")),
    # Google Calendar
    ("gcal-role", "role", STR,
     'The role assigned to the scope. Possible values are:  \n- "none" - Provides no access. \n- "freeBusyReader" '
     '- Provides read access to free/busy information. \n- "reader" - Provides read access to the calendar. \n- '
     '"writer" - Provides read and write access to the calendar. \n- "owner" - Provides ownership of the calendar.',
     one_of("none", "freeBusyReader", "reader", "writer", "owner")),
    ("gcal-time-zone", "timeZone", STR,
     'The time zone of the calendar. (Formatted as an IANA Time Zone Database name, e.g. "Europe/Zurich".) Optional.',
     lambda v: bool(re.fullmatch(r"[A-Z][a-z]+/[A-Za-z_]+", v))),
    ("gcal-time-min", "timeMin", STR,
     "Lower bound (exclusive) for an event's end time to filter by. Must be an RFC3339 timestamp with mandatory "
     "time zone offset, for example, 2011-06-03T10:00:00-07:00, 2011-06-03T10:00:00Z.",
     lambda v: iso_datetime(v) and bool(re.search(r"(Z|[+-]\d{2}:\d{2})$", v))),
    ("gcal-expiration", "expiration", STR,
     "Date and time of notification channel expiration, expressed as a Unix timestamp, in milliseconds. Optional.",
     lambda v: bool(re.fullmatch(r"\d{13}", v))),
    ("gcal-updated-min", "updatedMin", STR,
     "Lower bound for an event's last modification time (as a RFC3339 timestamp) to filter by.", iso_datetime),
    ("gcal-user-ip", "userIp", STR, "Deprecated. Please use quotaUser instead.",
     lambda v: bool(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", v))),
    # Nexmo Voice, Ably: description words that are no pool
    ("nexmo-order", "order", STR, "Either ascending or  descending order.", one_of("ascending", "descending")),
    ("ably-prefix", "prefix", STR,
     "Optionally limits the query to only those channels whose name starts with the given prefix", no_person),
    ("circleci-branch", "branch", STR, "The branch name should be url-encoded.", no_person),
    ("gcal-setting", "setting", STR, "The id of the user setting.", lambda v: id_like(v) and no_person(v)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "schema", "description", "ok"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_value_looks_like_what_the_parameter_asks_for(name, schema, description, ok):
    for seed in SEEDS:
        value = ValueMaker(random.Random(seed)).value(name, schema, description=description)
        assert isinstance(value, str) and ok(value), (seed, value)
        assert Draft202012Validator(schema).is_valid(value), (seed, value)


def test_the_description_examples_are_used_and_varied_with_their_kind():
    """A single example ("es_MX") shows up, but not every time: same-kind values in its form fill the rest."""
    locale = CASES[2]
    seen = {ValueMaker(random.Random(s)).value(locale[1], locale[2], description=locale[3]) for s in range(40)}
    assert "es_MX" in seen and len(seen) > 3, seen
    search = next(c for c in CASES if c[0] == "spotify-search-type")  # a query-string example: this parameter's part
    seen = {ValueMaker(random.Random(s)).value(search[1], search[2], description=search[3]) for s in range(40)}
    assert "album,track" in seen, seen


def test_several_listed_values_all_come_up():
    _, name, schema, description, _ = next(c for c in CASES if c[0] == "gcal-role")
    seen = {ValueMaker(random.Random(s)).value(name, schema, description=description) for s in range(60)}
    assert seen == {"none", "freeBusyReader", "reader", "writer", "owner"}


def test_an_email_pool_goes_before_the_pattern_that_it_satisfies():
    """A pattern is the fallback: the name's pool is tried first, and kept when the pattern takes it."""
    schema = {"type": "string", "pattern": r"^[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$"}
    for seed in SEEDS:
        value = ValueMaker(random.Random(seed)).value("email", schema, description="Email Address")
        assert re.fullmatch(r"[a-z]+\.[a-z]+@example\.org", value), value


def test_an_email_under_a_twice_escaped_pattern_is_still_the_pool_s():
    """Amadeus writes ``\\\\.`` in YAML, so its pattern asks for a backslash before the dot: the pool's address,
    so escaped, still reads as one (before: ``CmU@Im\\UxKE`` from the pattern sampler)."""
    schema = {"type": "string", "format": "email", "minLength": 3, "maxLength": 90,
              "pattern": r"^[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\\.[a-zA-Z0-9-.]+$"}  # fmt: skip
    for seed in SEEDS:
        value = ValueMaker(random.Random(seed)).value("email", schema, description="Email Address")
        assert re.fullmatch(r"[a-z]+\.[a-z]+@example\\\.org", value), value
        assert Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize(
    ("name", "schema", "description"),
    [
        ("unitGroup", {"type": "string", "minLength": 6}, "Allowed values: us, uk, metric, base"),
        ("market", {"type": "string", "pattern": "^[a-z]{3}$"}, "The market (an ISO 3166-1 alpha-2 country code)"),
        ("limit", {"type": "string", "maxLength": 1}, "The maximum number of items. Maximum Value: 100"),
        ("locale", {"type": "string", "maxLength": 2}, "For example: es_MX, meaning Spanish (Mexico)."),
    ],
)
def test_a_candidate_the_schema_refuses_falls_back_to_one_it_takes(name, schema, description):
    for seed in SEEDS:
        value = ValueMaker(random.Random(seed)).value(name, schema, description=description)
        assert Draft202012Validator(schema).is_valid(value), (seed, value)
    if name == "unitGroup":  # of the listed values, only the one that fits
        assert ValueMaker(random.Random(0)).value(name, schema, description=description) == "metric"


def test_the_same_seed_gives_the_same_values():
    def run(seed: int) -> list[Any]:
        maker = ValueMaker(random.Random(seed))
        return [maker.value(name, schema, description=desc) for _, name, schema, desc, _ in CASES]

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("schema", [{"type": "number", "format": "double"}, {"type": "integer"}])
def test_a_phone_number_given_as_a_number_is_a_phone_number(schema):
    """Yelp's phone search takes its phone as a double: a phone number's digits, not a small decimal."""
    for seed in SEEDS:
        value = ValueMaker(random.Random(seed)).value("phone", schema)
        assert isinstance(value, int) and len(str(value)) == 11 and str(value).startswith("1555"), (seed, value)
        assert Draft202012Validator(schema).is_valid(value), (seed, value)
